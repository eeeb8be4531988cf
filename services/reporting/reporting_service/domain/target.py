"""Monthly sales targets (销售指标) and their decomposition (目标分解). Pure."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from reporting_service.domain.events import TargetSet
from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Actor, Event, Role
from salesplatform.ids import uuid5
from salesplatform.territory import OUTSIDE_LINE

# Target ids are derived from what the target is about, so setting the same target twice
# addresses the same stream (its history is the list of amounts it had).
_NAMESPACE = uuid.UUID("6c1f3b0e-6a57-4d0c-9a51-2f8e3b7d2a10")

# Which levels a target of each level may be split into.
CHILD_LEVELS = {"area": ("district", "rep"), "district": ("rep",)}


def target_id_for(month: str, level: str, subject_id: str, product_group: str | None) -> str:
    return str(uuid5(_NAMESPACE, f"{month}/{level}/{subject_id}/{product_group or '*'}"))


class Target(Aggregate):
    stream_prefix = "target"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.month = ""
        self.level = ""
        self.subject_id = ""
        self.product_group: str | None = None
        self.amount_fen = 0

    def apply(self, event: Event) -> None:
        match event:
            case TargetSet():
                self.month = event.month
                self.level = event.level
                self.subject_id = event.subject_id
                self.product_group = event.product_group
                self.amount_fen = event.amount_fen

    def set(self, month: str, level: str, subject_id: str, product_group: str | None, amount_fen: int) -> bool:
        """Record the amount; returns False when the target already has it (nothing recorded)."""
        if amount_fen < 0:
            raise DomainError("a target cannot be negative", code="negative_target", field="amount_fen")
        if self.exists and self.amount_fen == amount_fen:
            return False
        self.record(
            TargetSet(
                target_id=self.id,
                month=month,
                level=level,
                subject_id=subject_id,
                product_group=product_group,
                amount_fen=amount_fen,
            )
        )
        return True


def split_amount(amount_fen: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split `amount_fen` in proportion to `weights` so the parts sum to it exactly.

    Largest remainder: every part gets the floor of its share, then the fen left over go one
    each to the parts with the largest fractional remainders, ties to the smaller subject id.
    Deterministic, and a part's weight of 0 always gets 0.
    """
    total = sum(weights.values())
    if amount_fen < 0:
        raise DomainError("a target cannot be negative", code="negative_target")
    if not weights or total <= 0 or any(w < 0 for w in weights.values()):
        raise DomainError("weights must be non-negative and not all zero", code="bad_weights", field="weights")
    parts = {k: amount_fen * w // total for k, w in weights.items()}
    left = amount_fen - sum(parts.values())
    by_remainder = sorted(weights, key=lambda k: (-(amount_fen * weights[k] % total), k))
    for k in by_remainder[:left]:
        parts[k] += 1
    return parts


@dataclass(frozen=True)
class Subject:
    """A rep, district or area as the customer archive describes it."""

    level: str
    id: str
    area_id: str | None
    district_id: str | None = None


def check_may_set_target(actor: Actor, subject: Subject) -> None:
    """Sales managers and up set any target; an area manager those of the districts and reps
    of the own area. Everyone else is refused."""
    if actor.is_manager:
        return
    if actor.role == Role.area_manager:
        if subject.level == "area":
            raise PermissionDenied("area targets are set by the sales manager", code="target_level_not_allowed")
        if actor.area is None or subject.area_id != actor.area:
            raise PermissionDenied(f"{subject.level} {subject.id} is outside your area", code=OUTSIDE_LINE)
        return
    raise PermissionDenied("only managers set targets", code="role_not_allowed")


def check_child_of(parent: Subject, child: Subject) -> None:
    """A decomposition only reaches the parent's own districts or reps."""
    inside = child.area_id == parent.id if parent.level == "area" else child.district_id == parent.id
    if not inside:
        raise DomainError(
            f"{child.level} {child.id} is not part of {parent.level} {parent.id}",
            code="subject_outside_parent",
            field="weights",
        )


def check_can_decompose(parent_level: str, into: str) -> None:
    if into not in CHILD_LEVELS.get(parent_level, ()):
        raise DomainError(
            f"a {parent_level} target cannot be split into {into} targets",
            code="bad_decomposition",
            field="into",
        )
