"""Queries of sales control (销控) over HTTP: the unit inventory, one unit with its deal and
receipts, the price lists, the daily sales-control check (当日销控核实), recommended layouts
(户型推荐) and the deposits due. Everyone of the office reads the project's units (a rep of the
office's district, its supervisor, the area's manager; managers, the clerk, the inspector and
other systems every project); anyone else is refused (403)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query

from orders_service.adapters.answers import (
    DepositsDue,
    PriceLists,
    Recommendations,
    SalesControl,
    UnitDetail,
    UnitInventory,
)
from orders_service.domain.customers import ORDER_READERS
from orders_service.domain.policy import OrderPolicy
from orders_service.domain.unit_events import Orientation, UnitStatus
from orders_service.domain.units import Needs, OnSale, recommend_layouts
from salesplatform.clock import business_date
from salesplatform.errors import NotFound
from salesplatform.events import Actor
from salesplatform.inputs import Day, Offset
from salesplatform.openapi import answers
from salesplatform.projections import active_schema, reading
from salesplatform.service import Runtime, http_actor
from salesplatform.store import load_stream
from salesplatform.territory import Place, require_in_line

UNIT_COLUMNS = (
    "unit_id, project_id, building, unit_no, floor, layout_name, rooms, halls, bathrooms, area_sqm, orientation,"
    " position, status, release, unit_price_fen, total_price_fen, lead_id, credited_rep_id, deal_price_fen,"
    " deposit_agreed_fen, deposit_total_fen, deposit_due_by, deposit_overdue, subscription_no, subscription_state,"
    " subscription_price_fen, payment_plan, contract_no, status_since"
)


async def _office(conn: asyncpg.Connection, project_id: str, actor: Actor) -> asyncpg.Record:
    schema = await active_schema(conn, "sales_offices")
    office = await conn.fetchrow(f"SELECT * FROM {schema}.offices WHERE project_id = $1", project_id)
    if office is None:
        raise NotFound(f"project {project_id} has no sales office here", code="unknown_project")
    # Everyone of the office reads its units: its reps (of its district) and whoever the line of
    # command lets read the district's customers.
    require_in_line(
        actor,
        Place(district_id=office["district_id"], area_id=office["area_id"]),
        f"the project {project_id}",
        readers=ORDER_READERS,
        reps_reach_district=True,
    )
    return office


def _unit(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out["layout"] = f"{row['rooms']}室{row['halls']}厅{row['bathrooms']}卫"
    return out


def router(runtime: Runtime, policy: OrderPolicy) -> APIRouter:
    api = APIRouter(tags=["sales control"])

    def today() -> date:
        return business_date(runtime.clock.now(), policy.timezone)

    @api.get(
        "/projects/{project_id}/units",
        summary="The unit inventory (销控表): every unit and its status",
        response_model=None,
        responses=answers(UnitInventory),
    )
    async def units(
        project_id: str,
        actor: Actor = Depends(http_actor),
        status: UnitStatus | None = None,
        building: str | None = None,
        layout_name: str | None = None,
        limit: Annotated[int, Query(ge=1, le=2000)] = 500,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Units in building and number order with layout, area, orientation, position, list and
        total price, status and the deal on them (lead, credited rep, deposit, subscription,
        contract); `counts` by status over the whole project (or the building/layout asked)."""
        async with reading(runtime.pool, "sales_control") as conn:
            await _office(conn, project_id, actor)
            where, args = ["project_id = $1"], [project_id]
            for column, value in (("building", building), ("layout_name", layout_name)):
                if value is not None:
                    args.append(value)
                    where.append(f"{column} = ${len(args)}")
            counts = await conn.fetch(
                f"SELECT status, count(*) AS n FROM units WHERE {' AND '.join(where)} GROUP BY status", *args
            )
            if status is not None:
                args.append(status)
                where.append(f"status = ${len(args)}")
            clause = " AND ".join(where)
            total = await conn.fetchval(f"SELECT count(*) FROM units WHERE {clause}", *args)
            rows = await conn.fetch(
                f"SELECT {UNIT_COLUMNS} FROM units WHERE {clause}"
                f" ORDER BY building, floor, unit_no LIMIT {limit} OFFSET {offset}",
                *args,
            )
        return {
            "project_id": project_id,
            "counts": {r["status"]: r["n"] for r in counts},
            "total": total,
            "limit": limit,
            "offset": offset,
            "items": [_unit(r) for r in rows],
        }

    @api.get(
        "/units/{unit_id}",
        summary="A unit: its figures, its deal, receipts and history",
        response_model=None,
        responses=answers(UnitDetail),
    )
    async def unit(unit_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with reading(runtime.pool, "sales_control") as conn:
            row = await conn.fetchrow(f"SELECT {UNIT_COLUMNS} FROM units WHERE unit_id = $1", unit_id)
            if row is None:
                raise NotFound(f"unit {unit_id} does not exist", code="unit_not_found")
            await _office(conn, row["project_id"], actor)
            receipts = await conn.fetch("SELECT receipt FROM receipts WHERE unit_id = $1 ORDER BY receipt_no", unit_id)
            events = await load_stream(conn, f"unit-{unit_id}")
        return {
            **_unit(row),
            "receipts": [r["receipt"] for r in receipts],
            "history": [
                {
                    "event_type": e.envelope.event_type,
                    "at": e.envelope.occurred_at,
                    "by": {"id": e.envelope.actor.id, "role": e.envelope.actor.role},
                    "data": e.envelope.data,
                }
                for e in events
            ],
        }

    @api.get(
        "/projects/{project_id}/price-lists",
        summary="The price lists (价目表) per release",
        response_model=None,
        responses=answers(PriceLists),
    )
    async def price_lists(project_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with reading(runtime.pool, "sales_control") as conn:
            await _office(conn, project_id, actor)
            rows = await conn.fetch(
                "SELECT p.release, p.unit_id, u.building, u.unit_no, u.layout_name, u.area_sqm, p.unit_price_fen,"
                " p.total_price_fen, p.set_at, p.set_by, p.reason"
                " FROM price_lists p JOIN units u USING (unit_id) WHERE p.project_id = $1"
                " ORDER BY p.release, u.building, u.floor, u.unit_no",
                project_id,
            )
        releases: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            price = dict(r)
            releases.setdefault(price.pop("release"), []).append(price)
        return {"project_id": project_id, "releases": [{"release": k, "prices": v} for k, v in releases.items()]}

    @api.get(
        "/projects/{project_id}/sales-control",
        summary="The daily sales-control check (当日销控核实): every unit's status and what changed that day",
        response_model=None,
        responses=answers(SalesControl),
    )
    async def sales_control(
        project_id: str, actor: Actor = Depends(http_actor), day: Day | None = Query(None, alias="date")
    ) -> dict[str, Any]:
        """For the rep and the manager to reconcile: `units` (status now, by building and number),
        `changes` (every change of the day in order: reservation, deposit, subscription filled
        or signed, contract, mortgage, handover, release, price), `counts` by status and the
        checks recorded that day (`check_sales_control`)."""
        on = day or today()
        async with reading(runtime.pool, "sales_control") as conn:
            office = await _office(conn, project_id, actor)
            rows = await conn.fetch(
                "SELECT unit_id, building, unit_no, layout_name, status, lead_id, credited_rep_id,"
                " deposit_total_fen, deposit_agreed_fen, deposit_due_by, deposit_overdue, subscription_state"
                " FROM units WHERE project_id = $1 ORDER BY building, floor, unit_no",
                project_id,
            )
            changes = await conn.fetch(
                "SELECT c.at, c.unit_id, u.building, u.unit_no, c.event_type, c.status_before, c.status_after,"
                " c.lead_id, c.rep_id, c.amount_fen, c.by FROM unit_changes c JOIN units u USING (unit_id)"
                " WHERE c.project_id = $1 AND c.business_date = $2 ORDER BY c.position",
                project_id,
                on,
            )
            checks = await conn.fetch(
                "SELECT checked_by, role, at, units, discrepancies FROM checks"
                " WHERE project_id = $1 AND business_date = $2 ORDER BY position",
                project_id,
                on,
            )
        return {
            "project_id": project_id,
            "name": office["name"],
            "business_date": on.isoformat(),
            "counts": dict(Counter(r["status"] for r in rows)),
            "units": [dict(r) for r in rows],
            "changes": [dict(c) for c in changes],
            "checks": [dict(c) for c in checks],
        }

    @api.get(
        "/projects/{project_id}/recommendations",
        summary="Up to three layouts for a customer's needs (户型推荐)",
        response_model=None,
        responses=answers(Recommendations),
    )
    async def recommendations(
        project_id: str,
        actor: Actor = Depends(http_actor),
        rooms: Annotated[int | None, Query(ge=0, le=20)] = None,
        area_min: Annotated[Decimal | None, Query(gt=0)] = None,
        area_max: Annotated[Decimal | None, Query(gt=0)] = None,
        budget_fen: Annotated[int | None, Query(gt=0)] = None,
        orientation: Orientation | None = None,
    ) -> dict[str, Any]:
        """Layouts with available units meeting every need given, at most three: layout (室厅卫),
        area range, orientations, positions, total price range, units available and the
        cheapest fitting unit."""
        needs = Needs(rooms, area_min, area_max, budget_fen, orientation)
        async with reading(runtime.pool, "sales_control") as conn:
            await _office(conn, project_id, actor)
            rows = await conn.fetch(
                "SELECT unit_id, building, unit_no, layout_name, rooms, halls, bathrooms, area_sqm, orientation,"
                " position, total_price_fen FROM units WHERE project_id = $1 AND status = 'available'",
                project_id,
            )
        return {
            "project_id": project_id,
            "needs": {k: v for k, v in needs.__dict__.items() if v is not None},
            "layouts": recommend_layouts((OnSale(**dict(r)) for r in rows), needs),
        }

    @api.get(
        "/projects/{project_id}/deposits-due",
        summary="Partial deposits to be completed within 24 hours",
        response_model=None,
        responses=answers(DepositsDue),
    )
    async def deposits_due(project_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with reading(runtime.pool, "sales_control") as conn:
            await _office(conn, project_id, actor)
            rows = await conn.fetch(
                "SELECT unit_id, building, unit_no, lead_id, credited_rep_id, deposit_agreed_fen, deposit_total_fen,"
                " deposit_agreed_fen - deposit_total_fen AS missing_fen, deposit_due_by, deposit_overdue"
                " FROM units WHERE project_id = $1 AND status = 'reserved' AND deposit_due_by IS NOT NULL"
                " ORDER BY deposit_due_by, unit_id",
                project_id,
            )
        return {"project_id": project_id, "items": [dict(r) for r in rows]}

    return api
