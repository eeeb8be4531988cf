"""What the query routes share: the business day, who a query is about, the date range, the
part of the territory a list covers, the customer a query reads, and the service's rules the
routes read per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

import asyncpg
from fastapi import Depends

from salesplatform.clock import business_date
from salesplatform.commands import invalid
from salesplatform.errors import NotFound
from salesplatform.events import Actor, Role
from salesplatform.service import Runtime, http_runtime
from visit_service.adapters.photo_store import PhotoStore
from visit_service.config import FieldConfig
from visit_service.domain.access import ListScope, ensure_can_read, list_scope, territory_of
from visit_service.queries import directory, visits

MAX_RANGE_DAYS = 366

T = TypeVar("T")


@dataclass(frozen=True)
class VisitRules:
    """What the routes read per request as `runtime.definition.rules`: the numbers of field
    execution and the photo store the service opened."""

    config: FieldConfig
    photos: PhotoStore


def visit_rules(runtime: Runtime = Depends(http_runtime)) -> VisitRules:
    """FastAPI dependency: the service's rules."""
    rules = runtime.definition.rules
    if not isinstance(rules, VisitRules):
        raise TypeError(f"the visit service's definition carries {rules!r} as its rules, not VisitRules")
    return rules


def today(runtime: Runtime, timezone: str) -> date:
    return business_date(runtime.clock.now(), timezone)


def rep_param(rep_id: str | None, actor: Actor) -> str:
    """The rep a query names; a rep asking without a name asks about themselves."""
    if rep_id is not None:
        return rep_id
    if actor.role is Role.rep:
        return actor.id
    raise invalid("rep_id", "name the rep: ?rep_id=…", "missing")


def date_range(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """From `start` to `end` (default: today), at most MAX_RANGE_DAYS days."""
    end = end or today
    start = start or end
    if start > end or (end - start) > timedelta(days=MAX_RANGE_DAYS):
        raise invalid("from", f"give a range of at most {MAX_RANGE_DAYS} days with from ≤ to", "bad_range")
    return start, end


async def scope_for(
    conn: asyncpg.Connection, actor: Actor, district_id: str | None, area_id: str | None, what: str
) -> ListScope:
    district_area = await directory.area_of_district(conn, district_id) if district_id else None
    return await list_scope(actor, district_id, area_id, district_area, what)


async def read_in_scope(
    runtime: Runtime,
    actor: Actor,
    district_id: str | None,
    area_id: str | None,
    what: str,
    read: Callable[[asyncpg.Connection, ListScope], Awaitable[T]],
) -> tuple[ListScope, T]:
    """A list spanning customers: the part of the territory it covers (the district and area
    asked for, within the actor's line) and what `read` finds there."""
    async with runtime.pool.acquire() as conn:
        scope = await scope_for(conn, actor, district_id, area_id, what)
        return scope, await read(conn, scope)


async def readable_customer(conn: asyncpg.Connection, customer_id: str, actor: Actor) -> dict[str, Any]:
    """The customer's directory row, if the actor may read it."""
    row = await directory.known_customer(conn, customer_id)
    ensure_can_read(actor, territory_of(row), f"customer {customer_id}")
    return row


async def existing_visit(conn: asyncpg.Connection, visit_id: str) -> asyncpg.Record:
    """The visit board's row of a visit."""
    row = await visits.visit(conn, visit_id)
    if row is None:
        raise NotFound(f"visit {visit_id} does not exist", code="visit_not_found")
    return row


async def readable_visit(conn: asyncpg.Connection, visit_id: str, actor: Actor) -> asyncpg.Record:
    """The visit board's row of a visit the actor may read."""
    row = await existing_visit(conn, visit_id)
    ensure_can_read(actor, territory_of(row), f"visit {visit_id}")
    return row
