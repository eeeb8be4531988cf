"""Date ranges a person picks: today, this week, this month, last month, the last 30 days, or
their own; business dates in the company time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

PRESETS = ("today", "week", "month", "last_month", "last_30_days")


@dataclass(frozen=True)
class Range:
    first: date
    last: date
    preset: str  # one of PRESETS, or "custom"


def preset_range(preset: str, today: date) -> Range:
    match preset:
        case "today":
            return Range(today, today, preset)
        case "week":
            return Range(today - timedelta(days=today.weekday()), today, preset)
        case "last_month":
            last = today.replace(day=1) - timedelta(days=1)
            return Range(last.replace(day=1), last, preset)
        case "last_30_days":
            return Range(today - timedelta(days=29), today, preset)
    return Range(today.replace(day=1), today, "month")


def parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def chosen_range(preset: str | None, first: str | None, last: str | None, today: date) -> Range:
    """The range of a filter form: a preset, or the days given (a missing or unreadable day
    falls back to the month to date, as the reports do)."""
    if preset in PRESETS:
        return preset_range(preset, today)
    start, end = parse_day(first), parse_day(last)
    if start is None and end is None:
        return preset_range("month", today)
    end = end or today
    start = start or end.replace(day=1)
    if start > end:
        start, end = end, start
    return Range(start, end, "custom")


def month_of(text: str | None, today: date) -> str:
    """A `YYYY-MM` month from the form, else this month."""
    well_formed = text is not None and len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit()
    if text is not None and well_formed and 1 <= int(text[5:]) <= 12:
        return text
    return f"{today:%Y-%m}"


def half_year(day: date) -> str:
    return f"{day.year}H{1 if day.month <= 6 else 2}"
