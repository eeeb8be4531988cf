"""Queries over HTTP: the card, its history, lists, composition, the release pool, territory
and staff. Every customer query is held to the reader's line of command: out-of-line requests
are refused with 403 and a reason. A list without filters is the reader's own list (a rep's
customers, a supervisor's district, an area manager's area) — that is the reader's scope, not
silent filtering; asking for anything outside it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from customer_service.adapters.cards import SUMMARY_COLUMNS, present_card, present_event
from customer_service.adapters.sealing import keys_of
from customer_service.domain.access import ARCHIVE_KEEPERS, customer_reach, require_in_line
from customer_service.domain.values import (
    Channel,
    CreditRating,
    Grade,
    Status,
)
from salesplatform.errors import NotFound
from salesplatform.events import Actor
from salesplatform.inputs import Offset
from salesplatform.openapi import Page, answers
from salesplatform.projections import reading
from salesplatform.service import Runtime, http_actor
from salesplatform.territory import Place, Reach, reach_of, require_filter_in_line

APPROVED = ["prospect", "active", "dormant", "lost"]


@dataclass(frozen=True)
class Filters:
    rep_id: str | None = None
    district_id: str | None = None
    area_id: str | None = None
    grade: str | None = None
    channel: str | None = None
    status: str | None = None
    credit_rating: str | None = None
    q: str | None = None


class _TerritoryDirectory:
    """Where reps and districts lie, from the service's territory directory."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def place_of_rep(self, rep_id: str) -> Place | None:
        staff = await _staff(self.runtime, rep_id)
        return None if staff is None else Place(rep_id, staff["district_id"], staff["area_id"])

    async def area_of_district(self, district_id: str) -> str | None:
        unit = await _unit(self.runtime, district_id)
        return None if unit is None else unit["area_id"]


async def _scope(runtime: Runtime, reach: Reach, f: Filters) -> list[tuple[str, str]]:
    """The reader's own part of the archive and the filters asked for, as (column, value)
    conditions; a filter reaching outside the reader's line is refused."""
    asked = Place(f.rep_id, f.district_id, f.area_id)
    await require_filter_in_line(reach, asked, _TerritoryDirectory(runtime))
    return reach.conditions(asked)


async def _staff(runtime: Runtime, staff_id: str) -> asyncpg.Record | None:
    async with reading(runtime.pool, "territory_directory") as conn:
        return await conn.fetchrow("SELECT * FROM staff WHERE staff_id = $1", staff_id)


async def _unit(runtime: Runtime, unit_id: str) -> asyncpg.Record | None:
    async with reading(runtime.pool, "territory_directory") as conn:
        return await conn.fetchrow("SELECT * FROM units WHERE unit_id = $1", unit_id)


class _Where:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def add(self, sql: str, *values: Any) -> None:
        refs = []
        for v in values:
            self.args.append(v)
            refs.append(f"${len(self.args)}")
        self.parts.append(sql.format(*refs))

    def sql(self) -> str:
        return " AND ".join(self.parts) if self.parts else "true"


async def _found_by_personal_data(runtime: Runtime, q: str | None) -> list[str]:
    """Customers whose sealed names or phones are exactly `q` (the blind index)."""
    terms = personal_search.query_terms(q) if q else []
    if not terms:
        return []
    async with reading(runtime.pool, "personal_search") as conn:
        key = await personal_search.search_key(conn, make=False)
        if key is None:
            return []
        rows = await conn.fetch(
            "SELECT DISTINCT customer_id FROM personal_terms WHERE term = ANY($1::bytea[])",
            personal_search.blind(key, terms),
        )
    return [r["customer_id"] for r in rows]


def _where(
    scope: list[tuple[str, str]], f: Filters, default_statuses: list[str] | None, found: list[str] | None = None
) -> _Where:
    """`found`: customers the text `f.q` matched in their sealed personal data."""
    w = _Where()
    for column, value in scope:
        w.add(f"{column} = {{}}", value)
    for column in ("rep_id", "district_id", "area_id", "grade", "channel", "credit_rating"):
        value = getattr(f, column)
        if value is not None:
            w.add(f"{column} = {{}}", value)
    if f.status is not None:
        w.add("status = {}", f.status)
    elif default_statuses is not None:
        w.add("status = ANY({}::text[])", default_statuses)
    else:
        w.add("status <> {}", "merged")
    if f.q:
        pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        w.add(
            "(name ILIKE {0} OR phone ILIKE {0} OR address ILIKE {0} OR customer_code ILIKE {0}"
            " OR customer_id = ANY({1}::text[]))",
            pattern,
            found or [],
        )
    return w


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["queries"])

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

    @api.get(
        "/customers",
        summary="List customers (filters, pagination)",
        response_model=None,
        responses=answers(Page[CustomerSummary]),
    )
    async def list_customers(
        actor: Actor = Depends(http_actor),
        f: Filters = Depends(filters),
        limit: int = Query(50, ge=1, le=200),
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Merged cards are left out unless `status=merged` is asked for. Individuals appear
        under their label: their name, address and phone are personal data (open the card);
        `q` finds them, and owners' and contacts' names and phones, by a whole name or number."""
        w = _where(
            await _scope(runtime, customer_reach(actor), f), f, None, await _found_by_personal_data(runtime, f.q)
        )
        async with reading(runtime.pool, "customer_directory") as conn:
            total = await conn.fetchval(f"SELECT count(*) FROM customers WHERE {w.sql()}", *w.args)
            rows = await conn.fetch(
                f"SELECT {SUMMARY_COLUMNS} FROM customers WHERE {w.sql()}"
                f" ORDER BY registered_at, customer_id LIMIT {limit} OFFSET {offset}",
                *w.args,
            )
        return {"items": [dict(r) for r in rows], "total": total, "limit": limit, "offset": offset}

    @api.get(
        "/customers/composition",
        summary="Customer counts per grade, channel and district",
        response_model=None,
        responses=answers(Composition),
    )
    async def composition(actor: Actor = Depends(http_actor), f: Filters = Depends(filters)) -> dict[str, Any]:
        """Counts approved customers (prospect, active, dormant, lost) unless a status is asked for."""
        w = _where(
            await _scope(runtime, customer_reach(actor), f), f, APPROVED, await _found_by_personal_data(runtime, f.q)
        )
        out: dict[str, Any] = {}
        async with reading(runtime.pool, "customer_directory") as conn:
            out["total"] = await conn.fetchval(f"SELECT count(*) FROM customers WHERE {w.sql()}", *w.args)
            for dimension in ("grade", "channel", "district_id"):
                rows = await conn.fetch(
                    f"SELECT coalesce({dimension}, 'ungraded') AS k, count(*) AS n FROM customers"
                    f" WHERE {w.sql()} GROUP BY 1 ORDER BY 1",
                    *w.args,
                )
                key = "by_district" if dimension == "district_id" else f"by_{dimension}"
                out[key] = {r["k"]: r["n"] for r in rows}
        return out

    @api.get(
        "/customers/pool",
        summary="Released prospects waiting to be claimed",
        response_model=None,
        responses=answers(Page[PoolCustomer]),
    )
    async def pool(
        actor: Actor = Depends(http_actor),
        district_id: str | None = None,
        limit: int = Query(50, ge=1, le=200),
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """A rep or supervisor sees the pool of the own district (a rep claims from it), an
        area manager the area's."""
        w = _Where()
        w.add("status = {}", "prospect")
        w.add("rep_id IS NULL")
        # The pool is a district's: a rep claims from the own district's.
        reach = reach_of(actor, readers=ARCHIVE_KEEPERS, reps_reach_district=True)
        for column, value in await _scope(runtime, reach, Filters(district_id=district_id)):
            w.add(f"{column} = {{}}", value)
        async with reading(runtime.pool, "customer_directory") as conn:
            total = await conn.fetchval(f"SELECT count(*) FROM customers WHERE {w.sql()}", *w.args)
            rows = await conn.fetch(
                f"SELECT {SUMMARY_COLUMNS}, released_from FROM customers WHERE {w.sql()}"
                f" ORDER BY registered_at, customer_id LIMIT {limit} OFFSET {offset}",
                *w.args,
            )
        return {"items": [dict(r) for r in rows], "total": total, "limit": limit, "offset": offset}

    async def _card_row(conn: asyncpg.Connection, customer_id: str, actor: Actor) -> asyncpg.Record:
        row = await conn.fetchrow("SELECT * FROM customers WHERE customer_id = $1", customer_id)
        if row is None:
            raise NotFound(f"customer {customer_id} does not exist", code="customer_not_found")
        require_in_line(actor, Place(row["rep_id"], row["district_id"], row["area_id"]))
        return row

    @api.get("/customers/{customer_id}", summary="The customer card", response_model=None, responses=answers(Card))
    async def get_card(customer_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with reading(runtime.pool, "customer_directory") as conn:
            row = await _card_row(conn, customer_id, actor)
            keys = await keys_of(conn, [customer_id])
        return present_card(row, keys, actor)

    @api.get(
        "/customers/{customer_id}/history",
        summary="Every change of the card: what, when, who, why",
        response_model=None,
        responses=answers(CardHistory),
    )
    async def history(customer_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with reading(runtime.pool, "customer_directory") as conn:
            await _card_row(conn, customer_id, actor)
            keys = await keys_of(conn, [customer_id])
            rows = await conn.fetch(
                "SELECT stream_version, event_type, occurred_at, actor, data FROM public.events"
                " WHERE stream_id = $1 ORDER BY stream_version",
                f"customer-{customer_id}",
            )
        return {"customer_id": customer_id, "events": [present_event(r, keys, customer_id, actor) for r in rows]}

    @api.get(
        "/territory",
        summary="The territory tree: divisions, areas, districts",
        response_model=None,
        responses=answers(Territory),
    )
    async def territory(_: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with reading(runtime.pool, "territory_directory") as conn:
            rows = await conn.fetch("SELECT * FROM units ORDER BY unit_id")
        divisions = {
            r["unit_id"]: {"division_id": r["unit_id"], "name": r["name"], "areas": []}
            for r in rows
            if r["kind"] == "division"
        }
        areas = {
            r["unit_id"]: {"area_id": r["unit_id"], "name": r["name"], "districts": []}
            for r in rows
            if r["kind"] == "area"
        }
        for r in rows:
            if r["kind"] == "area":
                divisions[r["division_id"]]["areas"].append(areas[r["unit_id"]])
            elif r["kind"] == "district":
                areas[r["area_id"]]["districts"].append({"district_id": r["unit_id"], "name": r["name"]})
        return {"divisions": list(divisions.values())}

    @api.get("/staff", summary="Reps, supervisors and area managers", response_model=None, responses=answers(StaffList))
    async def staff(
        _: Actor = Depends(http_actor),
        district_id: str | None = None,
        area_id: str | None = None,
        role: str | None = None,
        active: bool | None = True,
    ) -> dict[str, Any]:
        w = _Where()
        for column, value in (("district_id", district_id), ("area_id", area_id), ("role", role), ("active", active)):
            if value is not None:
                w.add(f"{column} = {{}}", value)
        async with reading(runtime.pool, "territory_directory") as conn:
            rows = await conn.fetch(f"SELECT * FROM staff WHERE {w.sql()} ORDER BY staff_id", *w.args)
        return {"items": [dict(r) for r in rows]}

    return api
