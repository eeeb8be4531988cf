"""Reactions to other services' events that change this service's own aggregates.

A customer leaves its old rep's routes when the customer service reassigns it
(`customer.assigned`), releases it under the 7-day rule (`customer.released`), lets another rep
claim it (`customer.claimed`) or merges it into another card (`customer.merged`). The reactor
`route_reassignment` (salesplatform.reactors) does it: for each such event it sends
`remove_reassigned_customer` for every route of another rep the customer is on, as
`service:visit:route_reassignment`, and the command appends `route.changed` (reason
`customer_reassigned`, caused by the customer event).

The rule it enforces is a state, not a delta: "a customer is only on the routes of the rep its
latest assignment names" (none after a release or a merge). The latest assignment is read from
this service's own log (the customer's copied stream): an event followed by a newer assignment
event of the same customer is skipped, whatever order the copies arrived in, and the command
checks the route again when it runs. Acting on the latest state makes the reaction safe to run
again — an event reacted to twice finds nothing left to remove — and independent of how far the
customer directory has got.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import structlog

from salesplatform.commands import Command, CommandBus
from salesplatform.events import Role
from salesplatform.reactors import Reaction, Reactor
from salesplatform.store import RecordedEvent
from salesplatform.uow import UnitOfWork
from visit_service.domain.route import Route
from visit_service.queries import directory, routes

log = structlog.get_logger(__name__)

# The events that decide which rep (if any) a customer belongs to, and the rep each names.
ASSIGNMENTS = ("customer.assigned", "customer.released", "customer.claimed", "customer.merged")


class RemoveReassignedCustomer(Command):
    """Take a customer off a route whose rep is no longer the one its latest assignment names."""

    name = "remove_reassigned_customer"
    route_id: str
    customer_id: str
    # The rep the customer's latest assignment names; none after a release or a merge.
    rep_id: str | None = None


async def remove_reassigned_customer(cmd: RemoveReassignedCustomer, uow: UnitOfWork) -> dict[str, Any]:
    route = await uow.get(Route, cmd.route_id)
    if cmd.customer_id not in route.customer_ids or route.rep_id == cmd.rep_id:
        return {"route_id": cmd.route_id, "removed": False}  # done before, or the rep is the right one
    route.remove_customer(cmd.customer_id, reassigned=True)
    await uow.save(route)
    log.info("customer_left_route", customer_id=cmd.customer_id, route_id=cmd.route_id)
    return {"route_id": cmd.route_id, "removed": True}


def register(bus: CommandBus) -> None:
    """The commands the reactors send, on the service's bus (only the service sends them)."""
    bus.command(RemoveReassignedCustomer, roles={Role.service}, summary=RemoveReassignedCustomer.__doc__ or "")(
        remove_reassigned_customer
    )


class RouteReassignment(Reactor):
    name = "route_reassignment"
    event_types = frozenset(ASSIGNMENTS)
    # Older releases reacted in a catch-up projection of this name: carry on where it stopped.
    takes_over = "route_reassignment"

    async def react(self, conn: asyncpg.Connection, event: RecordedEvent) -> Sequence[Reaction]:
        customer_id = event.data["customer_id"]
        if await directory.assignment_superseded(
            conn, event.envelope.stream_id, event.envelope.stream_version, list(ASSIGNMENTS)
        ):
            return []
        names_a_rep = event.event_type in ("customer.assigned", "customer.claimed")
        current_rep = event.data.get("rep_id") if names_a_rep else None
        route_ids = await routes.route_ids_with_customer_not_of(conn, customer_id, current_rep)
        return [
            Reaction(
                RemoveReassignedCustomer.name,
                {"route_id": route_id, "customer_id": customer_id, "rep_id": current_rep},
                key=route_id,
            )
            for route_id in route_ids
        ]
