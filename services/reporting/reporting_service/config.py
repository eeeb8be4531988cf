"""The sales offices' assessment numbers from the environment (`REPORTING_…`)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from reporting_service.domain.office import DEFAULT_ESCALATION_DAYS, DEFAULT_MARGIN_PERCENT


@dataclass(frozen=True)
class OfficeRules:
    # A rep more than this far behind the share of the month's target due by today is warned.
    margin_percent: int = DEFAULT_MARGIN_PERCENT
    # Days after an oral warning that a rep still behind gets a written one.
    escalation_days: int = DEFAULT_ESCALATION_DAYS


class OfficeRulesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore")

    warning_margin_percent: int = Field(DEFAULT_MARGIN_PERCENT, ge=0, le=100)
    warning_escalation_days: int = Field(DEFAULT_ESCALATION_DAYS, ge=1, le=31)

    def rules(self) -> OfficeRules:
        return OfficeRules(self.warning_margin_percent, self.warning_escalation_days)
