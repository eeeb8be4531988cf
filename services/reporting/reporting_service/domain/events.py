"""Events the reporting service publishes (README.md): targets, and the sales offices' daily
close-out (日清), weekly claims and performance warnings (考核预警)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from salesplatform.events import Event, EventRegistry

MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"

Level = Literal["rep", "district", "area"]


class TargetSet(Event):
    """A monthly sales target (销售指标) in fen, set or changed."""

    event_type = "target.set"
    target_id: str
    month: str = Field(pattern=MONTH_PATTERN)
    level: Level
    subject_id: str
    product_group: str | None
    amount_fen: int = Field(ge=0)


# -- the sales offices' meetings and assessments --------------------------------------------

WarningLevel = Literal["oral", "written"]


class DailyCloseRecorded(Event):
    """A rep's close-out of a day at a sales office: tomorrow's forecast, and why today's
    forecast was missed when it was (原因分析). Recorded again, the latest counts."""

    event_type = "daily_close.recorded"
    project_id: str
    rep_id: str
    business_date: date
    forecast_for: date
    deposits: int = Field(ge=0)
    subscriptions: int = Field(ge=0)
    contracts: int = Field(ge=0)
    amount_fen: int = Field(ge=0)
    miss_reason: str | None = None


class WeeklyTargetClaimed(Event):
    """What a rep claimed at the Monday meeting for the week (申领业绩指标): signed subscriptions
    and their amount."""

    event_type = "weekly_target.claimed"
    project_id: str
    rep_id: str
    week: date  # the Monday
    subscriptions: int = Field(ge=0)
    amount_fen: int = Field(ge=0)


class PerformanceWarningGiven(Event):
    """A rep behind the month's target by more than the margin: first an oral warning (口头预警),
    then, still behind after the escalation days, a written one (书面预警)."""

    event_type = "performance_warning.given"
    rep_id: str
    month: str = Field(pattern=MONTH_PATTERN)
    level: WarningLevel
    given_on: date
    target_fen: int
    expected_fen: int
    actual_fen: int
    margin_percent: int


registry = EventRegistry([TargetSet, DailyCloseRecorded, WeeklyTargetClaimed, PerformanceWarningGiven])
