"""The merchandising audit against the channel's standard success picture (RED 成功图象).

A channel's standard picture is a checklist of what an outlet of that channel must show (the
cooler in front, the brand block at eye level, price tags on every facing, …). On the audit the
rep ticks each item seen; the audit records which items were not met, and the standard is met
when every item is ticked. A checklist naming an item the standard does not have is refused.
Without a standard for the channel, or without a checklist, the audit is not judged against
one (`standard_met` null).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from salesplatform.errors import DomainError


@dataclass(frozen=True)
class StandardComparison:
    items: tuple[str, ...]
    checklist: Mapping[str, bool] | None

    @property
    def missing(self) -> tuple[str, ...]:
        if self.checklist is None:
            return ()
        return tuple(i for i in self.items if not self.checklist.get(i, False))

    @property
    def met(self) -> bool | None:
        if self.checklist is None or not self.items:
            return None
        return not self.missing


def compare_with_standard(items: Sequence[str], checklist: Mapping[str, bool] | None) -> StandardComparison | None:
    """The checklist against the standard's items; None when the channel has no standard."""
    if not items:
        if checklist:
            raise DomainError(
                "the customer's channel has no standard picture to tick against",
                code="no_standard_picture",
                field="checklist",
            )
        return None
    if checklist is not None:
        unknown = sorted(set(checklist) - set(items))
        if unknown:
            raise DomainError(
                f"the standard picture has no item {', '.join(unknown)}",
                code="unknown_checklist_item",
                field="checklist",
            )
    return StandardComparison(tuple(items), dict(checklist) if checklist is not None else None)
