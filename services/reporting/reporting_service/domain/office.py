"""The sales offices' meetings and assessments. Pure: aggregates and rules, no I/O.

The rules, as numbered in README.md ("Sales offices"):
- D1 daily close-out (日清): each rep closes the day with tomorrow's forecast (deposits,
  signed subscriptions, contracts, amount); a day's forecast is missed when any result falls
  short of it, and the reason the rep gives (原因分析) is shown with it.
- D2 weekly targets are claimed at the Monday meeting (on or before that Monday): signed
  subscriptions and their amount; their completion is what was signed that week, shown at
  the next meeting.
- D3 performance warnings (考核预警): a rep of a sales office whose signed subscriptions this
  month fall short of the expected share of the month's target by more than the margin gets
  an oral warning (口头预警); still behind the escalation days later, a written one (书面预警).
  The share is counted from the rep's first day at the office in the month (a rep who starts
  mid-month owes nothing for the days before), and the review judges the days already closed
  (up to yesterday), whose figures are settled. One of each per month; the history is kept.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from reporting_service.domain.events import DailyCloseRecorded, PerformanceWarningGiven, WeeklyTargetClaimed
from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError
from salesplatform.events import Event

DEFAULT_MARGIN_PERCENT = 20
DEFAULT_ESCALATION_DAYS = 7


class UnknownEvent(TypeError):
    """An aggregate was given an event type it does not know: a programming error."""


@dataclass(frozen=True)
class Figures:
    """A rep's results (or forecast) of a day: deals by step and the amount subscribed."""

    deposits: int = 0
    subscriptions: int = 0
    contracts: int = 0
    amount_fen: int = 0


def forecast_missed(forecast: Figures, actual: Figures) -> bool:
    """D1: any figure short of the forecast."""
    return (
        actual.deposits < forecast.deposits
        or actual.subscriptions < forecast.subscriptions
        or actual.contracts < forecast.contracts
        or actual.amount_fen < forecast.amount_fen
    )


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def expected_by_now(target_fen: int, started: date, day: date) -> int:
    """D3: the share of a month's target due by the end of `day`, for a rep who started at the
    office on `started` that month: the target spread evenly over the days from then to the
    month's end (whole fen, rounded down). Nothing is due before the rep started."""
    if day < started:
        return 0
    last = date(started.year, started.month, calendar.monthrange(started.year, started.month)[1])
    return target_fen * ((min(day, last) - started).days + 1) // ((last - started).days + 1)


def behind(actual_fen: int, expected_fen: int, margin_percent: int) -> bool:
    """D3: short of what is expected by now by more than the margin."""
    return actual_fen * 100 < expected_fen * (100 - margin_percent)


def warning_due(given: list[tuple[str, date]], is_behind: bool, today: date, escalation_days: int) -> str | None:
    """D3: the warning due today, if any, given the month's warnings so far (level, day)."""
    if not is_behind:
        return None
    levels = dict(given)
    if "oral" not in levels:
        return "oral"
    if "written" not in levels and (today - levels["oral"]).days >= escalation_days:
        return "written"
    return None


# -- aggregates ----------------------------------------------------------------------------------


class DailyClose(Aggregate):
    """A rep's close-out of one day at one office."""

    stream_prefix = "daily_close"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.forecast: Figures | None = None
        self.miss_reason: str | None = None

    @staticmethod
    def id_for(project_id: str, rep_id: str, day: date) -> str:
        return f"{project_id}@{rep_id}@{day.isoformat()}"

    def apply(self, event: Event) -> None:
        match event:
            case DailyCloseRecorded():
                self.forecast = Figures(event.deposits, event.subscriptions, event.contracts, event.amount_fen)
                self.miss_reason = event.miss_reason
            case _:
                raise UnknownEvent(event.event_type)

    def close(self, project_id: str, rep_id: str, day: date, forecast: Figures, miss_reason: str | None) -> bool:
        """Record the close-out; the same again changes nothing (False)."""
        if self.forecast == forecast and self.miss_reason == miss_reason:
            return False
        self.record(
            DailyCloseRecorded(
                project_id=project_id,
                rep_id=rep_id,
                business_date=day,
                forecast_for=day + timedelta(days=1),
                deposits=forecast.deposits,
                subscriptions=forecast.subscriptions,
                contracts=forecast.contracts,
                amount_fen=forecast.amount_fen,
                miss_reason=miss_reason,
            )
        )
        return True


class WeeklyClaim(Aggregate):
    """What a rep claimed for a week at the Monday meeting."""

    stream_prefix = "weekly_claim"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.claimed: tuple[int, int] | None = None

    @staticmethod
    def id_for(project_id: str, rep_id: str, week: date) -> str:
        return f"{project_id}@{rep_id}@{week.isoformat()}"

    def apply(self, event: Event) -> None:
        match event:
            case WeeklyTargetClaimed():
                self.claimed = (event.subscriptions, event.amount_fen)
            case _:
                raise UnknownEvent(event.event_type)

    def claim(self, project_id: str, rep_id: str, week: date, subscriptions: int, amount_fen: int, today: date) -> bool:
        if week.weekday() != 0:
            raise DomainError(f"{week} is not a Monday: claims are made at the Monday meeting", code="not_a_monday")
        if today > week:
            raise DomainError(f"the meeting of the week of {week} is over", code="claim_after_meeting")
        if self.claimed == (subscriptions, amount_fen):
            return False
        self.record(
            WeeklyTargetClaimed(
                project_id=project_id, rep_id=rep_id, week=week, subscriptions=subscriptions, amount_fen=amount_fen
            )
        )
        return True


class PerformanceFile(Aggregate):
    """A rep's warnings of one month."""

    stream_prefix = "performance"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.given: tuple[tuple[str, date], ...] = ()

    @staticmethod
    def id_for(rep_id: str, month: str) -> str:
        return f"{rep_id}@{month}"

    def apply(self, event: Event) -> None:
        match event:
            case PerformanceWarningGiven():
                self.given = (*self.given, (event.level, event.given_on))
            case _:
                raise UnknownEvent(event.event_type)

    def review(
        self,
        rep_id: str,
        month: str,
        today: date,
        *,
        started: date,
        as_of: date,
        target_fen: int,
        actual_fen: int,
        margin_percent: int,
        escalation_days: int,
    ) -> str | None:
        """Give the warning due today (D3), judged on the figures up to `as_of`, if any;
        returns its level."""
        expected = expected_by_now(target_fen, started, as_of)
        level = warning_due(list(self.given), behind(actual_fen, expected, margin_percent), today, escalation_days)
        if level is not None:
            self.record(
                PerformanceWarningGiven(
                    rep_id=rep_id,
                    month=month,
                    level=level,
                    given_on=today,
                    target_fen=target_fen,
                    expected_fen=expected,
                    actual_fen=actual_fen,
                    margin_percent=margin_percent,
                )
            )
        return level
