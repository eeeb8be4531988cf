"""Commands of the sales offices' meetings and assessments (domain/office.py)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from reporting_service.domain.events import MONTH_PATTERN
from salesplatform.command import Command

_ID = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")
_COUNT = Field(ge=0, le=10_000)
_FEN = Field(ge=0, le=10**13)


class Forecast(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    deposits: int = _COUNT
    subscriptions: int = _COUNT
    contracts: int = _COUNT
    amount_fen: int = _FEN


class RecordDailyClose(Command):
    """A rep's close-out of the day (日清): tomorrow's forecast, and why today's was missed."""

    name = "record_daily_close"
    project_id: str = _ID
    rep_id: str | None = Field(None, min_length=1, max_length=100)
    business_date: date | None = None  # default: today
    forecast: Forecast
    miss_reason: str | None = Field(None, min_length=1, max_length=1000)


class ClaimWeeklyTarget(Command):
    """What a rep claims for the week at the Monday meeting (signed subscriptions, amount)."""

    name = "claim_weekly_target"
    project_id: str = _ID
    rep_id: str | None = Field(None, min_length=1, max_length=100)
    week: date | None = None  # the Monday; default: this week's
    subscriptions: int = _COUNT
    amount_fen: int = _FEN


class ReviewPerformance(Command):
    """Give the performance warnings (考核预警) due today (the timer runs it every hour)."""

    name = "review_performance"
    month: str | None = Field(None, pattern=MONTH_PATTERN)
