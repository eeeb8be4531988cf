"""Outlet positions: set on the card, and corrected from check-ins a supervisor confirmed.

The visit service records `visit.check_in_confirmed` when a supervisor vouches that the rep
was at the outlet; the check-in's position is then the outlet's. The reactor
`position_corrections` (salesplatform.reactors) sends `correct_position_from_check_in` for each
copied confirmation, as `service:customer:position_corrections`, keyed by the confirmation's
event id, so each confirmation corrects the card once; the command records
`customer.position_set` (source `check_in`). A confirmation followed in the log by a newer one
for the same customer is skipped (the newer one decides), so reacting again ends in the same
position. An individual customer's position is their home: sealed like their other personal
data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import structlog
from pydantic import Field

from customer_service.adapters import sealing
from customer_service.domain.access import require_in_line
from customer_service.domain.commands import SetPosition
from customer_service.domain.customer import Customer
from customer_service.domain.values import Id, Position
from customer_service.queries import customers
from salesplatform.commands import Command, CommandBus
from salesplatform.events import Role
from salesplatform.reactors import Reaction, Reactor
from salesplatform.store import RecordedEvent
from salesplatform.territory import Place
from salesplatform.uow import UnitOfWork

log = structlog.get_logger(__name__)

CONFIRMED = "visit.check_in_confirmed"


class CorrectPositionFromCheckIn(Command):
    """The outlet is where a check-in a supervisor confirmed was made (sent by the service)."""

    name = "correct_position_from_check_in"
    personal_fields = frozenset({"latitude", "longitude"})  # an individual's home
    customer_id: Id
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    visit_id: str | None = Field(default=None, max_length=100)
    accuracy_m: float | None = Field(default=None, ge=0)
    confirmed_by: str | None = Field(default=None, max_length=100)


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


async def correct_position_from_check_in(cmd: CorrectPositionFromCheckIn, uow: UnitOfWork) -> dict[str, Any]:
    customer = await uow.load(Customer, cmd.customer_id)
    if not customer.exists or customer.status in ("merged", "rejected"):
        log.info("position_correction_skipped", customer_id=cmd.customer_id, status=customer.status)
        return {"customer_id": cmd.customer_id, "corrected": False}
    key = await sealing.key_for_writing(uow, customer.id)
    customer.set_position(
        Position(latitude=cmd.latitude, longitude=cmd.longitude),
        key.seal,
        source="check_in",
        visit_id=cmd.visit_id,
        accuracy_m=cmd.accuracy_m,
        reason=f"check-in of visit {cmd.visit_id} confirmed by {cmd.confirmed_by}",
    )
    await uow.save(customer)
    await sealing.keep(uow, key)
    return {"customer_id": customer.id, "corrected": True, "version": customer.version}


def register(bus: CommandBus) -> None:
    """The command the reactor sends, on the service's bus (only the service sends it)."""
    bus.command(CorrectPositionFromCheckIn, roles={Role.service}, summary=CorrectPositionFromCheckIn.__doc__ or "")(
        correct_position_from_check_in
    )


class PositionCorrections(Reactor):
    name = "position_corrections"
    event_types = frozenset({CONFIRMED})
    # Older releases reacted in a catch-up projection of this name: carry on where it stopped.
    takes_over = "position_corrections"

    async def react(self, conn: asyncpg.Connection, event: RecordedEvent) -> Sequence[Reaction]:
        d = event.data
        if await customers.confirmation_superseded(
            conn, CONFIRMED, d.get("customer_id", ""), event.tx_id, event.position
        ):
            return []
        payload = {
            "customer_id": d.get("customer_id"),
            "latitude": d.get("latitude"),
            "longitude": d.get("longitude"),
            "visit_id": d.get("visit_id"),
            "accuracy_m": d.get("accuracy_m"),
            "confirmed_by": d.get("confirmed_by"),
        }
        return [Reaction(CorrectPositionFromCheckIn.name, {k: v for k, v in payload.items() if v is not None})]
