"""Typed settings. Each service reads `<SERVICE>_…` variables; NATS_URL, AUTH_JWT_SECRET,
COMPANY_TIMEZONE and LOG_LEVEL are shared by all."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # The largest HTTP command body taken (a history import batch is the largest); over it, 413.
    http_command_max_bytes: int = 8 * 1024 * 1024
    nats_url: str = Field("nats://127.0.0.1:4222", validation_alias=AliasChoices("NATS_URL"))
    jwt_secret: str = Field(min_length=16, validation_alias=AliasChoices("AUTH_JWT_SECRET"))
    timezone: str = Field("Asia/Shanghai", validation_alias=AliasChoices("COMPANY_TIMEZONE"))
    log_level: str = Field("INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    # Names JetStream streams and consumers; tests set it to run several systems on one server.
    stream_prefix: str = Field("", validation_alias=AliasChoices("STREAM_PREFIX"))
    pool_min: int = 2
    pool_max: int = 10
    relay_batch: int = 500
    consumer_batch: int = 500
    ingest_batch: int = 250
    # Loops taking ingest batches from the one durable consumer. One loop's batches grow with
    # the load; more loops cut them smaller, share the event loop's time and set aside each
    # other's customers. More can help where each commit waits long for a distant database.
    ingest_workers: int = 1
    # Transactions the HTTP and request/reply commands share at once. Few keep batches large
    # while the service is busy (the CPU is the bound on a small machine); more help when each
    # commit waits long for a distant database.
    command_workers: int = 2
    max_deliveries: int = 5
    # How long dead letters stay in `<service>.dlq.*` for operators to look into; a rejected
    # command keeps its payload there, personal data included.
    dead_letter_days: float = Field(30.0, gt=0)
    poll_interval: float = 1.0
    # Apply the database migrations at start (`make run`, a single instance). A deployment that
    # runs the service's `migrate` command as a Job turns this off: replicas then wait up to
    # `migration_wait_seconds` for the Job to have applied every migration they know.
    migrate_at_start: bool = True
    migration_wait_seconds: float = Field(600.0, gt=0)


def settings_for(service: str, **overrides: object) -> ServiceSettings:
    """Settings of one service: `CUSTOMER_DATABASE_URL`, `CUSTOMER_HTTP_PORT`, …"""

    class _Settings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix=f"{service.upper()}_", extra="ignore", populate_by_name=True)

    return _Settings(**overrides)  # type: ignore[arg-type]
