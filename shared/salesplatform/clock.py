"""Time as a port, so SLA timers and business days can be tested with a controlled clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = at

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, at: datetime) -> None:
        self._now = at


def business_date(at: datetime, tz: str | ZoneInfo = "Asia/Shanghai") -> date:
    """The date in the company's time zone (not UTC) on which `at` falls."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return at.astimezone(zone).date()


def end_of_business_day(day: date, tz: str | ZoneInfo = "Asia/Shanghai") -> datetime:
    """The first instant after `day` in the company's time zone, as UTC."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), zone).astimezone(UTC)
