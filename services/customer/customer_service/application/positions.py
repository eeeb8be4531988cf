"""Outlet positions: set on the card, and corrected from check-ins a supervisor confirmed.

The visit service records `visit.check_in_confirmed` when a supervisor vouches that the rep
was at the outlet; the check-in's position is then the outlet's. `PositionCorrections` is a
catch-up projection over the copied visit events whose `apply` records
`customer.position_set` (source `check_in`) in the transaction of its checkpoint, so each
confirmation corrects the card exactly once. A confirmation followed in the log by a newer one
for the same customer is skipped (the newer one decides), so replaying the log ends in the
same position. An individual customer's position is their home: sealed like their other
personal data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg
import structlog

from customer_service.adapters import sealing
from customer_service.domain.access import require_in_line
from customer_service.domain.commands import SetPosition
from customer_service.domain.customer import Customer
from customer_service.domain.values import Position
from customer_service.queries import customers
from salesplatform.clock import FixedClock
from salesplatform.events import EventRegistry, service_actor
from salesplatform.projections import Change, Projection
from salesplatform.store import RecordedEvent
from salesplatform.territory import Place
from salesplatform.uow import UnitOfWork

log = structlog.get_logger(__name__)

REACTOR_ACTOR = service_actor("customer", "position-corrections")
CONFIRMED = "visit.check_in_confirmed"


async def set_position(cmd: SetPosition, uow: UnitOfWork) -> dict[str, Any]:
    """Where the outlet is; an individual customer's home position is sealed."""
    customer = await uow.get(Customer, cmd.customer_id, what="customer")
    require_in_line(
        uow.actor, Place(rep_id=customer.rep_id, district_id=customer.district_id, area_id=customer.area_id)
    )
    key = await sealing.key_for_writing(uow, customer.id)
    customer.set_position(Position(latitude=cmd.latitude, longitude=cmd.longitude), key.seal, reason=cmd.reason)
    await uow.save(customer)
    await sealing.keep(uow, key)
    return {"customer_id": customer.id, "sealed": customer.individual, "version": customer.version}


class PositionCorrections(Projection):
    name = "position_corrections"
    event_types = frozenset({CONFIRMED})
    # No tables: what it did is in the log (customer.position_set caused by the confirmation).
    schema_sql = "SELECT 1"

    def __init__(self, registry: EventRegistry, inline_projections: list[Projection]) -> None:
        self.registry = registry
        self.inline_projections = inline_projections

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d = event.data
        customer_id = d["customer_id"]
        if await customers.confirmation_superseded(conn, CONFIRMED, customer_id, event.tx_id, event.position):
            return None
        uow = UnitOfWork(
            conn,
            self.registry,
            # The correction takes the time of its cause, so replaying the log gives the same events.
            FixedClock(event.envelope.occurred_at),
            REACTOR_ACTOR,
            self.inline_projections,
            correlation_id=event.envelope.correlation_id,
            causation_id=str(event.envelope.event_id),
        )
        customer = await uow.load(Customer, customer_id)
        if not customer.exists or customer.status in ("merged", "rejected"):
            log.info("position_correction_skipped", customer_id=customer_id, status=customer.status)
            return None
        if await customers.position_set_by(conn, customer_id, str(event.envelope.event_id)):
            return None
        key = await sealing.key_for_writing(uow, customer_id)
        customer.set_position(
            Position(latitude=d["latitude"], longitude=d["longitude"]),
            key.seal,
            source="check_in",
            visit_id=d.get("visit_id"),
            accuracy_m=d.get("accuracy_m"),
            reason=f"check-in of visit {d.get('visit_id')} confirmed by {d.get('confirmed_by')}",
        )
        await uow.save(customer)
        await sealing.keep(uow, key)
        return [{"customer_id": customer_id}]
