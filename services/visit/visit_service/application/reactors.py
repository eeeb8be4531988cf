"""Reactions to other services' events that change this service's own aggregates.

A customer leaves its old rep's routes when the customer service reassigns it
(`customer.assigned`), releases it under the 7-day rule (`customer.released`), lets another rep
claim it (`customer.claimed`) or merges it into another card (`customer.merged`). This reactor
(not the directory projection) does it: it is a catch-up projection whose `apply` runs the
route decision and appends `route.changed` (reason `customer_reassigned`) in the same
transaction as its checkpoint, so each reaction happens exactly once.

The rule it enforces is a state, not a delta: "a customer is only on the routes of the rep its
latest assignment names" (none after a release or a merge). The latest assignment is read from
this service's own log (the customer's copied stream): an event followed by a newer assignment
event of the same customer is skipped, whatever order the copies arrived in. Acting on the
latest state makes the reactor safe to replay — a rebuild, or an old event read again, finds
nothing to remove — and independent of how far the customer directory has got.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg
import structlog

from salesplatform.clock import FixedClock
from salesplatform.events import EventRegistry, service_actor
from salesplatform.projections import Change, Projection, active_schema
from salesplatform.store import RecordedEvent
from salesplatform.uow import UnitOfWork
from visit_service.domain.route import Route
from visit_service.projections.visits import RouteBook

log = structlog.get_logger(__name__)

REACTOR_ACTOR = service_actor("visit", "route-reassignment")


# The events that decide which rep (if any) a customer belongs to, and the rep each names.
ASSIGNMENTS = ("customer.assigned", "customer.released", "customer.claimed", "customer.merged")


class RouteReassignment(Projection):
    name = "route_reassignment"
    event_types = frozenset(ASSIGNMENTS)
    # No tables: what the reactor did is in the log (route.changed, caused by the customer event).
    schema_sql = "SELECT 1"

    def __init__(self, registry: EventRegistry, inline_projections: Sequence[Projection]) -> None:
        self.registry = registry
        self.inline_projections = list(inline_projections)

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        customer_id = event.data["customer_id"]
        superseded = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM public.events WHERE stream_id = $1 AND stream_version > $2"
            " AND event_type = ANY($3::text[]))",
            event.envelope.stream_id,
            event.envelope.stream_version,
            list(ASSIGNMENTS),
        )
        if superseded:
            return None
        names_a_rep = event.event_type in ("customer.assigned", "customer.claimed")
        current_rep = event.data.get("rep_id") if names_a_rep else None
        schema = await active_schema(conn, RouteBook.name)
        route_ids = [
            r["route_id"]
            for r in await conn.fetch(
                f"SELECT route_id FROM {schema}.routes WHERE customer_ids @> ARRAY[$1]::text[]"
                " AND rep_id IS DISTINCT FROM $2 ORDER BY route_id",
                customer_id,
                current_rep,
            )
        ]
        if not route_ids:
            return None
        uow = UnitOfWork(
            conn,
            self.registry,
            # The reaction takes the time of its cause, so replaying the log gives the same events.
            FixedClock(event.envelope.occurred_at),
            REACTOR_ACTOR,
            self.inline_projections,
            correlation_id=event.envelope.correlation_id,
            causation_id=str(event.envelope.event_id),
        )
        for route_id in route_ids:
            route = await uow.get(Route, route_id)
            route.remove_customer(customer_id, reassigned=True)
            await uow.save(route)
        log.info("customer_left_routes", customer_id=customer_id, route_ids=route_ids, cause=event.event_type)
        return [{"customer_id": customer_id, "route_ids": route_ids}]
