"""Queries of sales control (销控) over HTTP: the unit inventory, one unit with its deal and
receipts, the price lists, the daily sales-control check (当日销控核实), recommended layouts
(户型推荐) and the deposits due. Everyone of the office reads the project's units (a rep of the
office's district, its supervisor, the area's manager; managers, the clerk, the inspector and
other systems every project); anyone else is refused (403)."""

from __future__ import annotations

from collections import Counter
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
from orders_service.adapters.rules import order_policy
from orders_service.domain.customers import ORDER_READERS
from orders_service.domain.policy import OrderPolicy
from orders_service.domain.unit_events import Orientation, UnitStatus
from orders_service.domain.units import Needs, OnSale, recommend_layouts
from orders_service.queries import sales_control as inventory
from orders_service.queries.sales_control import Office
from salesplatform.clock import business_date
from salesplatform.errors import NotFound
from salesplatform.events import Actor
from salesplatform.inputs import Day, Offset
from salesplatform.openapi import answers
from salesplatform.projections import reading
from salesplatform.service import Runtime, http_actor, http_runtime
from salesplatform.store import load_stream
from salesplatform.territory import Place, require_in_line

router = APIRouter(tags=["sales control"])


async def _office(conn: asyncpg.Connection, project_id: str, actor: Actor) -> Office:
    office = await inventory.office(conn, project_id)
    if office is None:
        raise NotFound(f"project {project_id} has no sales office here", code="unknown_project")
    # Everyone of the office reads its units: its reps (of its district) and whoever the line of
    # command lets read the district's customers.
    require_in_line(
        actor,
        Place(district_id=office.district_id, area_id=office.area_id),
        f"the project {project_id}",
        readers=ORDER_READERS,
        reps_reach_district=True,
    )
    return office


def _unit(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out["layout"] = f"{row['rooms']}室{row['halls']}厅{row['bathrooms']}卫"
    return out


@router.get(
    "/projects/{project_id}/units",
    summary="The unit inventory (销控表): every unit and its status",
    response_model=None,
    responses=answers(UnitInventory),
)
async def units(
    project_id: str,
    runtime: Runtime = Depends(http_runtime),
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
        counts, total, rows = await inventory.units(
            conn, project_id, status=status, building=building, layout_name=layout_name, limit=limit, offset=offset
        )
    return {
        "project_id": project_id,
        "counts": counts,
        "total": total,
        "limit": limit,
        "offset": offset,
        "items": [_unit(r) for r in rows],
    }


@router.get(
    "/units/{unit_id}",
    summary="A unit: its figures, its deal, receipts and history",
    response_model=None,
    responses=answers(UnitDetail),
)
async def unit(
    unit_id: str, runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)
) -> dict[str, Any]:
    async with reading(runtime.pool, "sales_control") as conn:
        row = await inventory.unit(conn, unit_id)
        if row is None:
            raise NotFound(f"unit {unit_id} does not exist", code="unit_not_found")
        await _office(conn, row["project_id"], actor)
        receipts = await inventory.receipts(conn, unit_id)
        events = await load_stream(conn, f"unit-{unit_id}")
    return {
        **_unit(row),
        "receipts": receipts,
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


@router.get(
    "/projects/{project_id}/price-lists",
    summary="The price lists (价目表) per release",
    response_model=None,
    responses=answers(PriceLists),
)
async def price_lists(
    project_id: str, runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)
) -> dict[str, Any]:
    async with reading(runtime.pool, "sales_control") as conn:
        await _office(conn, project_id, actor)
        rows = await inventory.price_lists(conn, project_id)
    releases: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        price = dict(r)
        releases.setdefault(price.pop("release"), []).append(price)
    return {"project_id": project_id, "releases": [{"release": k, "prices": v} for k, v in releases.items()]}


@router.get(
    "/projects/{project_id}/sales-control",
    summary="The daily sales-control check (当日销控核实): every unit's status and what changed that day",
    response_model=None,
    responses=answers(SalesControl),
)
async def sales_control(
    project_id: str,
    runtime: Runtime = Depends(http_runtime),
    policy: OrderPolicy = Depends(order_policy),
    actor: Actor = Depends(http_actor),
    day: Day | None = Query(None, alias="date"),
) -> dict[str, Any]:
    """For the rep and the manager to reconcile: `units` (status now, by building and number),
    `changes` (every change of the day in order: reservation, deposit, subscription filled
    or signed, contract, mortgage, handover, release, price), `counts` by status and the
    checks recorded that day (`check_sales_control`)."""
    on = day or business_date(runtime.clock.now(), policy.timezone)
    async with reading(runtime.pool, "sales_control") as conn:
        office = await _office(conn, project_id, actor)
        rows = await inventory.unit_statuses(conn, project_id)
        changes = await inventory.changes_on(conn, project_id, on)
        checks = await inventory.checks_on(conn, project_id, on)
    return {
        "project_id": project_id,
        "name": office.name,
        "business_date": on.isoformat(),
        "counts": dict(Counter(r["status"] for r in rows)),
        "units": [dict(r) for r in rows],
        "changes": [dict(c) for c in changes],
        "checks": [dict(c) for c in checks],
    }


@router.get(
    "/projects/{project_id}/recommendations",
    summary="Up to three layouts for a customer's needs (户型推荐)",
    response_model=None,
    responses=answers(Recommendations),
)
async def recommendations(
    project_id: str,
    runtime: Runtime = Depends(http_runtime),
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
        rows = await inventory.available_units(conn, project_id)
    return {
        "project_id": project_id,
        "needs": {k: v for k, v in needs.__dict__.items() if v is not None},
        "layouts": recommend_layouts((OnSale(**dict(r)) for r in rows), needs),
    }


@router.get(
    "/projects/{project_id}/deposits-due",
    summary="Partial deposits to be completed within 24 hours",
    response_model=None,
    responses=answers(DepositsDue),
)
async def deposits_due(
    project_id: str, runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)
) -> dict[str, Any]:
    async with reading(runtime.pool, "sales_control") as conn:
        await _office(conn, project_id, actor)
        rows = await inventory.deposits_due(conn, project_id)
    return {"project_id": project_id, "items": [dict(r) for r in rows]}
