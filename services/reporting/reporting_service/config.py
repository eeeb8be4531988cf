"""The reporting service's settings from the environment (`REPORTING_…`, `COMPANY_TIMEZONE`):
the sales offices' assessment numbers and the company's time zone, checked at start: a value
that cannot be used stops the service naming its variable."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from reporting_service.domain.office import DEFAULT_ESCALATION_DAYS, DEFAULT_MARGIN_PERCENT
from salesplatform.settings import TimeZoneName, company_timezone


@dataclass(frozen=True)
class OfficeRules:
    # A rep more than this far behind the share of the month's target due by today is warned.
    margin_percent: int = DEFAULT_MARGIN_PERCENT
    # Days after an oral warning that a rep still behind gets a written one.
    escalation_days: int = DEFAULT_ESCALATION_DAYS


class OfficeRulesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore", populate_by_name=True)

    warning_margin_percent: int = Field(DEFAULT_MARGIN_PERCENT, ge=0, le=100)
    warning_escalation_days: int = Field(DEFAULT_ESCALATION_DAYS, ge=1, le=31)
    # Reports' business days and periods are counted here.
    timezone: TimeZoneName = company_timezone()

    def rules(self) -> OfficeRules:
        return OfficeRules(self.warning_margin_percent, self.warning_escalation_days)
