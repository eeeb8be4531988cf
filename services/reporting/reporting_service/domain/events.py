"""Events the reporting service publishes. `target.set` is the whole contract (README.md)."""

from __future__ import annotations

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


registry = EventRegistry([TargetSet])
