"""Typed settings. Each service reads `<SERVICE>_…` variables; NATS_URL, NATS_USER,
NATS_PASSWORD, the AUTH_JWKS… key set, COMPANY_TIMEZONE, LOG_LEVEL and OTEL_TRACES_EXPORTER are
shared by all."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, AliasChoices, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from salesplatform.tracing import Exporter


def known_timezone(name: str) -> str:
    """`name` if it is a time zone of the IANA database ("Asia/Shanghai"), else ValueError."""
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise ValueError(f"not a time zone of the IANA database (e.g. Asia/Shanghai): {name!r}") from None
    return name


# The company's time zone, shared by every service (COMPANY_TIMEZONE): business dates and days.
TimeZoneName = Annotated[str, AfterValidator(known_timezone)]


def company_timezone() -> Any:
    """The field every service's settings read COMPANY_TIMEZONE into (`timezone=` with
    `populate_by_name`)."""
    return Field("Asia/Shanghai", validation_alias=AliasChoices("COMPANY_TIMEZONE"))


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # The largest HTTP command body taken (a history import batch is the largest); over it, 413.
    http_command_max_bytes: int = 8 * 1024 * 1024
    nats_url: str = Field("nats://127.0.0.1:4222", validation_alias=AliasChoices("NATS_URL"))
    # The service's own NATS user (one per service; see deploy/nats): it reaches its own
    # account's subjects and streams and the event streams it is granted, nothing else.
    nats_user: str | None = Field(None, validation_alias=AliasChoices("NATS_USER"))
    nats_password: str | None = Field(None, validation_alias=AliasChoices("NATS_PASSWORD"))
    # The public keys bearer tokens are verified with, as a JWKS document: exactly one of
    # inline JSON, a file (read again when it changes) or a URL (fetched again every
    # `jwks_refresh_seconds`). A service never holds a private key.
    jwks: str | None = Field(None, validation_alias=AliasChoices("AUTH_JWKS"))
    jwks_file: str | None = Field(None, validation_alias=AliasChoices("AUTH_JWKS_FILE"))
    jwks_url: str | None = Field(None, validation_alias=AliasChoices("AUTH_JWKS_URL"))
    jwks_refresh_seconds: float = Field(300.0, gt=0, validation_alias=AliasChoices("AUTH_JWKS_REFRESH_SECONDS"))
    timezone: TimeZoneName = company_timezone()
    log_level: str = Field("INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    # Where spans go: none (tracing off), console or otlp (salesplatform.tracing).
    traces_exporter: Exporter = Field(Exporter.none, validation_alias=AliasChoices("OTEL_TRACES_EXPORTER"))
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
    # A command waiting in `<service>.ingest` is judged as of when JetStream stored it (its
    # token must have been valid then), for up to this long; older ones are refused.
    ingest_max_queue_hours: float = Field(72.0, gt=0)
    # How long dead letters stay in `<service>.dlq.*` for operators to look into. A rejected
    # command's personal data is sealed with its customer's key or left out.
    dead_letter_days: float = Field(30.0, gt=0)
    # How long a command's result is kept for its Idempotency-Key: the same key sent again
    # within it replays the result, after it runs the command again. Longer than a command may
    # wait in the ingest queue, so a redelivered message is never run twice.
    idempotency_retention_hours: float = Field(168.0, gt=0)
    # How long the result of each ingested command stays in `<SERVICE>_RESULTS` for its sender
    # to reconcile with (accepted or refused, keyed by its Idempotency-Key).
    result_days: float = Field(7.0, gt=0)
    # On how many NATS servers each of the service's streams is kept (3 on a three-node cluster).
    stream_replicas: int = Field(1, ge=1, le=5, validation_alias=AliasChoices("NATS_STREAM_REPLICAS"))
    poll_interval: float = 1.0
    # Apply the database migrations at start (`make run`, a single instance). A deployment that
    # runs the service's `migrate` command as a Job turns this off: replicas then wait up to
    # `migration_wait_seconds` for the Job to have applied every migration they know.
    migrate_at_start: bool = True
    migration_wait_seconds: float = Field(600.0, gt=0)

    @model_validator(mode="after")
    def _one_key_source(self) -> ServiceSettings:
        # A serving service needs exactly one (its runtime says so at start); `migrate` none.
        given = [s for s in (self.jwks, self.jwks_file, self.jwks_url) if s]
        if len(given) > 1:
            raise ValueError("set only one of AUTH_JWKS, AUTH_JWKS_FILE and AUTH_JWKS_URL")
        if self.idempotency_retention_hours <= self.ingest_max_queue_hours:
            raise ValueError("the idempotency retention must be longer than the ingest queue's maximum age")
        return self


Settings = TypeVar("Settings", bound=BaseSettings)


class InvalidSettings(SystemExit):
    """Settings the environment gives that cannot be used, each named by its variable. A
    `SystemExit`: a service started with them stops at once with this message, and no traceback."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))


def variable_of(cls: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    """The environment variable a settings field is read from (its alias, or prefix + name)."""
    if not loc:
        return ""
    name = str(loc[0])
    info = cls.model_fields.get(name)
    if info is None:  # pydantic reports a field read through its alias under the alias
        return name.upper()
    alias = info.validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0].upper()
    if isinstance(alias, str):
        return alias.upper()
    return f"{cls.model_config.get('env_prefix', '')}{name}".upper()


def load(cls: type[Settings], **overrides: Any) -> Settings:
    """`cls` read from the environment (and `overrides`), or `InvalidSettings` naming each
    variable whose value is refused, with why and the value given."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            variable = variable_of(cls, error["loc"])
            given = error.get("input")
            shown = f" (given {given!r})" if variable and isinstance(given, str | int | float) else ""
            problems.append(f"{variable}: {error['msg']}{shown}" if variable else error["msg"])
        raise InvalidSettings(problems) from None


def settings_for(service: str, **overrides: object) -> ServiceSettings:
    """Settings of one service: `CUSTOMER_DATABASE_URL`, `CUSTOMER_HTTP_PORT`, … A value that
    cannot be used stops it with `InvalidSettings`."""

    class _Settings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix=f"{service.upper()}_", extra="ignore", populate_by_name=True)

    return load(_Settings, **overrides)
