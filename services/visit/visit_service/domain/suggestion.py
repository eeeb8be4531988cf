"""The suggested order (建议订单): what the customer should buy, from the stock count and the
customer's usual quantities.

The rule, with its numbers (also in README.md):
- usual quantity of a SKU = its total quantity over the customer's last 3 orders (newest by
  placing time; cancelled and rejected orders do not count) divided by the number of those
  orders — an order without the SKU counts as 0, so a SKU bought in one order of three has a
  usual quantity of a third of that order;
- target stock = 1.5 × usual quantity;
- suggested = target − (shelf + store), never below 0, rounded up to whole units; a SKU that
  was not counted has 0 on hand;
- a required SKU of the customer's channel that is missing from the shelf (shelf 0 or not
  counted) is suggested at least at its usual quantity rounded up, and at least 1 unit.
Arithmetic is exact (fractions), so 1.5 × 7 = 10.5 rounds up to 11, never to 10 by float error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

from visit_service.domain.events import OrderLine, StockLine, SuggestedLine

ORDERS_CONSIDERED = 3
TARGET_FACTOR = Fraction(3, 2)


def usual_quantities(recent_orders: Sequence[Mapping[str, int]]) -> dict[str, Fraction]:
    """`recent_orders`: quantity per SKU of each of the customer's orders, newest first."""
    considered = list(recent_orders)[:ORDERS_CONSIDERED]
    if not considered:
        return {}
    totals: dict[str, int] = {}
    for order in considered:
        for sku, quantity in order.items():
            totals[sku] = totals.get(sku, 0) + quantity
    return {sku: Fraction(total, len(considered)) for sku, total in totals.items()}


def suggest_order(
    stock: Sequence[StockLine], usual: Mapping[str, Fraction], required_skus: Iterable[str]
) -> list[SuggestedLine]:
    on_shelf = {line.sku: line.shelf_qty for line in stock}
    on_hand = {line.sku: line.shelf_qty + line.store_qty for line in stock}
    required = set(required_skus)
    lines: list[SuggestedLine] = []
    for sku in sorted(set(on_hand) | set(usual) | required):
        usual_qty = usual.get(sku, Fraction(0))
        quantity = max(0, math.ceil(TARGET_FACTOR * usual_qty - on_hand.get(sku, 0)))
        if sku in required and on_shelf.get(sku, 0) == 0:
            quantity = max(quantity, math.ceil(usual_qty), 1)
        if quantity > 0:
            lines.append(SuggestedLine(sku=sku, quantity=quantity))
    return lines


def suggestion_adopted(suggested: Sequence[SuggestedLine], ordered: Sequence[OrderLine]) -> bool:
    """Adopted when there was a suggestion and every suggested line was ordered in at least the
    suggested quantity (the rep may add lines or round up; cutting a line means not adopted)."""
    if not suggested:
        return False
    quantities: dict[str, int] = {}
    for line in ordered:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    return all(quantities.get(s.sku, 0) >= s.quantity for s in suggested)
