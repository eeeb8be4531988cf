"""Placing an order, shared by the `place_order` command and the visit reactor."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from orders_service.domain.catalogue import Sku
from orders_service.domain.commands import PlaceOrder
from orders_service.domain.customers import CustomerCard
from orders_service.domain.events import Source
from orders_service.domain.order import Order
from orders_service.domain.ordering import CreditPosition, RequestedLine, take_order
from orders_service.domain.policy import OrderPolicy
from orders_service.domain.promotion import Promotion
from orders_service.queries.customers import DIRECTORY
from orders_service.queries.orders import CustomerStanding, standings
from salesplatform.aggregate import Aggregate
from salesplatform.clock import business_date as business_date_of
from salesplatform.commands import Request
from salesplatform.errors import DomainError, NotFound
from salesplatform.events import Actor, Role
from salesplatform.ids import uuid5
from salesplatform.uow import Preloaded, UnitOfWork

_ORDER_KEY_NS = uuid.UUID("2f4e7b1c-5a8d-4c3e-9b6f-7d1a0e2c8b45")
# Claimed by commands that change promotions, which orders read.
PROMOTIONS_CLAIM = "promotions"


def order_id_for_key(sender: str, key: str) -> str:
    """An idempotency key names one order per sender, so a retry finds the order it made."""
    return str(uuid5(_ORDER_KEY_NS, f"{sender}:{key}"))


def requested_order_id(cmd: PlaceOrder, sender: str) -> str | None:
    """The order id a `place_order` names: its own, or the one its idempotency key stands for
    (None: the order gets a new id)."""
    if cmd.order_id:
        return cmd.order_id
    if cmd.idempotency_key:
        return order_id_for_key(sender, cmd.idempotency_key)
    return None


def customer_claim(customer_id: str) -> str:
    """The key of a customer's open orders and invoices, which decide its credit check: orders
    of one customer are decided one after the other (`UnitOfWork.claim`)."""
    return f"customer:{customer_id}"


def summary(order: Order, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "status": order.status,
        "amount_fen": order.amount_fen,
        "approval_reasons": list(order.reasons),
        "required_role": order.required_role.value if order.required_role else None,
        "deliver_by": order.deliver_by.isoformat() if order.deliver_by else None,
        "lines": [line.model_dump() for line in order.lines],
        **extra,
    }


@dataclass(frozen=True)
class OrderContext:
    """What deciding an order needs from the read side."""

    card: CustomerCard | None
    position: CreditPosition
    promotion_ids: list[str]


async def _read_standings(
    uow: UnitOfWork, customer_ids: list[str], skus: list[str], day: date, *, here: bool = False
) -> tuple[dict[str, CustomerStanding], dict[str, set[str]]]:
    """`queries.orders.standings` in the generations this transaction reads (their locks held)."""
    schemas = await uow.schemas("receivables", "order_board", "promotions", *(() if here else (DIRECTORY,)))
    return await standings(uow.conn, schemas, customer_ids, skus, day, here=here)


async def order_context(
    uow: UnitOfWork,
    customer_id: str,
    skus: list[str],
    day: date,
    *,
    here: bool = False,
) -> OrderContext:
    """The customer card, its credit position (open and overdue invoices, confirmed orders not
    yet invoiced) and the promotions covering these SKUs on `day`: read ahead by the batch
    (`preload_order_contexts`) when it still holds, else read now. `here`: the directory
    generation on the search path (the reactor, applying inside it)."""
    standing: Any = Preloaded.MISSING
    promotions: Any = Preloaded.MISSING
    if uow.preloaded is not None and not here:
        standing = uow.preloaded.value("standing", f"{customer_id}@{day}")
        promotions = uow.preloaded.value("promotions", str(day))
    if standing is Preloaded.MISSING or promotions is Preloaded.MISSING:
        found, promotions = await _read_standings(uow, [customer_id], skus, day, here=here)
        standing = found[customer_id]
    wanted = set(skus)
    promotion_ids = sorted(p for p, covered in promotions.items() if wanted & covered)
    return OrderContext(standing.card, standing.position, promotion_ids)


async def preload_order_contexts(
    uow: UnitOfWork, customer_ids: list[str], skus: list[str], day: date
) -> dict[str, list[str]]:
    """Read the order contexts of a batch's orders at once, for `order_context` to find. Each
    customer's standing is kept under its claim: once an order of the batch for that customer
    is written, it is read again. Returns the promotions in scope by id, with their SKUs."""
    assert uow.preloaded is not None
    found, promotions = await _read_standings(uow, customer_ids, skus, day)
    for customer_id, standing in found.items():
        uow.preloaded.keep("standing", f"{customer_id}@{day}", standing, claim=customer_claim(customer_id))
    uow.preloaded.keep("promotions", str(day), promotions, claim=PROMOTIONS_CLAIM)
    return {p: sorted(covered) for p, covered in promotions.items()}


async def preload(uow: UnitOfWork, items: list[tuple[Request, PlaceOrder]], policy: OrderPolicy) -> None:
    """Read ahead what a batch's orders need (`place` finds it in the unit of work): the
    customers' standings and the promotions in scope, and the streams of the orders, their
    SKUs and those promotions."""
    day = business_date_of(uow.clock.now(), policy.timezone)
    skus = sorted({line.sku for _, cmd in items for line in cmd.lines})
    promotions = await preload_order_contexts(uow, [cmd.customer_id for _, cmd in items], skus, day)
    order_ids = {requested_order_id(cmd, request.actor.id) for request, cmd in items}
    await uow.preload_streams(
        [
            *(Order.stream_id_for(o) for o in sorted(o for o in order_ids if o is not None)),
            *(Sku.stream_id_for(s) for s in skus),
            *(Promotion.stream_id_for(p) for p in promotions),
        ]
    )


async def place(
    uow: UnitOfWork,
    *,
    order_id: str,
    customer_id: str,
    lines: list[RequestedLine],
    source: Source,
    visit_id: str | None,
    policy: OrderPolicy,
    rep_id: str | None = None,
    placer: Actor | None = None,
    authorize: Callable[[CustomerCard], None] | None = None,
    directory_here: bool = False,
    business_date: date | None = None,
    placed_at: datetime | None = None,
    new_id: bool = False,
) -> dict[str, Any]:
    """Load what the decision needs, decide, save. An order id that already exists for the same
    customer is the same order again: nothing is appended and its state is returned.

    The order's rep: `rep_id`, else the placing rep, else the customer's rep. `placer`: who the
    pricing and approval rules judge as placing it (default the command's actor; the rep who
    took a visit order). `authorize` checks
    the caller may act for the customer; `directory_here` reads the customer from the directory
    generation on the search path (the reactor, applying inside it). `new_id`: the order id
    was just made, so no stream of it can exist to read."""
    now = uow.clock.now()
    day = business_date or business_date_of(now, policy.timezone)
    skus = [line.sku for line in lines]
    await uow.claim(customer_claim(customer_id))
    context = await order_context(uow, customer_id, skus, day, here=directory_here)
    if context.card is None:
        raise NotFound(f"customer {customer_id} is not known here", code="unknown_customer", field="customer_id")
    if authorize is not None:
        authorize(context.card)
    wanted: list[tuple[type[Aggregate], str]] = [(Sku, s) for s in skus]
    wanted += [(Promotion, p) for p in context.promotion_ids]
    if not new_id:
        wanted.insert(0, (Order, order_id))
    loaded = await uow.load_many(wanted)
    order = Order(order_id) if new_id else loaded.pop(0)
    assert isinstance(order, Order)
    if order.exists:
        if order.customer_id != customer_id:
            raise DomainError(f"order id {order_id} is taken by another order", code="order_id_taken")
        return summary(order, already_placed=True)
    if rep_id is None:
        rep_id = uow.actor.id if uow.actor.role == Role.rep else context.card.rep_id
    catalogue = {sku: found for sku, found in zip(skus, loaded[: len(skus)], strict=True) if isinstance(found, Sku)}
    promotions = [p for p in loaded[len(skus) :] if isinstance(p, Promotion)]
    used = take_order(
        order,
        customer=context.card,
        requested=lines,
        skus=catalogue,
        promotions=promotions,
        position=context.position,
        placer=placer or uow.actor,
        rep_id=rep_id,
        source=source,
        visit_id=visit_id,
        business_date=day,
        placed_at=placed_at or now,
        now=now,
        policy=policy,
    )
    await uow.save(order, *used)
    return summary(order)
