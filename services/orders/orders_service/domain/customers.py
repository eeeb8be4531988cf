"""What the orders service knows about a customer (from the customer service's events) and the
territory line that decides who may act for it."""

from __future__ import annotations

from dataclasses import dataclass

from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Actor, Role

# Cards in these states take no orders: the archive refused them, they were merged into another
# card, or the customer is gone.
_NOT_ORDERABLE = {"rejected", "lost", "merged"}


@dataclass(frozen=True)
class CustomerCard:
    customer_id: str
    status: str
    district_id: str | None = None
    area_id: str | None = None
    division_id: str | None = None
    rep_id: str | None = None
    channel: str | None = None
    grade: str | None = None
    credit_limit_fen: int | None = None
    payment_terms_days: int | None = None
    merged_into: str | None = None

    def ensure_orderable(self) -> None:
        if self.status in _NOT_ORDERABLE:
            hint = f" (merged into {self.merged_into})" if self.merged_into else ""
            raise DomainError(
                f"customer {self.customer_id} is {self.status}{hint} and takes no orders",
                code="customer_not_orderable",
            )


def may_act_for(actor: Actor, card: CustomerCard) -> bool:
    """The line of command (docs/domain.md): rep → own customers, supervisor → the team's district,
    area manager → the area, sales and general managers and other systems → all."""
    match actor.role:
        case Role.rep:
            return card.rep_id is not None and card.rep_id == actor.id
        case Role.supervisor:
            return actor.district is not None and card.district_id == actor.district
        case Role.area_manager:
            return actor.area is not None and card.area_id == actor.area
        case Role.sales_manager | Role.general_manager | Role.system:
            return True
        case _:
            return False


def may_read(actor: Actor, *, rep_id: str | None, district_id: str | None, area_id: str | None) -> bool:
    """Reading follows the same line; the clerk and the inspector read everything."""
    if actor.role in (Role.clerk, Role.inspector):
        return True
    return may_act_for(actor, CustomerCard("", "", district_id=district_id, area_id=area_id, rep_id=rep_id))


def require_territory(actor: Actor, card: CustomerCard) -> None:
    if not may_act_for(actor, card):
        raise PermissionDenied(
            f"customer {card.customer_id} is outside the territory of {actor.role} {actor.id}",
            code="outside_territory",
        )
