"""Orders taken on visits become orders here; the rep's delivery confirmation reaches the order.

Runs inside the customer directory's catch-up transaction (see `projections.directory`), so the
order is appended in the same transaction as the checkpoint that says the visit event was
handled: a redelivered or replayed event finds its order already there and creates nothing.
The visit service already decided the rep may visit and sell to the customer, so no territory
check is repeated; every other rule of `place_order` applies. A visit order for a customer the
directory does not know yet is parked and placed when the customer's events arrive. One that
breaks a rule is kept with the reason (`visit_messages_refused`), never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import structlog
from pydantic import ValidationError

from orders_service.adapters import lookups
from orders_service.application import ordering
from orders_service.domain.commands import PlaceOrder
from orders_service.domain.customers import CustomerCard
from orders_service.domain.order import Order
from orders_service.domain.ordering import RequestedLine
from orders_service.domain.policy import OrderPolicy
from salesplatform.commands import CommandBus
from salesplatform.errors import ConcurrencyConflict, ServiceError, from_validation_error
from salesplatform.events import Envelope
from salesplatform.store import RecordedEvent, stream_version
from salesplatform.uow import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass
class VisitOrders:
    policy: OrderPolicy
    bus: CommandBus | None = None

    def _uow(self, conn: asyncpg.Connection, envelope: Envelope) -> UnitOfWork:
        assert self.bus is not None, "the reactor is attached to the bus in bootstrap"
        return UnitOfWork(
            conn,
            self.bus.registry,
            self.bus.clock,
            envelope.actor,
            self.bus.inline_projections,
            correlation_id=envelope.correlation_id or str(envelope.event_id),
            causation_id=str(envelope.event_id),
        )

    async def order_taken(self, conn: asyncpg.Connection, event: RecordedEvent) -> None:
        data = event.data
        if await stream_version(conn, f"order-{data['order_id']}") > 0:
            return  # placed before: a replay or redelivery changes nothing
        card = await lookups.customer_card(conn, data["customer_id"], here=True)
        if card is None:
            await conn.execute(
                "INSERT INTO parked_orders (order_id, customer_id, envelope, parked_at, reason)"
                " VALUES ($1, $2, $3, $4, 'unknown_customer') ON CONFLICT (order_id) DO NOTHING",
                data["order_id"],
                data["customer_id"],
                event.envelope.model_dump(mode="json"),
                event.envelope.occurred_at,
            )
            log.info("visit_order_parked", order_id=data["order_id"], customer_id=data["customer_id"])
            return
        await self._place(conn, event.envelope, card)

    async def customer_known(self, conn: asyncpg.Connection, customer_id: str, at: Any) -> None:
        """Place the visit orders that waited for this customer."""
        rows = await conn.fetch(
            "SELECT order_id, envelope FROM parked_orders WHERE customer_id = $1 AND outcome IS NULL"
            " ORDER BY parked_at, order_id",
            customer_id,
        )
        if not rows:
            return
        card = await lookups.customer_card(conn, customer_id, here=True)
        assert card is not None
        for row in rows:
            envelope = Envelope.model_validate(row["envelope"])
            if await stream_version(conn, f"order-{row['order_id']}") > 0:
                outcome = "already_placed"
            else:
                outcome = await self._place(conn, envelope, card)
            await conn.execute(
                "UPDATE parked_orders SET outcome = $2, settled_at = $3 WHERE order_id = $1",
                row["order_id"],
                outcome,
                at,
            )

    async def _place(self, conn: asyncpg.Connection, envelope: Envelope, card: CustomerCard) -> str:
        data = envelope.data
        schema = await conn.fetchval("SELECT current_schema()")
        try:
            command = PlaceOrder.model_validate(
                {
                    "order_id": data["order_id"],
                    "customer_id": data["customer_id"],
                    "source": "visit",
                    "visit_id": data.get("visit_id"),
                    "lines": [
                        {"sku": x["sku"], "quantity": x["quantity"], "unit_price_fen": x.get("unit_price_fen")}
                        for x in data.get("lines", [])
                    ],
                }
            )
            uow = self._uow(conn, envelope)
            async with conn.transaction():  # a savepoint: a refusal leaves nothing behind
                await ordering.place(
                    uow,
                    order_id=data["order_id"],
                    customer_id=card.customer_id,
                    lines=[RequestedLine(x.sku, x.quantity, x.unit_price_fen) for x in command.lines],
                    source="visit",
                    visit_id=command.visit_id,
                    rep_id=data.get("rep_id") or envelope.actor.id,
                    policy=self.policy,
                    directory_here=True,
                    business_date=date.fromisoformat(data["business_date"]),
                    placed_at=envelope.occurred_at,
                )
            return "placed"
        except ConcurrencyConflict:
            raise  # the whole batch is retried in a new transaction
        except ValidationError as exc:
            return await self._refuse(conn, envelope, from_validation_error(exc))
        except ServiceError as exc:
            return await self._refuse(conn, envelope, exc)
        finally:
            # Appending applied the inline read models, which moved the search path.
            await conn.execute("SELECT set_config('search_path', $1, true)", f"{schema}, public")

    async def delivery_confirmed(self, conn: asyncpg.Connection, event: RecordedEvent) -> None:
        data = event.data
        schema = await conn.fetchval("SELECT current_schema()")
        try:
            uow = self._uow(conn, event.envelope)
            order = await uow.load(Order, data["order_id"])
            if not order.exists:
                await self._refuse(
                    conn,
                    event.envelope,
                    ServiceError(f"order {data['order_id']} is not known here", code="order_not_found"),
                )
                return
            if order.delivery_confirmed == data["delivered"]:
                return  # said before: a replay changes nothing
            async with conn.transaction():
                order.confirm_delivery(bool(data["delivered"]))
                await uow.save(order)
        except ConcurrencyConflict:
            raise
        except ServiceError as exc:
            await self._refuse(conn, event.envelope, exc)
        finally:
            await conn.execute("SELECT set_config('search_path', $1, true)", f"{schema}, public")

    async def _refuse(self, conn: asyncpg.Connection, envelope: Envelope, error: ServiceError) -> str:
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
