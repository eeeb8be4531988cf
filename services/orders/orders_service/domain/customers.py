"""What the orders service knows about a customer (from the customer service's events) and the
territory line that decides who may act for it."""

from __future__ import annotations

from dataclasses import dataclass

from salesplatform.errors import DomainError
from salesplatform.events import Actor, Role
from salesplatform.territory import Place, in_line, require_in_line

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


# Beyond the line of command, reading only: the archive clerk and the inspector.
ORDER_READERS = frozenset({Role.clerk, Role.inspector})


def place_of(card: CustomerCard) -> Place:
    return Place(card.rep_id, card.district_id, card.area_id)


def may_act_for(actor: Actor, card: CustomerCard) -> bool:
    """The platform's line of command (`salesplatform.territory`)."""
    return in_line(actor, place_of(card))


def may_read(actor: Actor, *, rep_id: str | None, district_id: str | None, area_id: str | None) -> bool:
    """Reading follows the same line; the clerk and the inspector read everything."""
    return in_line(actor, Place(rep_id, district_id, area_id), readers=ORDER_READERS)


def require_territory(actor: Actor, card: CustomerCard) -> None:
    require_in_line(actor, place_of(card), f"customer {card.customer_id}")
