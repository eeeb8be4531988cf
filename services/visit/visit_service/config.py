"""The visit service's settings from the environment (`VISIT_…`, `COMPANY_TIMEZONE`): the
numbers of field execution (check-in positions, route planning, photos and the monthly route
cleanup) and who approves high-value accounts' visits, checked at start: a value that cannot be
used stops the service naming its variable."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from salesplatform.events import Role
from salesplatform.settings import TimeZoneName, company_timezone
from visit_service.domain.check_in import PositionRules
from visit_service.domain.route_planning import DEFAULT_FREQUENCY_WEEKS, PlanningRules
from visit_service.domain.standards import CleanupRules

PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


def minute_of_day(text: str) -> int:
    """'08:30' → 510."""
    hours, _, minutes = text.partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 24 * 60 or len(minutes) != 2:
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    return value


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True)
class PhotoRules:
    max_bytes: int = 5 * 1024 * 1024
    content_types: tuple[str, ...] = PHOTO_TYPES
    retention_days: int = 180


@dataclass(frozen=True)
class FieldConfig:
    """What the handlers, timers and queries of field execution are configured with."""

    timezone: str = "Asia/Shanghai"
    positions: PositionRules = field(default_factory=PositionRules)
    planning: PlanningRules = field(default_factory=PlanningRules)
    photos: PhotoRules = field(default_factory=PhotoRules)
    cleanup: CleanupRules = field(default_factory=CleanupRules)


class FieldSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VISIT_", extra="ignore", populate_by_name=True)

    # Check-ins farther than this from the outlet (or read with a coarser accuracy) are flagged.
    check_in_max_distance_m: float = Field(200.0, gt=0)
    # Identical coordinates at another outlet within this many days: likely faked.
    check_in_repeat_days: int = Field(30, ge=1)
    # Visit frequency by grade, in weeks: "A:1,B:2,C:4".
    plan_frequencies: str = "A:1,B:2,C:4"
    plan_visit_minutes: int = Field(20, ge=1, le=480)
    plan_day_start: str = "08:30"
    plan_day_end: str = "17:30"
    plan_workdays: str = "1,2,3,4,5"
    plan_speed_kmh: float = Field(25.0, gt=0)
    plan_time_limit_seconds: float = Field(10.0, gt=0, le=600)
    photo_max_bytes: int = Field(5 * 1024 * 1024, gt=0, le=64 * 1024 * 1024)
    photo_types: str = ",".join(PHOTO_TYPES)
    photo_retention_days: int = Field(180, ge=1)
    cleanup_unvisited_days: int = Field(30, ge=1)
    cleanup_new_outlet_days: int = Field(30, ge=1)
    # Director-level approval of high-value accounts: the grades (e.g. "A") whose key-account
    # visits are approved by `high_value_approver` or above instead of the supervisor.
    high_value_grades: str = ""
    high_value_approver: Role = Role.area_manager
    timezone: TimeZoneName = company_timezone()

    @field_validator("plan_frequencies")
    @classmethod
    def _frequencies(cls, v: str) -> str:
        parse_frequencies(v)
        return v

    @field_validator("plan_day_start", "plan_day_end")
    @classmethod
    def _time_of_day(cls, v: str) -> str:
        minute_of_day(v)
        return v

    @field_validator("plan_workdays")
    @classmethod
    def _workdays(cls, v: str) -> str:
        days = [d.strip() for d in v.split(",") if d.strip()]
        if not days or not all(d.isdigit() and 1 <= int(d) <= 7 for d in days):
            raise ValueError(f"days of the week 1 (Monday) to 7, separated by commas; not {v!r}")
        return v

    def grades_approved_higher(self) -> frozenset[str]:
        return frozenset(g.strip().upper() for g in self.high_value_grades.split(",") if g.strip())

    @field_validator("photo_types")
    @classmethod
    def _known_types(cls, v: str) -> str:
        unknown = {t.strip() for t in v.split(",") if t.strip()} - set(PHOTO_TYPES)
        if unknown:
            raise ValueError(f"photos may be {', '.join(PHOTO_TYPES)}; not {', '.join(sorted(unknown))}")
        return v

    def config(self, timezone: str | None = None) -> FieldConfig:
        return FieldConfig(
            timezone=timezone or self.timezone,
            positions=PositionRules(self.check_in_max_distance_m, self.check_in_repeat_days),
            planning=PlanningRules(
                frequency_weeks=parse_frequencies(self.plan_frequencies),
                visit_minutes=self.plan_visit_minutes,
                day_start_minute=minute_of_day(self.plan_day_start),
                day_end_minute=minute_of_day(self.plan_day_end),
                workdays=tuple(int(d) for d in self.plan_workdays.split(",") if d.strip()),
                speed_kmh=self.plan_speed_kmh,
                time_limit_seconds=self.plan_time_limit_seconds,
            ),
            photos=PhotoRules(
                self.photo_max_bytes,
                tuple(t.strip() for t in self.photo_types.split(",") if t.strip()),
                self.photo_retention_days,
            ),
            cleanup=CleanupRules(self.cleanup_unvisited_days, self.cleanup_new_outlet_days),
        )


def parse_frequencies(text: str) -> dict[str, int]:
    """'A:1,B:2,C:4' → {'A': 1, 'B': 2, 'C': 4}."""
    out: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        grade, _, weeks = part.partition(":")
        if not grade.strip() or not weeks.strip().isdigit() or int(weeks) < 1:
            raise ValueError(f"grade:weeks pairs separated by commas (A:1,B:2,C:4); not {part!r}")
        out[grade.strip().upper()] = int(weeks)
    return out or dict(DEFAULT_FREQUENCY_WEEKS)
