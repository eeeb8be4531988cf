"""Typed settings of the console: `CONSOLE_…` variables, plus the platform's shared ones
(NATS_URL, NATS_USER, NATS_PASSWORD, AUTH_JWKS…, AUTH_SIGNING_KEY_FILE, COMPANY_TIMEZONE,
STREAM_PREFIX, LOG_LEVEL)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from salesplatform.settings import TimeZoneName, company_timezone

SERVICES = ("customer", "visit", "orders", "reporting")


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore", populate_by_name=True)

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Where the four services answer their HTTP APIs.
    customer_url: str
    visit_url: str
    orders_url: str
    reporting_url: str
    # Seconds an API call may take before the page says the service is not answering.
    api_timeout: float = 15.0
    nats_url: str = Field("nats://127.0.0.1:4222", validation_alias=AliasChoices("NATS_URL"))
    # The console hears report changes as an outside system does (the `system` NATS user).
    nats_user: str | None = Field(None, validation_alias=AliasChoices("NATS_USER"))
    nats_password: str | None = Field(None, validation_alias=AliasChoices("NATS_PASSWORD"))
    stream_prefix: str = Field("", validation_alias=AliasChoices("STREAM_PREFIX"))
    # The platform's public key set, which viewers' tokens are verified with (exactly one).
    jwks: str | None = Field(None, validation_alias=AliasChoices("AUTH_JWKS"))
    jwks_file: str | None = Field(None, validation_alias=AliasChoices("AUTH_JWKS_FILE"))
    jwks_url: str | None = Field(None, validation_alias=AliasChoices("AUTH_JWKS_URL"))
    jwks_refresh_seconds: float = Field(300.0, gt=0, validation_alias=AliasChoices("AUTH_JWKS_REFRESH_SECONDS"))
    # The private key the local login signs with (only with `local_login`).
    signing_key_file: str | None = Field(None, validation_alias=AliasChoices("AUTH_SIGNING_KEY_FILE"))
    timezone: TimeZoneName = company_timezone()
    log_level: str = Field("INFO", validation_alias=AliasChoices("LOG_LEVEL"))
    # `make run`: sign in by picking a staff member of the department; the console then mints
    # the viewer's token itself. Never in a deployment: there the company's identity provider
    # (or an authenticating proxy in front of the console) vouches for the person.
    local_login: bool = False
    # A request header that carries the viewer's platform token (set by an authenticating
    # proxy), e.g. `authorization` or `x-forwarded-access-token`; empty: only the sign-in page.
    token_header: str = ""
    # Mark the session cookie Secure (the console is served over HTTPS).
    secure_cookies: bool = False
    # How long a token minted at the local sign-in lasts.
    session_hours: float = Field(12.0, gt=0, le=24 * 7)

    @model_validator(mode="after")
    def _urls_without_trailing_slash(self) -> ConsoleSettings:
        for name in SERVICES:
            setattr(self, f"{name}_url", getattr(self, f"{name}_url").rstrip("/"))
        return self

    def service_urls(self) -> dict[str, str]:
        return {name: getattr(self, f"{name}_url") for name in SERVICES}
