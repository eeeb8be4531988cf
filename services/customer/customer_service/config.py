"""The customer service's own settings from the environment (`COMPANY_TIMEZONE`), checked at
start: a value that cannot be used stops the service naming its variable."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from salesplatform.settings import TimeZoneName, company_timezone


class CustomerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTOMER_", extra="ignore", populate_by_name=True)

    # Business dates (the 7-day follow-up rule, the sales offices' days) are counted here.
    timezone: TimeZoneName = company_timezone()
