"""Importing the history of an older system: orders, deliveries and payments.

Each record is validated against the catalogue, the customer directory and what was imported or
stored before it; an accepted record becomes events with ids derived from the record id
(uuid5), so a rerun appends nothing twice. A rejected record is listed with its line, field and
message and changes nothing. Record formats (one JSON object per line):

    {"kind": "order", "record_id": "H-1", "customer_id": "…", "placed_at": "2025-03-01T09:30:00+08:00",
     "lines": [{"sku": "COLA-330", "quantity": 24, "unit_price_fen": 250}], "rep_id": "r1"}
    {"kind": "delivery", "record_id": "D-1", "order_record_id": "H-1", "delivered_at": "…"}
    {"kind": "payment", "record_id": "P-1", "customer_id": "…", "amount_fen": 6000,
     "received_on": "2025-03-20", "allocations": [{"order_record_id": "H-1", "amount_fen": 6000}]}

An imported order is confirmed as placed (history needs no approval); a delivery issues the
invoice like a live one; a payment without allocations pays the oldest open invoices first.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from orders_service.adapters import lookups
from orders_service.adapters.history_store import HistoryEvent, append_history
from orders_service.domain.customers import CustomerCard
from orders_service.domain.policy import OrderPolicy
from orders_service.domain.receivables import OpenInvoice, allocate, due_date, invoice_id_for
from salesplatform.clock import Clock, business_date
from salesplatform.errors import DomainError
from salesplatform.events import Actor
from salesplatform.ids import uuid5
from salesplatform.projections import Projection

IMPORT_NAMESPACE = uuid.UUID("9c3d2a4e-6f1b-4e8a-b7c5-3a2f1e0d9c87")

RecordId = Annotated[str, Field(min_length=1, max_length=100)]
Id = Annotated[str, Field(min_length=1, max_length=64)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class HistoryLine(_Record):
    sku: Id
    quantity: int = Field(gt=0, le=1_000_000)
    unit_price_fen: int = Field(ge=0, le=10**11)


class OrderRecord(_Record):
    kind: Literal["order"]
    record_id: RecordId
    customer_id: Id
    placed_at: AwareDatetime
    lines: list[HistoryLine] = Field(min_length=1, max_length=500)
    rep_id: Id | None = None


class DeliveryRecord(_Record):
    kind: Literal["delivery"]
    record_id: RecordId
    order_record_id: RecordId
    delivered_at: AwareDatetime
    payment_terms_days: int | None = Field(None, ge=0, le=3650)  # default: the customer's terms


class HistoryAllocation(_Record):
    order_record_id: RecordId
    amount_fen: int = Field(gt=0)


class PaymentRecord(_Record):
    kind: Literal["payment"]
    record_id: RecordId
    customer_id: Id
    amount_fen: int = Field(gt=0, le=10**13)
    received_on: date
    allocations: list[HistoryAllocation] | None = Field(None, min_length=1, max_length=500)


AnyRecord = OrderRecord | DeliveryRecord | PaymentRecord
_records: TypeAdapter[AnyRecord] = TypeAdapter(Annotated[AnyRecord, Field(discriminator="kind")])


def record_event_id(kind: str, record_id: str, event_type: str) -> uuid.UUID:
    return uuid5(IMPORT_NAMESPACE, f"{kind}:{record_id}:{event_type}")


def order_id_for_record(record_id: str) -> str:
    return str(uuid5(IMPORT_NAMESPACE, f"order:{record_id}"))


def payment_id_for_record(record_id: str) -> str:
    return str(uuid5(IMPORT_NAMESPACE, f"payment:{record_id}"))


def ids_of_record(rec: AnyRecord) -> tuple[str, str]:
    """What a record becomes, by the id the system knows it by: ("orders", order_id),
    ("invoices", the delivered order's invoice_id) or ("payments", payment_id)."""
    match rec:
        case OrderRecord():
            return "orders", order_id_for_record(rec.record_id)
        case DeliveryRecord():
            return "invoices", invoice_id_for(order_id_for_record(rec.order_record_id))
        case PaymentRecord():
            return "payments", payment_id_for_record(rec.record_id)


_PRIMARY = {"order": "order.placed", "delivery": "order.delivered", "payment": "payment.received"}


@dataclass(frozen=True)
class Rejection:
    line: int
    record_id: str | None
    field: str | None
    message: str


@dataclass
class ImportReport:
    records: int = 0
    accepted: int = 0
    already_imported: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    events_appended: int = 0
    orders: int = 0
    deliveries: int = 0
    payments: int = 0
    order_amount_fen: int = 0
    payment_amount_fen: int = 0
    seconds: float = 0.0
    # record_id → the id it was imported as, per kind: for the records accepted now or before.
    ids: dict[str, dict[str, str]] = field(default_factory=lambda: {"orders": {}, "invoices": {}, "payments": {}})
    # Of `seconds`: appending to the log (COPY), and updating the inline read models.
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "accepted": self.accepted,
            "already_imported": self.already_imported,
            "rejected_count": len(self.rejected),
            "rejected": [r.__dict__ for r in self.rejected],
            "events_appended": self.events_appended,
            "orders": self.orders,
            "deliveries": self.deliveries,
            "payments": self.payments,
            "order_amount_fen": self.order_amount_fen,
            "payment_amount_fen": self.payment_amount_fen,
            "ids": self.ids,
            "seconds": round(self.seconds, 3),
            "append_seconds": round(self.timings.get("append", 0.0), 3),
            "read_model_seconds": round(self.timings.get("read_models", 0.0), 3),
        }


@dataclass(slots=True)
class _Order:
    order_id: str
    customer_id: str
    amount_fen: int
    status: str
    confirmed_at: datetime
    deliver_by: datetime
    version: int


@dataclass(slots=True)
class _Invoice:
    invoice_id: str
    order_id: str
    customer_id: str
    issued_on: date
    due_on: date
    open_fen: int


def _record_id(raw: Any) -> str | None:
    """The record id of a record that failed validation, if it has a readable one."""
    try:
        value = orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except orjson.JSONDecodeError:
        return None
    rid = value.get("record_id") if isinstance(value, dict) else None
    return rid if isinstance(rid, str) else None


class _Rejected(Exception):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class HistoryImport:
    """One import run: keeps what it has accepted so later records can refer to earlier ones."""

    def __init__(
        self,
        *,
        actor: Actor,
        clock: Clock,
        policy: OrderPolicy,
        inline: Sequence[Projection],
        bulk: bool,
        keep: int = 50_000,
    ) -> None:
        self.actor, self.clock, self.policy, self.inline, self.bulk = actor, clock, policy, inline, bulk
        self.keep = keep  # orders and invoices kept in memory between chunks, at most
        self.report = ImportReport()
        self.correlation_id = f"import-{uuid.uuid4()}"
        self.skus: dict[str, str] | None = None
        self.customers: dict[str, CustomerCard] = {}
        self.orders: dict[str, _Order] = {}
        self.invoices: dict[str, _Invoice] = {}
        self.invoices_by_order: dict[str, _Invoice] = {}
        self.open_by_customer: dict[str, list[_Invoice]] = {}
        # Records of the chunk in hand (a record of an earlier chunk is found in the log).
        self.seen: set[tuple[str, str]] = set()
        self._events: list[tuple[int, HistoryEvent]] = []
        self._new_streams: set[str] = set()

    # -- parsing ----------------------------------------------------------------------------

    def parse(self, numbered: Iterable[tuple[int, Any]]) -> list[tuple[int, AnyRecord]]:
        out = []
        for line_no, raw in numbered:
            self.report.records += 1
            try:
                if isinstance(raw, (str, bytes)):
                    out.append((line_no, _records.validate_json(raw)))
                else:
                    out.append((line_no, _records.validate_python(raw)))
            except ValidationError as exc:
                rid = _record_id(raw)
                for err in exc.errors(include_url=False):
                    loc = [str(p) for p in err.get("loc", ())]
                    if loc and loc[0] in ("order", "delivery", "payment"):
                        loc = loc[1:]  # the union's tag adds nothing for the reader
                    self._reject(line_no, rid, ".".join(loc) or None, err["msg"])
        return out

    def chunk_committed(self) -> None:
        """Forget what the log and the read models now hold, so memory stays bounded however
        long the file: the chunk's records, and once many are kept, the orders and invoices
        (a later record that needs one reads it again)."""
        self.seen.clear()
        if len(self.orders) + len(self.invoices) > self.keep:
            self.orders.clear()
            self.invoices.clear()
            self.invoices_by_order.clear()
            self.open_by_customer.clear()

    def _reject(self, line: int, record_id: str | None, field: str | None, message: str) -> None:
        self.report.rejected.append(Rejection(line, record_id, field, message))

    # -- one chunk, in the caller's transaction -------------------------------------------------

    async def import_chunk(self, conn: asyncpg.Connection, numbered: Sequence[tuple[int, Any]]) -> None:
        records = self.parse(numbered)
        if not records:
            return
        if self.skus is None:
            self.skus = await lookups.product_groups(conn)
        primary = [record_event_id(rec.kind, rec.record_id, _PRIMARY[rec.kind]) for _, rec in records]
        stored = {
            r["event_id"]
            for r in await conn.fetch("SELECT event_id FROM events WHERE event_id = ANY($1::uuid[])", primary)
        }
        fresh = []
        for (line_no, rec), event_id in zip(records, primary, strict=True):
            if event_id in stored:
                self.report.already_imported += 1
                self.seen.add((rec.kind, rec.record_id))
                self._imported_as(rec)
            else:
                fresh.append((line_no, rec))
        await self._preload(conn, [rec for _, rec in fresh])
        self._events, self._new_streams = [], set()
        for line_no, rec in fresh:
            try:
                if (rec.kind, rec.record_id) in self.seen:
                    raise _Rejected("record_id", f"{rec.kind} record {rec.record_id} appears twice")
                match rec:
                    case OrderRecord():
                        self._order(rec)
                    case DeliveryRecord():
                        self._delivery(rec)
                    case PaymentRecord():
                        self._payment(rec)
                self.seen.add((rec.kind, rec.record_id))
                self.report.accepted += 1
                self._imported_as(rec)
            except _Rejected as exc:
                self._reject(line_no, rec.record_id, exc.field, exc.message)
        # Phase order keeps each stream's versions in log order and lets the read models apply
        # long runs of one event type at a time.
        events = [e for _, e in sorted(self._events, key=lambda pe: pe[0])]
        stored_now = await append_history(
            conn,
            events,
            actor=self.actor,
            recorded_at=self.clock.now(),
            correlation_id=self.correlation_id,
            inline=self.inline,
            bulk=self.bulk,
            timings=self.report.timings,
        )
        self.report.events_appended += len(stored_now)

    async def _preload(self, conn: asyncpg.Connection, records: list[Any]) -> None:
        customer_ids = {r.customer_id for r in records if r.kind in ("order", "payment")}
        wanted_orders = {order_id_for_record(r.order_record_id) for r in records if isinstance(r, DeliveryRecord)} | {
            order_id_for_record(a.order_record_id)
            for r in records
            if isinstance(r, PaymentRecord)
            for a in (r.allocations or [])
        }
        for row in await lookups.orders_with_heads(conn, sorted(wanted_orders - self.orders.keys())):
            self.orders[row["order_id"]] = _Order(
                row["order_id"],
                row["customer_id"],
                row["amount_fen"],
                row["status"],
                row["confirmed_at"],
                row["deliver_by"],
                row["version"],
            )
            customer_ids.add(row["customer_id"])
        missing = sorted(customer_ids - self.customers.keys())
        if missing:
            self.customers.update(await lookups.customer_cards(conn, missing))
        payers = sorted({r.customer_id for r in records if isinstance(r, PaymentRecord)} - self.open_by_customer.keys())
        if payers:
            for customer_id in payers:
                self.open_by_customer[customer_id] = []
            for row in await lookups.open_invoices_of(conn, payers):
                invoice = self.invoices.get(row["invoice_id"])
                if invoice is None:
                    invoice = _Invoice(
                        row["invoice_id"],
                        row["order_id"],
                        row["customer_id"],
                        row["issued_on"],
                        row["due_on"],
                        row["open_fen"],
                    )
                    self.invoices[invoice.invoice_id] = invoice
                    self.invoices_by_order[invoice.order_id] = invoice
                self.open_by_customer[row["customer_id"]].append(invoice)

    # -- records ------------------------------------------------------------------------------

    def _emit(self, phase: int, event: HistoryEvent) -> None:
        self._events.append((phase, event))

    def _customer(self, customer_id: str) -> CustomerCard:
        card = self.customers.get(customer_id)
        if card is None:
            raise _Rejected("customer_id", f"unknown customer {customer_id}")
        return card

    def _imported_as(self, rec: AnyRecord) -> None:
        kind, imported_id = ids_of_record(rec)
        self.report.ids[kind][rec.record_id] = imported_id

    def _order(self, rec: OrderRecord) -> None:
        card = self._customer(rec.customer_id)
        assert self.skus is not None
        for n, line in enumerate(rec.lines):
            if line.sku not in self.skus:
                raise _Rejected(f"lines.{n}.sku", f"unknown SKU {line.sku}")
        if len({line.sku for line in rec.lines}) != len(rec.lines):
            raise _Rejected("lines", "each SKU may appear only once")
        if rec.placed_at > self.clock.now():
            raise _Rejected("placed_at", "an order cannot be placed in the future")
        order_id = order_id_for_record(rec.record_id)
        stream = f"order-{order_id}"
        lines: list[dict[str, Any]] = [
            {
                "sku": line.sku,
                "product_group": self.skus[line.sku],
                "quantity": line.quantity,
                "unit_price_fen": line.unit_price_fen,
                "amount_fen": line.quantity * line.unit_price_fen,
                "promotion_id": None,
                "gift_quantity": 0,
            }
            for line in rec.lines
        ]
        amount = sum(line["amount_fen"] for line in lines)
        placed_at = rec.placed_at
        deliver_by = placed_at + timedelta(hours=self.policy.delivery_hours)
        cause = f"import:{rec.record_id}"
        self._emit(
            0,
            HistoryEvent(
                record_event_id("order", rec.record_id, "order.placed"),
                stream,
                1,
                "order.placed",
                placed_at,
                {
                    "order_id": order_id,
                    "customer_id": card.customer_id,
                    "rep_id": rec.rep_id or card.rep_id,
                    "district_id": card.district_id,
                    "area_id": card.area_id,
                    "source": "import",
                    "visit_id": None,
                    "lines": lines,
                    "amount_fen": amount,
                    "business_date": business_date(placed_at, self.policy.timezone).isoformat(),
                    "placed_at": placed_at.isoformat(),
                },
                cause,
            ),
        )
        self._emit(
            1,
            HistoryEvent(
                record_event_id("order", rec.record_id, "order.confirmed"),
                stream,
                2,
                "order.confirmed",
                placed_at,
                {"order_id": order_id, "confirmed_at": placed_at.isoformat(), "deliver_by": deliver_by.isoformat()},
                cause,
            ),
        )
        self._new_streams.add(stream)
        self.orders[order_id] = _Order(order_id, card.customer_id, amount, "confirmed", placed_at, deliver_by, 2)
        self.report.orders += 1
        self.report.order_amount_fen += amount

    def _delivery(self, rec: DeliveryRecord) -> None:
        order = self.orders.get(order_id_for_record(rec.order_record_id))
        if order is None:
            raise _Rejected("order_record_id", f"unknown order record {rec.order_record_id}")
        if order.status not in ("confirmed", "dispatched"):
            raise _Rejected("order_record_id", f"order record {rec.order_record_id} is {order.status}")
        if rec.delivered_at < order.confirmed_at:
            raise _Rejected("delivered_at", "a delivery cannot precede the order")
        if rec.delivered_at > self.clock.now():
            raise _Rejected("delivered_at", "a delivery cannot be in the future")
        stream = f"order-{order.order_id}"
        cause = f"import:{rec.record_id}"
        self._emit(
            2,
            HistoryEvent(
                record_event_id("delivery", rec.record_id, "order.delivered"),
                stream,
                order.version + 1,
                "order.delivered",
                rec.delivered_at,
                {
                    "order_id": order.order_id,
                    "customer_id": order.customer_id,
                    "delivered_at": rec.delivered_at.isoformat(),
                    "on_time": rec.delivered_at <= order.deliver_by,
                },
                cause,
                existing_stream=stream not in self._new_streams,
            ),
        )
        card = self.customers.get(order.customer_id)
        terms = rec.payment_terms_days
        if terms is None and card is not None:
            terms = card.payment_terms_days
        issued_on = business_date(rec.delivered_at, self.policy.timezone)
        invoice = _Invoice(
            invoice_id_for(order.order_id),
            order.order_id,
            order.customer_id,
            issued_on,
            due_date(issued_on, terms),
            order.amount_fen,
        )
        self._emit(
            3,
            HistoryEvent(
                record_event_id("delivery", rec.record_id, "invoice.issued"),
                f"invoice-{invoice.invoice_id}",
                1,
                "invoice.issued",
                rec.delivered_at,
                {
                    "invoice_id": invoice.invoice_id,
                    "order_id": order.order_id,
                    "customer_id": order.customer_id,
                    "amount_fen": order.amount_fen,
                    "issued_on": issued_on.isoformat(),
                    "due_on": invoice.due_on.isoformat(),
                },
                cause,
            ),
        )
        order.status, order.version = "delivered", order.version + 1
        self.invoices[invoice.invoice_id] = invoice
        self.invoices_by_order[order.order_id] = invoice
        if order.customer_id in self.open_by_customer:
            self.open_by_customer[order.customer_id].append(invoice)
        self.report.deliveries += 1

    def _payment(self, rec: PaymentRecord) -> None:
        card = self._customer(rec.customer_id)
        open_now = [i for i in self.open_by_customer.get(card.customer_id, []) if i.open_fen > 0]
        requested = None
        if rec.allocations:
            requested = []
            for n, a in enumerate(rec.allocations):
                invoice = self.invoices_by_order.get(order_id_for_record(a.order_record_id))
                if invoice is None or invoice.customer_id != card.customer_id or invoice.open_fen <= 0:
                    raise _Rejected(
                        f"allocations.{n}.order_record_id",
                        f"order record {a.order_record_id} has no open invoice of this customer",
                    )
                requested.append((invoice.invoice_id, a.amount_fen))
        try:
            allocations = allocate(
                rec.amount_fen,
                [OpenInvoice(i.invoice_id, i.issued_on, i.due_on, i.open_fen) for i in open_now],
                requested,
            )
        except DomainError as exc:
            raise _Rejected(exc.field, exc.message) from None
        payment_id = payment_id_for_record(rec.record_id)
        occurred = datetime.combine(rec.received_on, datetime.min.time(), ZoneInfo(self.policy.timezone))
        self._emit(
            4,
            HistoryEvent(
                record_event_id("payment", rec.record_id, "payment.received"),
                f"payment-{payment_id}",
                1,
                "payment.received",
                occurred,
                {
                    "payment_id": payment_id,
                    "customer_id": card.customer_id,
                    "amount_fen": rec.amount_fen,
                    "received_on": rec.received_on.isoformat(),
                    "allocations": [a.model_dump() for a in allocations],
                },
                f"import:{rec.record_id}",
            ),
        )
        for allocation in allocations:
            self.invoices[allocation.invoice_id].open_fen -= allocation.amount_fen
        if card.customer_id in self.open_by_customer:  # paid invoices leave the open list
            self.open_by_customer[card.customer_id] = [i for i in open_now if i.open_fen > 0]
        self.report.payments += 1
        self.report.payment_amount_fen += rec.amount_fen


async def import_records(
    conn: asyncpg.Connection,
    records: Sequence[Any],
    *,
    actor: Actor,
    clock: Clock,
    policy: OrderPolicy,
    inline: Sequence[Projection],
    bulk: bool,
) -> ImportReport:
    """Import one batch in the caller's open transaction (the `import_history` command)."""
    started = time.perf_counter()
    run = HistoryImport(actor=actor, clock=clock, policy=policy, inline=inline, bulk=bulk)
    await run.import_chunk(conn, list(enumerate(records, 1)))
    run.report.seconds = time.perf_counter() - started
    return run.report


async def import_lines(
    pool: asyncpg.Pool,
    lines: Iterable[str | bytes],
    *,
    actor: Actor,
    clock: Clock,
    policy: OrderPolicy,
    inline: Sequence[Projection],
    chunk_size: int = 5000,
    keep: int = 50_000,
) -> ImportReport:
    """Import a JSON-lines file, one transaction per chunk (COPY through the staging table).
    Memory stays bounded: at most `keep` orders and invoices are held between chunks."""
    started = time.perf_counter()
    run = HistoryImport(actor=actor, clock=clock, policy=policy, inline=inline, bulk=True, keep=keep)
    chunk: list[tuple[int, str | bytes]] = []
    async with pool.acquire() as conn:
        for line_no, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            chunk.append((line_no, raw))
            if len(chunk) >= chunk_size:
                async with conn.transaction():
                    await run.import_chunk(conn, chunk)
                run.chunk_committed()
                chunk = []
        if chunk:
            async with conn.transaction():
                await run.import_chunk(conn, chunk)
    run.report.seconds = time.perf_counter() - started
    return run.report
