"""Commands of the reporting service: managers set and decompose monthly targets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from reporting_service.domain.events import MONTH_PATTERN, Level
from salesplatform.command import Command

_ID = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")


class SetTarget(Command):
    """Set the monthly target of a rep, district or area, optionally for one product group."""

    name = "set_target"
    month: str = Field(pattern=MONTH_PATTERN, description="YYYY-MM")
    level: Level
    subject_id: str = _ID
    product_group: str | None = Field(None, min_length=1, max_length=100)
    amount_fen: int = Field(ge=0, le=10**13)


class DecomposeTarget(Command):
    """Split a parent target (area, or district) over its districts or reps (目标分解).

    `weights` maps each child's id to a non-negative integer weight; without weights the
    amount is split equally over every district of the area or every rep of the territory.
    """

    name = "decompose_target"
    month: str = Field(pattern=MONTH_PATTERN)
    level: Literal["area", "district"]
    subject_id: str = _ID
    product_group: str | None = Field(None, min_length=1, max_length=100)
    into: Literal["district", "rep"]
    weights: dict[str, int] | None = Field(None, min_length=1, max_length=500)

    @field_validator("weights")
    @classmethod
    def _weights_are_counts(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is None:
            return value
        if any(w < 0 for w in value.values()):
            raise ValueError("weights must not be negative")
        if sum(value.values()) == 0:
            raise ValueError("at least one weight must be positive")
        if any(not k or len(k) > 100 for k in value):
            raise ValueError("weight keys are subject ids of 1 to 100 characters")
        return value
