"""Taking an order: price the lines, apply promotions, decide whether it needs approval.

Pure functions over the facts a handler gathers (the customer card, the SKUs, the promotions in
scope, the customer's credit position), so every rule is tested without I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from orders_service.domain.catalogue import Sku
from orders_service.domain.customers import CustomerCard
from orders_service.domain.events import OrderLine, Source
from orders_service.domain.order import Order
from orders_service.domain.policy import ApprovalPolicy, OrderPolicy, highest
from orders_service.domain.promotion import Promotion
from salesplatform.errors import NotFound, PermissionDenied
from salesplatform.events import Actor, Role

# Why an order waits for approval; the role needed comes from the policy.
AMOUNT_OVER_THRESHOLD = "amount_over_threshold"
CREDIT_LIMIT_EXCEEDED = "credit_limit_exceeded"
OVERDUE_RECEIVABLES = "overdue_receivables"
PRICE_BELOW_FLOOR = "price_below_floor"
PRICE_BELOW_LIST = "price_below_list"


@dataclass(frozen=True)
class RequestedLine:
    sku: str
    quantity: int
    unit_price_fen: int | None = None


@dataclass(frozen=True)
class PricedLine:
    sku: str
    product_group: str
    quantity: int
    entered_price_fen: int  # the price asked for, before any promotion
    list_price_fen: int
    floor_price_fen: int
    unit_price_fen: int  # what the customer pays per unit
    promotion_id: str | None = None
    gift_quantity: int = 0

    @property
    def amount_fen(self) -> int:
        return self.unit_price_fen * self.quantity

    def to_event(self) -> OrderLine:
        return OrderLine(
            sku=self.sku,
            product_group=self.product_group,
            quantity=self.quantity,
            unit_price_fen=self.unit_price_fen,
            amount_fen=self.amount_fen,
            promotion_id=self.promotion_id,
            gift_quantity=self.gift_quantity,
        )


@dataclass(frozen=True)
class CreditPosition:
    """What the customer owes now: open invoices plus confirmed orders not yet invoiced."""

    open_invoices_fen: int = 0
    open_orders_fen: int = 0
    overdue_fen: int = 0

    @property
    def exposure_fen(self) -> int:
        return self.open_invoices_fen + self.open_orders_fen


@dataclass(frozen=True)
class Approval:
    reasons: tuple[str, ...] = ()
    required_role: Role | None = None

    @property
    def needed(self) -> bool:
        return bool(self.reasons)


def price_lines(
    requested: Sequence[RequestedLine],
    skus: dict[str, Sku],
    area_id: str | None,
    placer: Actor,
    policy: ApprovalPolicy,
) -> list[PricedLine]:
    """Each line at the price asked for, or the region's list price (the default)."""
    priced = []
    for i, line in enumerate(requested):
        sku = skus.get(line.sku)
        if sku is None or not sku.exists:
            raise NotFound(f"unknown SKU {line.sku}", code="unknown_sku", field=f"lines.{i}.sku")
        list_fen, floor_fen = sku.prices_for(area_id)
        entered = list_fen if line.unit_price_fen is None else line.unit_price_fen
        # Below the floor is never the placer's own call; only someone who could approve such a
        # price may even propose it, and then it still goes for approval (see assess).
        if entered < floor_fen and not placer.at_least(policy.below_floor_role):
            raise PermissionDenied(
                f"{line.sku}: {entered} fen is below the floor price {floor_fen};"
                f" a {policy.below_floor_role} or above must place such an order",
                code="price_below_floor",
                field=f"lines.{i}.unit_price_fen",
            )
        priced.append(
            PricedLine(
                sku=line.sku,
                product_group=sku.product_group,
                quantity=line.quantity,
                entered_price_fen=entered,
                list_price_fen=list_fen,
                floor_price_fen=floor_fen,
                unit_price_fen=entered,
            )
        )
    return priced


def apply_promotions(
    lines: list[PricedLine],
    promotions: Sequence[Promotion],
    channel: str | None,
    day: date,
) -> tuple[list[PricedLine], dict[str, int], list[tuple[str, str]]]:
    """Apply at most one promotion per line (the first in scope by id). A promotion whose cost
    for this whole order would pass its remaining budget is not applied to the order at all.

    Returns (lines, cost per promotion, [(promotion_id, reason declined)]).
    """
    chosen: dict[int, Promotion] = {}
    for i, line in enumerate(lines):
        for promotion in sorted(promotions, key=lambda p: p.id):
            if promotion.covers(line.sku, channel, day):
                chosen[i] = promotion
                break
    proposed: dict[int, PricedLine] = {}
    costs: dict[str, int] = {}
    for i, promotion in chosen.items():
        line = lines[i]
        if promotion.discount_percent is not None:
            unit = promotion.discounted(line.unit_price_fen)
            cost = (line.unit_price_fen - unit) * line.quantity
            new = replace(line, unit_price_fen=unit, promotion_id=promotion.id)
        else:
            gifts = promotion.gifts_for(line.quantity)
            cost = gifts * line.list_price_fen  # gifts are valued at list price
            new = replace(line, gift_quantity=gifts, promotion_id=promotion.id)
        if cost > 0:
            proposed[i] = new
            costs[promotion.id] = costs.get(promotion.id, 0) + cost
    by_id = {p.id: p for p in promotions}
    declined = []
    for promotion_id, cost in sorted(costs.items()):
        remaining = by_id[promotion_id].remaining_fen
        if cost > remaining:
            declined.append(
                (
                    promotion_id,
                    f"budget_exhausted: the order would cost {cost} fen, {remaining} fen of the budget is left",
                )
            )
    for promotion_id, _ in declined:
        del costs[promotion_id]
    out = [proposed[i] if i in proposed and proposed[i].promotion_id in costs else line for i, line in enumerate(lines)]
    return out, costs, declined


def assess(
    lines: Sequence[PricedLine],
    customer: CustomerCard,
    position: CreditPosition,
    placer: Actor,
    policy: ApprovalPolicy,
) -> Approval:
    """Every reason this order needs approval, and the lowest role that may give it."""
    amount = sum(line.amount_fen for line in lines)
    needs: dict[str, Role] = {}
    if amount > policy.threshold_fen:
        needs[AMOUNT_OVER_THRESHOLD] = policy.role_for_amount(amount)
    if customer.credit_limit_fen is not None and position.exposure_fen + amount > customer.credit_limit_fen:
        needs[CREDIT_LIMIT_EXCEEDED] = policy.credit_role
    if position.overdue_fen > 0:
        needs[OVERDUE_RECEIVABLES] = policy.overdue_role
    if any(line.entered_price_fen < line.floor_price_fen for line in lines):
        needs[PRICE_BELOW_FLOOR] = policy.below_floor_role
    elif any(line.entered_price_fen < line.list_price_fen for line in lines) and not placer.at_least(
        policy.price_float_role
    ):
        needs[PRICE_BELOW_LIST] = policy.price_float_role
    if not needs:
        return Approval()
    return Approval(tuple(needs), highest(list(needs.values())))


def take_order(
    order: Order,
    *,
    customer: CustomerCard,
    requested: Sequence[RequestedLine],
    skus: dict[str, Sku],
    promotions: Sequence[Promotion],
    position: CreditPosition,
    placer: Actor,
    rep_id: str | None,
    source: Source,
    visit_id: str | None,
    business_date: date,
    placed_at: datetime,
    now: datetime,
    policy: OrderPolicy,
) -> list[Promotion]:
    """Decide the whole order; returns the promotions whose budgets it used (to be saved)."""
    customer.ensure_orderable()
    priced = price_lines(requested, skus, customer.area_id, placer, policy.approval)
    priced, costs, declined = apply_promotions(priced, promotions, customer.channel, business_date)
    approval = assess(priced, customer, position, placer, policy.approval)
    order.place(
        customer_id=customer.customer_id,
        rep_id=rep_id,
        district_id=customer.district_id,
        area_id=customer.area_id,
        source=source,
        visit_id=visit_id,
        lines=[line.to_event() for line in priced],
        business_date=business_date,
        placed_at=placed_at,
        declined=declined,
        reasons=approval.reasons,
        required_role=approval.required_role,
        now=now,
        delivery_hours=policy.delivery_hours,
    )
    used = []
    for promotion in promotions:
        if promotion.id in costs:
            promotion.incur(order.id, costs[promotion.id])
            used.append(promotion)
    return used
