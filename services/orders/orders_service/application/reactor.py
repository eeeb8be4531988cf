"""Orders taken on visits become orders here; the rep's delivery confirmation reaches the order.

The reactor `visit_orders` (salesplatform.reactors) turns `visit.order_taken` into
`place_visit_order` and `visit.delivery_confirmed` into `confirm_visit_delivery`, sent as
`service:orders:visit_orders` with the runtime's bus; each command's idempotency key is made
from the visit event's id, so an event delivered again places nothing twice (and an order id
already placed answers with that order). The visit service already decided the rep may visit
and sell to the customer, so no territory check is repeated; every other rule of `place_order`
applies, judged with the rep who took the order as the one placing it.

The reactor never runs ahead of the customer directory (`after`): it judges a visit order
against the directory as it stood at least at that point of the log. A visit order for a
customer the directory does not know yet is parked (`parked_orders`, in the transaction that
moves the reactor's checkpoint) and placed when the customer's events reach the reactor. One
that breaks a rule is kept with the reason (`visit_messages_refused`), never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import partial
from typing import Any

import asyncpg
import structlog
from pydantic import Field

from orders_service.application import ordering
from orders_service.domain.commands import Id, LineIn
from orders_service.domain.order import Order
from orders_service.domain.ordering import RequestedLine
from orders_service.domain.policy import OrderPolicy
from orders_service.projections.directory import CUSTOMER_EVENTS
from orders_service.queries import customers
from salesplatform.commands import Command, CommandBus
from salesplatform.errors import NotFound, ServiceError
from salesplatform.events import Actor, Envelope, Role
from salesplatform.reactors import Answer, Reaction, Reactor
from salesplatform.store import RecordedEvent
from salesplatform.uow import UnitOfWork

log = structlog.get_logger(__name__)

VISIT_EVENTS = frozenset({"visit.order_taken", "visit.delivery_confirmed"})


class PlaceVisitOrder(Command):
    """Place an order a rep took on a visit (sent by the service for visit.order_taken)."""

    name = "place_visit_order"
    order_id: Id
    customer_id: Id
    visit_id: Id | None = None
    rep_id: Id
    # Who took the order on the visit: the one the pricing and approval rules judge as placing it.
    taken_by: Actor
    business_date: date
    placed_at: datetime
    lines: list[LineIn] = Field(min_length=1, max_length=200)


class ConfirmVisitDelivery(Command):
    """Record the rep's confirmation of a delivery (sent by the service for visit.delivery_confirmed)."""

    name = "confirm_visit_delivery"
    order_id: Id
    delivered: bool


async def place_visit_order(cmd: PlaceVisitOrder, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    return await ordering.place(
        uow,
        order_id=cmd.order_id,
        customer_id=cmd.customer_id,
        lines=[RequestedLine(x.sku, x.quantity, x.unit_price_fen) for x in cmd.lines],
        source="visit",
        visit_id=cmd.visit_id,
        rep_id=cmd.rep_id,
        placer=cmd.taken_by,
        policy=policy,
        business_date=cmd.business_date,
        placed_at=cmd.placed_at,
    )


async def confirm_visit_delivery(cmd: ConfirmVisitDelivery, uow: UnitOfWork) -> dict[str, Any]:
    order = await uow.load(Order, cmd.order_id)
    if not order.exists:
        raise NotFound(f"order {cmd.order_id} is not known here", code="order_not_found", field="order_id")
    if order.delivery_confirmed == cmd.delivered:
        return ordering.summary(order, delivery_confirmed=cmd.delivered)  # said before: nothing changes
    order.confirm_delivery(cmd.delivered)
    await uow.save(order)
    return ordering.summary(order, delivery_confirmed=cmd.delivered)


def register(bus: CommandBus, policy: OrderPolicy) -> None:
    """The commands the reactor sends, on the service's bus (only the service sends them)."""
    service = {Role.service}
    bus.command(PlaceVisitOrder, roles=service, summary=PlaceVisitOrder.__doc__ or "")(
        partial(place_visit_order, policy=policy)
    )
    bus.command(ConfirmVisitDelivery, roles=service, summary=ConfirmVisitDelivery.__doc__ or "")(confirm_visit_delivery)


def placement(envelope: Envelope) -> Reaction:
    """`place_visit_order` for a visit.order_taken. What the event lacks is left out, for the
    command's validation to refuse with its reason."""
    data = envelope.data
    payload = {
        "order_id": data.get("order_id"),
        "customer_id": data.get("customer_id"),
        "visit_id": data.get("visit_id"),
        "rep_id": data.get("rep_id") or envelope.actor.id,
        "taken_by": envelope.actor.model_dump(mode="json", exclude_none=True),
        "business_date": data.get("business_date"),
        "placed_at": envelope.occurred_at.isoformat(),
        "lines": [
            {"sku": x.get("sku"), "quantity": x.get("quantity"), "unit_price_fen": x.get("unit_price_fen")}
            for x in data.get("lines") or []
            if isinstance(x, dict)
        ],
    }
    return Reaction(
        PlaceVisitOrder.name, {k: v for k, v in payload.items() if v is not None}, key=str(data.get("order_id"))
    )


class VisitOrders(Reactor):
    name = "visit_orders"
    event_types = VISIT_EVENTS | CUSTOMER_EVENTS
    after = (customers.DIRECTORY,)
    # Older releases reacted inside the customer directory's catch-up: carry on where it stopped.
    takes_over = customers.DIRECTORY

    async def react(self, conn: asyncpg.Connection, event: RecordedEvent) -> Sequence[Reaction]:
        data = event.data
        if event.event_type == "visit.order_taken":
            order_id, customer_id = data.get("order_id"), data.get("customer_id")
            keyed = isinstance(order_id, str) and isinstance(customer_id, str)
            if keyed and await customers.customer_card(conn, str(customer_id)) is None:
                await conn.execute(
                    "INSERT INTO parked_orders (order_id, customer_id, envelope, parked_at, reason)"
                    " VALUES ($1, $2, $3, $4, 'unknown_customer') ON CONFLICT (order_id) DO NOTHING",
                    order_id,
                    customer_id,
                    event.envelope.model_dump(mode="json"),
                    event.envelope.occurred_at,
                )
                log.info("visit_order_parked", order_id=order_id, customer_id=customer_id)
                return []
            return [placement(event.envelope)]
        if event.event_type == "visit.delivery_confirmed":
            return [
                Reaction(
                    ConfirmVisitDelivery.name,
                    {"order_id": data.get("order_id"), "delivered": bool(data.get("delivered"))},
                    key=str(data.get("order_id")),
                )
            ]
        # A customer event: the visit orders that waited for this customer are placed now.
        rows = await customers.parked_for(conn, data["customer_id"])
        return [placement(Envelope.model_validate(row["envelope"])) for row in rows]

    async def answered(self, conn: asyncpg.Connection, answer: Answer) -> None:
        cause = answer.event.envelope
        if cause.event_type in CUSTOMER_EVENTS:
            # A parked order placed (or refused) now: the parked visit event is the cause.
            order_id = answer.reaction.payload.get("order_id")
            parked = await customers.parked_envelope(conn, str(order_id))
            if answer.error is not None:
                outcome = await self._refuse(conn, Envelope.model_validate(parked), answer.error)
            else:
                outcome = "already_placed" if answer.result and answer.result.get("already_placed") else "placed"
            await conn.execute(
                "UPDATE parked_orders SET outcome = $2, settled_at = $3 WHERE order_id = $1 AND outcome IS NULL",
                order_id,
                outcome,
                cause.occurred_at,
            )
        elif answer.error is not None:
            await self._refuse(conn, cause, answer.error)

    @staticmethod
    async def _refuse(conn: asyncpg.Connection, envelope: Envelope, error: ServiceError) -> str:
        detail = error.to_dict()
        log.warning(
            "visit_message_refused",
            event_id=str(envelope.event_id),
            event_type=envelope.event_type,
            code=detail["code"],
            message=detail["message"],
        )
        await conn.execute(
            "INSERT INTO visit_messages_refused (event_id, event_type, order_id, customer_id, code, detail, at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
            envelope.event_id,
            envelope.event_type,
            envelope.data.get("order_id"),
            envelope.data.get("customer_id"),
            detail["code"],
            detail,
            envelope.occurred_at,
        )
        return f"refused: {detail['code']}"
