"""Queries over HTTP: the card, its history, lists, composition, the release pool, territory
and staff. Every customer query is held to the reader's line of command: out-of-line requests
are refused with 403 and a reason. A list without filters is the reader's own list (a rep's
customers, a supervisor's district, an area manager's area) — that is the reader's scope, not
silent filtering; asking for anything outside it is refused.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Query

from customer_service.adapters import personal_search
from customer_service.adapters.answers import (
    Card,
    CardHistory,
    Composition,
    CustomerSummary,
    PoolCustomer,
    StaffList,
    Territory,
)
from customer_service.adapters.cards import present_card, present_event
from customer_service.adapters.sealing import keys_of
from customer_service.domain.access import ARCHIVE_KEEPERS, customer_reach, require_in_line
from customer_service.domain.values import Channel, CreditRating, Grade, Status
from customer_service.queries import customers
from customer_service.queries import territory as territory_directory
from customer_service.queries.customers import Filters
from salesplatform.errors import NotFound
from salesplatform.events import Actor
from salesplatform.inputs import Offset
from salesplatform.openapi import Page, answers
from salesplatform.projections import reading
from salesplatform.service import Runtime, http_actor, http_runtime
from salesplatform.territory import Place, Reach, reach_of, require_filter_in_line

APPROVED = ["prospect", "active", "dormant", "lost"]

router = APIRouter(tags=["queries"])


class _TerritoryDirectory:
    """Where reps and districts lie, from the service's territory directory."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def place_of_rep(self, rep_id: str) -> Place | None:
        async with reading(self.runtime.pool, "territory_directory") as conn:
            staff = await territory_directory.staff_member(conn, rep_id)
        return None if staff is None else Place(rep_id, staff["district_id"], staff["area_id"])

    async def area_of_district(self, district_id: str) -> str | None:
        async with reading(self.runtime.pool, "territory_directory") as conn:
            unit = await territory_directory.unit(conn, district_id)
        return None if unit is None else unit["area_id"]


async def _scope(runtime: Runtime, reach: Reach, f: Filters) -> list[tuple[str, str]]:
    """The reader's own part of the archive and the filters asked for, as (column, value)
    conditions; a filter reaching outside the reader's line is refused."""
    asked = Place(f.rep_id, f.district_id, f.area_id)
    await require_filter_in_line(reach, asked, _TerritoryDirectory(runtime))
    return reach.conditions(asked)


async def _found_by_personal_data(runtime: Runtime, q: str | None) -> list[str]:
    """Customers whose sealed names or phones are exactly `q` (the blind index)."""
    terms = personal_search.query_terms(q) if q else []
    if not terms:
        return []
    async with reading(runtime.pool, "personal_search") as conn:
        key = await personal_search.search_key(conn, make=False)
        if key is None:
            return []
        return await customers.found_by_terms(conn, personal_search.blind(key, terms))


def filters(
    rep_id: str | None = None,
    district_id: str | None = None,
    area_id: str | None = None,
    grade: Grade | None = None,
    channel: Channel | None = None,
    status: Status | None = None,
    credit_rating: CreditRating | None = None,
    q: str | None = Query(
        None,
        min_length=1,
        max_length=100,
        description="text in name, phone, address or code; also a whole name or phone number sealed on a card "
        "(an individual's, or an owner's, manager's, legal person's or contact's)",
    ),
) -> Filters:
    return Filters(rep_id, district_id, area_id, grade, channel, status, credit_rating, q)


@router.get(
    "/customers",
    summary="List customers (filters, pagination)",
    response_model=None,
    responses=answers(Page[CustomerSummary]),
)
async def list_customers(
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    f: Filters = Depends(filters),
    limit: int = Query(50, ge=1, le=200),
    offset: Offset = 0,
) -> dict[str, Any]:
    """Merged cards are left out unless `status=merged` is asked for. Individuals appear
    under their label: their name, address and phone are personal data (open the card);
    `q` finds them, and owners' and contacts' names and phones, by a whole name or number."""
    scope = await _scope(runtime, customer_reach(actor), f)
    found = await _found_by_personal_data(runtime, f.q)
    async with reading(runtime.pool, "customer_directory") as conn:
        total, rows = await customers.customers(conn, scope, f, found, limit=limit, offset=offset)
    return {"items": [dict(r) for r in rows], "total": total, "limit": limit, "offset": offset}


@router.get(
    "/customers/composition",
    summary="Customer counts per grade, channel and district",
    response_model=None,
    responses=answers(Composition),
)
async def composition(
    runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor), f: Filters = Depends(filters)
) -> dict[str, Any]:
    """Counts approved customers (prospect, active, dormant, lost) unless a status is asked for."""
    scope = await _scope(runtime, customer_reach(actor), f)
    found = await _found_by_personal_data(runtime, f.q)
    async with reading(runtime.pool, "customer_directory") as conn:
        return await customers.composition(conn, scope, f, found, APPROVED)


@router.get(
    "/customers/pool",
    summary="Released prospects waiting to be claimed",
    response_model=None,
    responses=answers(Page[PoolCustomer]),
)
async def pool(
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    district_id: str | None = None,
    limit: int = Query(50, ge=1, le=200),
    offset: Offset = 0,
) -> dict[str, Any]:
    """A rep or supervisor sees the pool of the own district (a rep claims from it), an
    area manager the area's."""
    # The pool is a district's: a rep claims from the own district's.
    reach = reach_of(actor, readers=ARCHIVE_KEEPERS, reps_reach_district=True)
    scope = await _scope(runtime, reach, Filters(district_id=district_id))
    async with reading(runtime.pool, "customer_directory") as conn:
        total, rows = await customers.pool(conn, scope, limit=limit, offset=offset)
    return {"items": [dict(r) for r in rows], "total": total, "limit": limit, "offset": offset}


async def _card_row(conn: asyncpg.Connection, customer_id: str, actor: Actor) -> asyncpg.Record:
    row = await customers.card(conn, customer_id)
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist", code="customer_not_found")
    require_in_line(actor, Place(row["rep_id"], row["district_id"], row["area_id"]))
    return row


@router.get("/customers/{customer_id}", summary="The customer card", response_model=None, responses=answers(Card))
async def get_card(
    customer_id: str, runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)
) -> dict[str, Any]:
    async with reading(runtime.pool, "customer_directory") as conn:
        row = await _card_row(conn, customer_id, actor)
        keys = await keys_of(conn, [customer_id])
    return present_card(row, keys, actor)


@router.get(
    "/customers/{customer_id}/history",
    summary="Every change of the card: what, when, who, why",
    response_model=None,
    responses=answers(CardHistory),
)
async def history(
    customer_id: str, runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)
) -> dict[str, Any]:
    async with reading(runtime.pool, "customer_directory") as conn:
        await _card_row(conn, customer_id, actor)
        keys = await keys_of(conn, [customer_id])
        rows = await customers.card_events(conn, customer_id)
    return {"customer_id": customer_id, "events": [present_event(r, keys, customer_id, actor) for r in rows]}


@router.get(
    "/territory",
    summary="The territory tree: divisions, areas, districts",
    response_model=None,
    responses=answers(Territory),
)
async def territory(runtime: Runtime = Depends(http_runtime), _: Actor = Depends(http_actor)) -> dict[str, Any]:
    async with reading(runtime.pool, "territory_directory") as conn:
        rows = await territory_directory.units(conn)
    divisions = {
        r["unit_id"]: {"division_id": r["unit_id"], "name": r["name"], "areas": []}
        for r in rows
        if r["kind"] == "division"
    }
    areas = {
        r["unit_id"]: {"area_id": r["unit_id"], "name": r["name"], "districts": []} for r in rows if r["kind"] == "area"
    }
    for r in rows:
        if r["kind"] == "area":
            divisions[r["division_id"]]["areas"].append(areas[r["unit_id"]])
        elif r["kind"] == "district":
            areas[r["area_id"]]["districts"].append({"district_id": r["unit_id"], "name": r["name"]})
    return {"divisions": list(divisions.values())}


@router.get("/staff", summary="Reps, supervisors and area managers", response_model=None, responses=answers(StaffList))
async def staff(
    runtime: Runtime = Depends(http_runtime),
    _: Actor = Depends(http_actor),
    district_id: str | None = None,
    area_id: str | None = None,
    role: str | None = None,
    active: bool | None = True,
) -> dict[str, Any]:
    async with reading(runtime.pool, "territory_directory") as conn:
        rows = await territory_directory.staff(conn, district_id=district_id, area_id=area_id, role=role, active=active)
    return {"items": [dict(r) for r in rows]}
