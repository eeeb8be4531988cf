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

from orders_service.adapters import lookups
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
from orders_service.application.history import import_lines
from orders_service.domain.customers import ORDER_READERS, may_read, place_of
from orders_service.domain.policy import OrderPolicy
from orders_service.domain.receivables import OpenInvoice, ageing
from salesplatform.clock import business_date
from salesplatform.errors import NotFound, PermissionDenied
from salesplatform.events import Actor, Role, rank
from salesplatform.inputs import Day, Offset
from salesplatform.openapi import answers
from salesplatform.projections import active_schema, reading
from salesplatform.service import Runtime, http_actor
from salesplatform.store import load_stream
from salesplatform.territory import OUTSIDE_LINE, Place, reach_of, require_filter_in_line, require_in_line

STATUSES = ("pending_approval", "confirmed", "dispatched", "delivered", "rejected", "cancelled")
RETURN_STATUSES = ("requested", "inspected", "approved", "rejected", "resolved", "closed")
RETURN_REASONS = ("quality_defect", "wrong_shipment", "selection_error", "transit_damage")


class Where:
    """WHERE clauses with numbered parameters."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def add(self, clause: str, *values: Any) -> Where:
        for value in values:
            self.args.append(value)
            clause = clause.replace("{}", f"${len(self.args)}", 1)
        self.clauses.append(clause)
        return self

    def territory(self, actor: Actor, alias: str) -> Where:
        """The caller's own territory (reads): the line of command; clerks and inspectors read all."""
        for column, value in reach_of(actor, readers=ORDER_READERS).conditions():
            self.add(f"{alias}.{column} = {{}}", value)
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "true"

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


class _Directory:
    """Where reps lie, from the service's copy of the staff directory."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def place_of_rep(self, rep_id: str) -> Place | None:
        schema = await active_schema(self.conn, lookups.DIRECTORY)
        staff = await self.conn.fetchrow(f"SELECT district_id, area_id FROM {schema}.staff WHERE staff_id = $1", rep_id)
        return None if staff is None else Place(rep_id, staff["district_id"], staff["area_id"])

    async def area_of_district(self, district_id: str) -> str | None:
        schema = await active_schema(self.conn, lookups.DIRECTORY)
        area: str | None = await self.conn.fetchval(
            f"SELECT area_id FROM {schema}.staff WHERE district_id = $1 AND area_id IS NOT NULL LIMIT 1", district_id
        )
        return area


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


def router(runtime: Runtime, policy: OrderPolicy) -> APIRouter:
    api = APIRouter(tags=["queries"])

    async def require_customer(conn: asyncpg.Connection, actor: Actor, customer_id: str) -> None:
        card = await lookups.customer_card(conn, customer_id)
        if card is None:
            raise NotFound(f"customer {customer_id} is not known here", code="unknown_customer")
        require_in_line(actor, place_of(card), f"customer {customer_id}", readers=ORDER_READERS)

    async def require_rep(conn: asyncpg.Connection, actor: Actor, rep_id: str) -> None:
        reach = reach_of(actor, readers=ORDER_READERS)
        await require_filter_in_line(reach, Place(rep_id=rep_id), _Directory(conn))

    # -- orders ---------------------------------------------------------------------------

    @api.get(
        "/orders/{order_id}",
        summary="One order with its lines, invoice, returns and full history",
        response_model=None,
        responses=answers(OrderDetail),
    )
    async def get_order(order_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with reading(runtime.pool, "order_board") as conn:
            row = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1", order_id)
            if row is None:
                raise NotFound(f"order {order_id} does not exist", code="order_not_found")
            card = await lookups.customer_card(conn, row["customer_id"])
            then = may_read(actor, rep_id=row["rep_id"], district_id=row["district_id"], area_id=row["area_id"])
            now = card is not None and may_read(
                actor, rep_id=card.rep_id, district_id=card.district_id, area_id=card.area_id
            )
            if not (then or now):
                raise PermissionDenied(f"order {order_id} is outside your territory", code=OUTSIDE_LINE)
            lines = await conn.fetch("SELECT * FROM order_lines WHERE order_id = $1 ORDER BY line_no", order_id)
            receivables = await active_schema(conn, "receivables")
            invoice = await conn.fetchrow(f"SELECT * FROM {receivables}.invoices WHERE order_id = $1", order_id)
            returns = await active_schema(conn, "returns")
            order_returns = await conn.fetch(
                f"SELECT return_id, status, reason, scope, amount_fen FROM {returns}.returns WHERE order_id = $1"
                " ORDER BY requested_at",
                order_id,
            )
            history = await load_stream(conn, f"order-{order_id}")
        return {
            "order": _record(row),
            "lines": [_record(x) for x in lines],
            "invoice": _record(invoice) if invoice else None,
            "returns": [_record(x) for x in order_returns],
            "history": _history(history),
        }

    @api.get(
        "/orders",
        summary="Orders by customer, rep, status and business date (your territory)",
        response_model=None,
        responses=answers(OrderList),
    )
    async def list_orders(
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
            where = Where()
            if customer_id:
                await require_customer(conn, actor, customer_id)
                where.add("o.customer_id = {}", customer_id)
            else:
                where.territory(actor, "o")
            if rep_id:
                await require_rep(conn, actor, rep_id)
                where.add("o.rep_id = {}", rep_id)
            if status:
                where.add("o.status = {}", status)
            if date_from:
                where.add("o.business_date >= {}", date_from)
            if date_to:
                where.add("o.business_date <= {}", date_to)
            total = await conn.fetchval(f"SELECT count(*) FROM orders o WHERE {where.sql}", *where.args)
            rows = await conn.fetch(
                f"SELECT o.* FROM orders o WHERE {where.sql} ORDER BY o.placed_at DESC, o.order_id"
                f" LIMIT {where.param(limit)} OFFSET {where.param(offset)}",
                *where.args,
            )
        return {"total": total, "limit": limit, "offset": offset, "orders": [_record(r) for r in rows]}

    @api.get(
        "/approvals",
        summary="The approval queue of a role (default: yours), in your territory",
        response_model=None,
        responses=answers(ApprovalQueue),
    )
    async def approval_queue(
        actor: Actor = Depends(http_actor),
        role: Role | None = None,
        limit: int = Query(100, ge=1, le=500),
        offset: Offset = 0,
    ) -> dict[str, Any]:
        queue_role = _queue_role(actor, role)
        where = Where().add("o.status = 'pending_approval' AND o.required_role = {}", queue_role.value)
        where.territory(actor, "o")
        async with reading(runtime.pool, "order_board") as conn:
            rows = await conn.fetch(
                f"SELECT o.* FROM orders o WHERE {where.sql} ORDER BY o.placed_at, o.order_id"
                f" LIMIT {where.param(limit)} OFFSET {where.param(offset)}",
                *where.args,
            )
        return {"role": queue_role.value, "orders": [_record(r) for r in rows]}

    @api.get(
        "/approvals/returns",
        summary="Returns waiting for a role's decision (default: yours), in your territory",
        response_model=None,
        responses=answers(ReturnApprovalQueue),
    )
    async def return_approval_queue(
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
            board = await active_schema(conn, "order_board")
            where = Where().add(
                "r.approver_role = {} AND (r.status = 'inspected'"
                " OR (r.status = 'requested' AND NOT r.inspection_required))",
                queue_role.value,
            )
            where.territory(actor, "o")
            rows = await conn.fetch(
                f"SELECT r.*, o.rep_id, o.district_id, o.area_id FROM returns r"
                f" JOIN {board}.orders o USING (order_id) WHERE {where.sql}"
                f" ORDER BY r.requested_at, r.return_id LIMIT {where.param(limit)} OFFSET {where.param(offset)}",
                *where.args,
            )
            lines = await conn.fetch(
                "SELECT return_id, sku, quantity, amount_fen FROM return_lines"
                " WHERE return_id = ANY($1::text[]) ORDER BY return_id, sku",
                [r["return_id"] for r in rows],
            )
        by_return: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in lines:
            by_return[line["return_id"]].append({k: line[k] for k in ("sku", "quantity", "amount_fen")})
        return {
            "role": queue_role.value,
            "returns": [{**_record(r), "lines": by_return[r["return_id"]]} for r in rows],
        }

    @api.get(
        "/deliveries/overdue",
        summary="Confirmed orders not delivered within their 24 hours",
        response_model=None,
        responses=answers(OverdueDeliveries),
    )
    async def overdue_deliveries(actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        where = Where().add("o.status IN ('confirmed', 'dispatched') AND o.deliver_by < {}", runtime.clock.now())
        where.territory(actor, "o")
        async with reading(runtime.pool, "order_board") as conn:
            rows = await conn.fetch(f"SELECT o.* FROM orders o WHERE {where.sql} ORDER BY o.deliver_by", *where.args)
        return {"as_of": runtime.clock.now(), "orders": [_record(r) for r in rows]}

    # -- receivables ----------------------------------------------------------------------

    def _today() -> date:
        return business_date(runtime.clock.now(), runtime.settings.timezone)

    @api.get(
        "/receivables",
        summary="Open receivables and ageing (0–30, 31–60, 61–90, >90 days) per customer",
        response_model=None,
        responses=answers(Receivables),
    )
    async def receivables(
        actor: Actor = Depends(http_actor),
        as_of: Day | None = None,
        customer_id: str | None = None,
    ) -> dict[str, Any]:
        day = as_of or _today()
        async with reading(runtime.pool, "receivables") as conn:
            directory = await active_schema(conn, lookups.DIRECTORY)
            where = Where().add("i.open_fen > 0")
            if customer_id:
                await require_customer(conn, actor, customer_id)
                where.add("i.customer_id = {}", customer_id)
            else:
                where.territory(actor, "c")
            rows = await conn.fetch(
                f"SELECT i.customer_id, c.name, c.rep_id, i.invoice_id, i.issued_on, i.due_on, i.open_fen"
                f" FROM invoices i LEFT JOIN {directory}.customers c USING (customer_id)"
                f" WHERE {where.sql} ORDER BY i.customer_id, i.issued_on",
                *where.args,
            )
        by_customer: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for r in rows:
            by_customer[r["customer_id"]].append(r)
        customers = []
        for cid, invoices in by_customer.items():
            a = ageing([_open(r) for r in invoices], day)
            customers.append(
                {
                    "customer_id": cid,
                    "name": invoices[0]["name"],
                    "rep_id": invoices[0]["rep_id"],
                    "open_invoices": len(invoices),
                    **a.__dict__,
                }
            )
        totals = ageing([_open(r) for r in rows], day)
        return {"as_of": day, "customers": customers, "totals": totals.__dict__}

    @api.get(
        "/receivables/{customer_id}",
        summary="A customer's invoices, payments, collection notes and ageing",
        response_model=None,
        responses=answers(CustomerReceivables),
    )
    async def customer_receivables(
        customer_id: str,
        actor: Actor = Depends(http_actor),
        as_of: Day | None = None,
    ) -> dict[str, Any]:
        day = as_of or _today()
        async with reading(runtime.pool, "receivables") as conn:
            await require_customer(conn, actor, customer_id)
            invoices = await conn.fetch(
                "SELECT * FROM invoices WHERE customer_id = $1 ORDER BY issued_on, invoice_id",
                customer_id,
            )
            payments = await conn.fetch(
                "SELECT p.*, coalesce(json_agg(json_build_object('invoice_id', a.invoice_id, 'amount_fen',"
                " a.amount_fen)) FILTER (WHERE a.invoice_id IS NOT NULL), '[]') AS allocations"
                " FROM payments p LEFT JOIN allocations a USING (payment_id) WHERE p.customer_id = $1"
                " GROUP BY p.payment_id ORDER BY p.received_on, p.payment_id",
                customer_id,
            )
            notes = await conn.fetch(
                "SELECT * FROM collection_notes WHERE customer_id = $1 ORDER BY noted_at",
                customer_id,
            )
        a = ageing([_open(r) for r in invoices], day)
        return {
            "customer_id": customer_id,
            "as_of": day,
            "ageing": a.__dict__,
            "invoices": [_record(r) for r in invoices],
            "payments": [{**_record(r), "allocations": _json(r["allocations"])} for r in payments],
            "collection_notes": [_record(r) for r in notes],
        }

    # -- returns --------------------------------------------------------------------------

    @api.get(
        "/returns",
        summary="Returns by status and reason, with counts (your territory)",
        response_model=None,
        responses=answers(ReturnList),
    )
    async def list_returns(
        actor: Actor = Depends(http_actor),
        status: str | None = Query(None, pattern="^(" + "|".join(RETURN_STATUSES) + ")$"),
        reason: str | None = Query(None, pattern="^(" + "|".join(RETURN_REASONS) + ")$"),
        limit: int = Query(100, ge=1, le=500),
        offset: Offset = 0,
    ) -> dict[str, Any]:
        async with reading(runtime.pool, "returns") as conn:
            board = await active_schema(conn, "order_board")
            scope = Where().territory(actor, "o")
            base = f"FROM returns r JOIN {board}.orders o USING (order_id) WHERE {scope.sql}"
            counts = await conn.fetch(
                f"SELECT r.status, r.reason, count(*) AS n, sum(r.amount_fen)::bigint AS amount_fen {base}"
                " GROUP BY r.status, r.reason ORDER BY r.status, r.reason",
                *scope.args,
            )
            where = scope
            if status:
                where.add("r.status = {}", status)
            if reason:
                where.add("r.reason = {}", reason)
            rows = await conn.fetch(
                f"SELECT r.* FROM returns r JOIN {board}.orders o USING (order_id) WHERE {where.sql}"
                f" ORDER BY r.requested_at DESC, r.return_id LIMIT {where.param(limit)} OFFSET {where.param(offset)}",
                *where.args,
            )
        return {"counts": [_record(r) for r in counts], "returns": [_record(r) for r in rows]}

    @api.get(
        "/returns/{return_id}",
        summary="One return with its lines, corrective actions and history",
        response_model=None,
        responses=answers(ReturnDetail),
    )
    async def get_return(return_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with reading(runtime.pool, "returns") as conn:
            row = await conn.fetchrow("SELECT * FROM returns WHERE return_id = $1", return_id)
            if row is None:
                raise NotFound(f"return {return_id} does not exist", code="return_not_found")
            board = await active_schema(conn, "order_board")
            order = await conn.fetchrow(
                f"SELECT rep_id, district_id, area_id FROM {board}.orders WHERE order_id = $1",
                row["order_id"],
            )
            if order is not None and not may_read(actor, **dict(order)):
                raise PermissionDenied(f"return {return_id} is outside your territory", code=OUTSIDE_LINE)
            lines = await conn.fetch(
                "SELECT sku, quantity, amount_fen FROM return_lines WHERE return_id = $1",
                return_id,
            )
            actions = await conn.fetch(
                "SELECT department, action, assigned_at FROM corrective_actions WHERE return_id = $1",
                return_id,
            )
            history = await load_stream(conn, f"return-{return_id}")
        return {
            "return": _record(row),
            "lines": [_record(x) for x in lines],
            "corrective_actions": [_record(x) for x in actions],
            "history": _history(history),
        }

    # -- catalogue and promotions ---------------------------------------------------------

    @api.get(
        "/catalogue/skus",
        summary="The SKUs with their default and area prices",
        response_model=None,
        responses=answers(CatalogueSkus),
    )
    async def skus(actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with reading(runtime.pool, "catalogue") as conn:
            rows = await conn.fetch(
                "SELECT s.*, coalesce(json_agg(json_build_object('area_id', a.area_id, 'list_price_fen',"
                " a.list_price_fen, 'floor_price_fen', a.floor_price_fen)) FILTER (WHERE a.area_id IS NOT NULL),"
                " '[]') AS area_prices FROM skus s LEFT JOIN area_prices a USING (sku) GROUP BY s.sku ORDER BY s.sku"
            )
        return {"skus": [{**_record(r), "area_prices": _json(r["area_prices"])} for r in rows]}

    @api.get(
        "/catalogue/required-skus",
        summary="The required-SKU list (必备SKU) of each channel",
        response_model=None,
        responses=answers(RequiredSkus),
    )
    async def required_skus(actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with reading(runtime.pool, "catalogue") as conn:
            rows = await conn.fetch("SELECT channel, skus FROM required_skus ORDER BY channel")
        return {"channels": {r["channel"]: list(r["skus"]) for r in rows}}

    @api.get(
        "/promotions",
        summary="Promotions with budget spent, orders and gifts issued",
        response_model=None,
        responses=answers(Promotions),
    )
    async def promotions(actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with reading(runtime.pool, "promotions") as conn:
            rows = await conn.fetch(
                "SELECT p.*, count(po.order_id) FILTER (WHERE NOT po.released AND po.cost_fen > 0) AS orders,"
                " coalesce(sum(po.gift_quantity) FILTER (WHERE NOT po.released), 0)::bigint AS gifts_issued"
                " FROM promotions p LEFT JOIN promotion_orders po USING (promotion_id)"
                " GROUP BY p.promotion_id ORDER BY p.starts_on, p.promotion_id"
            )
        return {"promotions": [_record(r) for r in rows]}

    # -- visit orders that waited or were refused -----------------------------------------

    @api.get(
        "/visit-orders",
        summary="Visit orders parked for an unknown customer, and visit messages refused",
        response_model=None,
        responses=answers(VisitOrderProblems),
    )
    async def visit_orders(actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        if not (actor.at_least(Role.supervisor) or actor.role in (Role.clerk, Role.system)):
            raise PermissionDenied("visit order problems are for supervisors and up", code="outside_role_line")
        async with reading(runtime.pool, lookups.DIRECTORY) as conn:
            parked = await conn.fetch(
                "SELECT order_id, customer_id, parked_at, reason, outcome, settled_at FROM parked_orders"
                " ORDER BY parked_at"
            )
            refused = await conn.fetch("SELECT * FROM visit_messages_refused ORDER BY at")
        return {"parked": [_record(r) for r in parked], "refused": [_record(r) for r in refused]}

    # -- history import -------------------------------------------------------------------

    @api.post(
        "/imports",
        tags=["history"],
        summary="Import historical orders, deliveries and payments (JSON lines in the request body)",
        description="Send the file as the body (`curl --data-binary @history.jsonl`). Each line is one "
        "record (kind order, delivery or payment); the answer counts what was imported and lists each "
        "rejected record with its line number, field and message. Importing the same file again appends nothing.",
    )
    async def upload(request: Request, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
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

    return api


def _open(row: asyncpg.Record) -> OpenInvoice:
    return OpenInvoice(row["invoice_id"], row["issued_on"], row["due_on"], row["open_fen"])


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value
