"""Which of two cards of one customer survives a merge (业务判定).

Husband/wife/parent/child buying are one customer; shareholders of a company are one customer;
on a clash the first deposit/order wins: the card that ordered first survives. When neither
card has an order yet, the card registered first survives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class BuyingRecord:
    customer_id: str
    registered_at: datetime
    first_order_at: datetime | None
    first_order_id: str | None = None
    registered_position: int = 0  # place in the log: breaks a tie of registration times


def first_buyer(a: BuyingRecord, b: BuyingRecord) -> tuple[str, str]:
    """(the customer id that wins, the rule reason as it is recorded)."""
    if a.first_order_at is not None or b.first_order_at is not None:
        ordered = [r for r in (a, b) if r.first_order_at is not None]
        winner = min(ordered, key=lambda r: (r.first_order_at, r.customer_id))
        return winner.customer_id, (
            f"first order wins: {winner.customer_id} ordered first"
            f" ({winner.first_order_id or 'order'} at {winner.first_order_at.isoformat()})"  # type: ignore[union-attr]
        )
    winner = min((a, b), key=lambda r: (r.registered_at, r.registered_position))
    return winner.customer_id, (
        f"no order on either card: the first registered wins ({winner.customer_id},"
        f" registered {winner.registered_at.isoformat()})"
    )
