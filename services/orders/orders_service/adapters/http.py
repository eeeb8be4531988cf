"""Queries (GET) and the history upload. Reads follow the territory line: a list is the caller's
territory by definition; asking for someone outside it (a customer, a rep, a role's queue) is
refused with 403, never answered with an empty list."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import asyncpg
import orjson
from fastapi import APIRouter, Depends, Query, Request

from orders_service.adapters.answers import (
    ApprovalQueue,
    CatalogueSkus,
    CustomerReceivables,
    OrderDetail,
    OrderList,
    OverdueDeliveries,
    Promotions,
    Receivables,
    RequiredSkus,
    ReturnApprovalQueue,
    ReturnDetail,
    ReturnList,
    VisitOrderProblems,
)
from orders_service.adapters.rules import order_policy
from orders_service.application.history import import_lines
from orders_service.domain.customers import ORDER_READERS, may_read, place_of
from orders_service.domain.policy import OrderPolicy
from orders_service.domain.receivables import OpenInvoice, ageing
from orders_service.queries import catalogue, customers, orders, returns
from orders_service.queries import receivables as ledger
from salesplatform.clock import business_date
from salesplatform.errors import NotFound, PermissionDenied
from salesplatform.events import Actor, Role, rank
from salesplatform.inputs import Day, Offset
from salesplatform.openapi import answers
from salesplatform.projections import reading
from salesplatform.service import Runtime, http_actor, http_runtime
from salesplatform.store import load_stream
from salesplatform.territory import OUTSIDE_LINE, Place, reach_of, require_filter_in_line, require_in_line

STATUSES = ("pending_approval", "confirmed", "dispatched", "delivered", "rejected", "cancelled")
RETURN_STATUSES = ("requested", "inspected", "approved", "rejected", "resolved", "closed")
RETURN_REASONS = ("quality_defect", "wrong_shipment", "selection_error", "transit_damage")


router = APIRouter(tags=["queries"])


class _Directory:
    """Where reps lie, from the service's copy of the staff directory."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def place_of_rep(self, rep_id: str) -> Place | None:
        staff = await customers.place_of_rep(self.conn, rep_id)
        return None if staff is None else Place(rep_id, staff["district_id"], staff["area_id"])

    async def area_of_district(self, district_id: str) -> str | None:
        return await customers.area_of_district(self.conn, district_id)


def _record(row: asyncpg.Record) -> dict[str, Any]:
    return dict(row)


def _history(events: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "event_type": e.envelope.event_type,
            "stream_version": e.envelope.stream_version,
            "occurred_at": e.envelope.occurred_at,
            "actor": e.envelope.actor.model_dump(),
            "data": e.envelope.data,
        }
        for e in events
    ]


def _queue_role(actor: Actor, role: Role | None) -> Role:
    """The role whose approval queue is asked for (default the caller's): one's own, or one
    below in the line of command; clerks see every queue."""
    queue_role = role or actor.role
    if (
        actor.role != Role.clerk
        and queue_role != actor.role
        and not (rank(actor.role) > 0 and rank(actor.role) >= rank(queue_role))
    ):
        raise PermissionDenied(f"the {queue_role} queue is not yours to see", code="outside_role_line")
    return queue_role


def _territory(actor: Actor) -> list[tuple[str, Any]]:
    """The caller's own territory (reads), as (column, value) conditions: the line of
    command; clerks and inspectors read all."""
    return reach_of(actor, readers=ORDER_READERS).conditions()


async def _require_customer(conn: asyncpg.Connection, actor: Actor, customer_id: str) -> None:
    card = await customers.customer_card(conn, customer_id)
    if card is None:
        raise NotFound(f"customer {customer_id} is not known here", code="unknown_customer")
    require_in_line(actor, place_of(card), f"customer {customer_id}", readers=ORDER_READERS)


async def _require_rep(conn: asyncpg.Connection, actor: Actor, rep_id: str) -> None:
    reach = reach_of(actor, readers=ORDER_READERS)
    await require_filter_in_line(reach, Place(rep_id=rep_id), _Directory(conn))


def _today(runtime: Runtime) -> date:
    return business_date(runtime.clock.now(), runtime.settings.timezone)


# -- orders ---------------------------------------------------------------------------------------


@router.get(
    "/orders/{order_id}",
    summary="One order with its lines, invoice, returns and full history",
    response_model=None,
    responses=answers(OrderDetail),
)
async def get_order(
    order_id: str, runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)
) -> dict[str, Any]:
    async with reading(runtime.pool, "order_board") as conn:
        row = await orders.order(conn, order_id)
        if row is None:
            raise NotFound(f"order {order_id} does not exist", code="order_not_found")
        card = await customers.customer_card(conn, row["customer_id"])
        then = may_read(actor, rep_id=row["rep_id"], district_id=row["district_id"], area_id=row["area_id"])
        now = card is not None and may_read(
            actor, rep_id=card.rep_id, district_id=card.district_id, area_id=card.area_id
        )
        if not (then or now):
            raise PermissionDenied(f"order {order_id} is outside your territory", code=OUTSIDE_LINE)
        lines = await orders.order_lines(conn, order_id)
        invoice = await ledger.invoice_of_order(conn, order_id)
        order_returns = await returns.returns_of_order(conn, order_id)
        history = await load_stream(conn, f"order-{order_id}")
    return {
        "order": _record(row),
        "lines": [_record(x) for x in lines],
        "invoice": _record(invoice) if invoice else None,
        "returns": [_record(x) for x in order_returns],
        "history": _history(history),
    }


@router.get(
    "/orders",
    summary="Orders by customer, rep, status and business date (your territory)",
    response_model=None,
    responses=answers(OrderList),
)
async def list_orders(
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    customer_id: str | None = None,
    rep_id: str | None = None,
    status: str | None = Query(None, pattern="^(" + "|".join(STATUSES) + ")$"),
    date_from: Day | None = None,
    date_to: Day | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: Offset = 0,
) -> dict[str, Any]:
    async with reading(runtime.pool, "order_board") as conn:
        if customer_id:
            await _require_customer(conn, actor, customer_id)
        scope = [] if customer_id else _territory(actor)
        if rep_id:
            await _require_rep(conn, actor, rep_id)
        total, rows = await orders.orders(
            conn,
            scope,
            customer_id=customer_id,
            rep_id=rep_id,
            status=status,
            date_from=date_from,
            date_to=date_to,
            limit=limit,
            offset=offset,
        )
    return {"total": total, "limit": limit, "offset": offset, "orders": [_record(r) for r in rows]}


@router.get(
    "/approvals",
    summary="The approval queue of a role (default: yours), in your territory",
    response_model=None,
    responses=answers(ApprovalQueue),
)
async def approval_queue(
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    role: Role | None = None,
    limit: int = Query(100, ge=1, le=500),
    offset: Offset = 0,
) -> dict[str, Any]:
    queue_role = _queue_role(actor, role)
    scope = _territory(actor)
    async with reading(runtime.pool, "order_board") as conn:
        rows = await orders.awaiting_approval(conn, queue_role.value, scope, limit=limit, offset=offset)
    return {"role": queue_role.value, "orders": [_record(r) for r in rows]}


@router.get(
    "/approvals/returns",
    summary="Returns waiting for a role's decision (default: yours), in your territory",
    response_model=None,
    responses=answers(ReturnApprovalQueue),
)
async def return_approval_queue(
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    role: Role | None = None,
    limit: int = Query(100, ge=1, le=500),
    offset: Offset = 0,
) -> dict[str, Any]:
    """Returns the role approves by their reason and scope that wait for a decision: those
    needing no re-inspection once requested, the others once inspected (one the inspection
    did not confirm can only be rejected). Oldest request first, with their lines."""
    queue_role = _queue_role(actor, role)
    async with reading(runtime.pool, "returns") as conn:
        scope = _territory(actor)
        rows = await returns.awaiting_decision(conn, queue_role.value, scope, limit=limit, offset=offset)
        lines = await returns.lines_of(conn, [r["return_id"] for r in rows])
    by_return: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        by_return[line["return_id"]].append({k: line[k] for k in ("sku", "quantity", "amount_fen")})
    return {
        "role": queue_role.value,
        "returns": [{**_record(r), "lines": by_return[r["return_id"]]} for r in rows],
    }


@router.get(
    "/deliveries/overdue",
    summary="Confirmed orders not delivered within their 24 hours",
    response_model=None,
    responses=answers(OverdueDeliveries),
)
async def overdue_deliveries(
    runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)
) -> dict[str, Any]:
    scope = _territory(actor)
    async with reading(runtime.pool, "order_board") as conn:
        rows = await orders.overdue_deliveries(conn, runtime.clock.now(), scope)
    return {"as_of": runtime.clock.now(), "orders": [_record(r) for r in rows]}


# -- receivables ----------------------------------------------------------------------------------


@router.get(
    "/receivables",
    summary="Open receivables and ageing (0–30, 31–60, 61–90, >90 days) per customer",
    response_model=None,
    responses=answers(Receivables),
)
async def receivables(
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    as_of: Day | None = None,
    customer_id: str | None = None,
) -> dict[str, Any]:
    day = as_of or _today(runtime)
    async with reading(runtime.pool, "receivables") as conn:
        if customer_id:
            await _require_customer(conn, actor, customer_id)
        scope = [] if customer_id else _territory(actor)
        rows = await ledger.open_invoices_with_customers(conn, customer_id=customer_id, scope=scope)
    by_customer: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        by_customer[r["customer_id"]].append(r)
    per_customer = []
    for cid, invoices in by_customer.items():
        a = ageing([_open(r) for r in invoices], day)
        per_customer.append(
            {
                "customer_id": cid,
                "name": invoices[0]["name"],
                "rep_id": invoices[0]["rep_id"],
                "open_invoices": len(invoices),
                **a.__dict__,
            }
        )
    totals = ageing([_open(r) for r in rows], day)
    return {"as_of": day, "customers": per_customer, "totals": totals.__dict__}


@router.get(
    "/receivables/{customer_id}",
    summary="A customer's invoices, payments, collection notes and ageing",
    response_model=None,
    responses=answers(CustomerReceivables),
)
async def customer_receivables(
    customer_id: str,
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    as_of: Day | None = None,
) -> dict[str, Any]:
    day = as_of or _today(runtime)
    async with reading(runtime.pool, "receivables") as conn:
        await _require_customer(conn, actor, customer_id)
        invoices = await ledger.invoices(conn, customer_id)
        payments = await ledger.payments(conn, customer_id)
        notes = await ledger.collection_notes(conn, customer_id)
    a = ageing([_open(r) for r in invoices], day)
    return {
        "customer_id": customer_id,
        "as_of": day,
        "ageing": a.__dict__,
        "invoices": [_record(r) for r in invoices],
        "payments": [{**_record(r), "allocations": _json(r["allocations"])} for r in payments],
        "collection_notes": [_record(r) for r in notes],
    }


# -- returns --------------------------------------------------------------------------------------


@router.get(
    "/returns",
    summary="Returns by status and reason, with counts (your territory)",
    response_model=None,
    responses=answers(ReturnList),
)
async def list_returns(
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    status: str | None = Query(None, pattern="^(" + "|".join(RETURN_STATUSES) + ")$"),
    reason: str | None = Query(None, pattern="^(" + "|".join(RETURN_REASONS) + ")$"),
    limit: int = Query(100, ge=1, le=500),
    offset: Offset = 0,
) -> dict[str, Any]:
    async with reading(runtime.pool, "returns") as conn:
        counts, rows = await returns.returns(
            conn, _territory(actor), status=status, reason=reason, limit=limit, offset=offset
        )
    return {"counts": [_record(r) for r in counts], "returns": [_record(r) for r in rows]}


@router.get(
    "/returns/{return_id}",
    summary="One return with its lines, corrective actions and history",
    response_model=None,
    responses=answers(ReturnDetail),
)
async def get_return(
    return_id: str, runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)
) -> dict[str, Any]:
    async with reading(runtime.pool, "returns") as conn:
        row = await returns.return_request(conn, return_id)
        if row is None:
            raise NotFound(f"return {return_id} does not exist", code="return_not_found")
        order = await returns.territory_of_order(conn, row["order_id"])
        if order is not None and not may_read(actor, **dict(order)):
            raise PermissionDenied(f"return {return_id} is outside your territory", code=OUTSIDE_LINE)
        lines = await returns.return_lines(conn, return_id)
        actions = await returns.corrective_actions(conn, return_id)
        history = await load_stream(conn, f"return-{return_id}")
    return {
        "return": _record(row),
        "lines": [_record(x) for x in lines],
        "corrective_actions": [_record(x) for x in actions],
        "history": _history(history),
    }


# -- catalogue and promotions ---------------------------------------------------------------------


@router.get(
    "/catalogue/skus",
    summary="The SKUs with their default and area prices",
    response_model=None,
    responses=answers(CatalogueSkus),
)
async def skus(runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)) -> dict[str, Any]:
    async with reading(runtime.pool, "catalogue") as conn:
        rows = await catalogue.skus_with_prices(conn)
    return {"skus": [{**_record(r), "area_prices": _json(r["area_prices"])} for r in rows]}


@router.get(
    "/catalogue/required-skus",
    summary="The required-SKU list (必备SKU) of each channel",
    response_model=None,
    responses=answers(RequiredSkus),
)
async def required_skus(runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)) -> dict[str, Any]:
    async with reading(runtime.pool, "catalogue") as conn:
        rows = await catalogue.required_skus(conn)
    return {"channels": {r["channel"]: list(r["skus"]) for r in rows}}


@router.get(
    "/promotions",
    summary="Promotions with budget spent, orders and gifts issued",
    response_model=None,
    responses=answers(Promotions),
)
async def promotions(runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)) -> dict[str, Any]:
    async with reading(runtime.pool, "promotions") as conn:
        rows = await catalogue.promotions(conn)
    return {"promotions": [_record(r) for r in rows]}


# -- visit orders that waited or were refused -----------------------------------------------------


@router.get(
    "/visit-orders",
    summary="Visit orders parked for an unknown customer, and visit messages refused",
    response_model=None,
    responses=answers(VisitOrderProblems),
)
async def visit_orders(runtime: Runtime = Depends(http_runtime), actor: Actor = Depends(http_actor)) -> dict[str, Any]:
    if not (actor.at_least(Role.supervisor) or actor.role in (Role.clerk, Role.system)):
        raise PermissionDenied("visit order problems are for supervisors and up", code="outside_role_line")
    async with reading(runtime.pool, customers.DIRECTORY) as conn:
        parked = await customers.parked_orders(conn)
        refused = await customers.refused_visit_messages(conn)
    return {"parked": [_record(r) for r in parked], "refused": [_record(r) for r in refused]}


# -- history import -------------------------------------------------------------------------------


@router.post(
    "/imports",
    tags=["history"],
    summary="Import historical orders, deliveries and payments (JSON lines in the request body)",
    description="Send the file as the body (`curl --data-binary @history.jsonl`). Each line is one "
    "record (kind order, delivery or payment); the answer counts what was imported and lists each "
    "rejected record with its line number, field and message. Importing the same file again appends nothing.",
)
async def upload(
    request: Request,
    runtime: Runtime = Depends(http_runtime),
    actor: Actor = Depends(http_actor),
    policy: OrderPolicy = Depends(order_policy),
) -> dict[str, Any]:
    if not (actor.is_manager or actor.role == Role.system):
        raise PermissionDenied("history is imported by sales managers and up, or a system", code="role_not_allowed")
    body = await request.body()
    report = await import_lines(
        runtime.pool,
        body.splitlines(),
        actor=actor,
        clock=runtime.clock,
        policy=policy,
    )
    return report.to_dict()


def _open(row: asyncpg.Record) -> OpenInvoice:
    return OpenInvoice(row["invoice_id"], row["issued_on"], row["due_on"], row["open_fen"])


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value
