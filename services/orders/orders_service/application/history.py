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

The work is set-based (adapters/bulk_import.py): a chunk of lines is copied into a staging table
and checked, turned into events and applied to the read models by SQL statements in one
transaction. Python reads the lines (a line that is not JSON is rejected here) and allocates the
payments in line order with the domain's `allocate`, the one rule that depends on every record
before it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from orders_service.adapters.bulk_import import KINDS, Staging
from orders_service.domain.policy import OrderPolicy
from orders_service.domain.receivables import OpenInvoice, allocate, invoice_id_for
from salesplatform.clock import Clock
from salesplatform.errors import DomainError
from salesplatform.events import Actor
from salesplatform.ids import uuid5

IMPORT_NAMESPACE = uuid.UUID("9c3d2a4e-6f1b-4e8a-b7c5-3a2f1e0d9c87")


def order_id_for_record(record_id: str) -> str:
    return str(uuid5(IMPORT_NAMESPACE, f"order:{record_id}"))


def payment_id_for_record(record_id: str) -> str:
    return str(uuid5(IMPORT_NAMESPACE, f"payment:{record_id}"))


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
        }


_WHITE_SPACE = " \t\n\r\f\v"  # what a text field is stripped of (PostgreSQL's history_text too)

# The events a record becomes, first and second, by kind (their ids: `record_event_id`).
_EVENT_TYPES = {
    "order": ("order.placed", "order.confirmed"),
    "delivery": ("order.delivered", "invoice.issued"),
    "payment": ("payment.received", None),
}


def record_event_id(kind: str, record_id: str, event_type: str) -> uuid.UUID:
    return uuid5(IMPORT_NAMESPACE, f"{kind}:{record_id}:{event_type}")


def _derived_ids(doc: Any) -> tuple[uuid.UUID | None, uuid.UUID | None, str | None, str | None, str | None]:
    """(first event id, second event id, order id, invoice id, payment id) of a record, as far
    as it names them; PostgreSQL checks the record itself."""
    if not isinstance(doc, dict) or doc.get("kind") not in _EVENT_TYPES or not isinstance(doc.get("record_id"), str):
        return None, None, None, None, None
    kind, record_id = doc["kind"], doc["record_id"].strip(_WHITE_SPACE)
    first, second = _EVENT_TYPES[kind]
    ids = (record_event_id(kind, record_id, first), record_event_id(kind, record_id, second) if second else None)
    if kind == "order":
        return *ids, order_id_for_record(record_id), None, None
    if kind == "payment":
        return *ids, None, None, payment_id_for_record(record_id)
    named = doc.get("order_record_id")
    if not isinstance(named, str):
        return *ids, None, None, None
    order_id = order_id_for_record(named.strip(_WHITE_SPACE))
    return *ids, order_id, invoice_id_for(order_id), None


class HistoryImport:
    """One import run: chunk by chunk, each in the caller's transaction."""

    def __init__(self, *, actor: Actor, clock: Clock, policy: OrderPolicy) -> None:
        self.actor, self.clock, self.policy = actor, clock, policy
        self.report = ImportReport()
        self.correlation_id = f"import-{uuid.uuid4()}"

    def _reject(self, line: int, record_id: str | None, field: str | None, message: str) -> None:
        self.report.rejected.append(Rejection(line, record_id, field, message))

    def _readable(self, numbered: Iterable[tuple[int, Any]]) -> list[tuple[Any, ...]]:
        """The lines as JSON text for PostgreSQL, with the ids each record would be imported
        as; a line that is not JSON is rejected here."""
        out = []
        for line_no, raw in numbered:
            self.report.records += 1
            text = raw if isinstance(raw, (str, bytes)) else orjson.dumps(raw)
            try:
                doc = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                self._reject(line_no, None, None, f"not JSON: {exc}")
                continue
            if isinstance(text, bytes):
                text = text.decode()
            if "\\u0000" in text:  # valid JSON that PostgreSQL's jsonb cannot hold
                self._reject(line_no, None, None, "text may not contain \\u0000")
                continue
            out.append((line_no, text, *_derived_ids(doc)))
        return out

    async def import_chunk(self, conn: asyncpg.Connection, numbered: Sequence[tuple[int, Any]]) -> None:
        lines = self._readable(numbered)
        if not lines:
            return
        staging = Staging(conn, timezone=self.policy.timezone, delivery_hours=self.policy.delivery_hours)
        now = self.clock.now()
        await staging.load(lines)
        await staging.check(now)
        rejected, allocations = _allocate_payments(await staging.payments(), await staging.open_invoices())
        await staging.settle(rejected, allocations)
        self.report.events_appended += await staging.append(
            actor=self.actor.model_dump(mode="json"), recorded_at=now, correlation_id=self.correlation_id
        )
        counts = {r["kind"]: r for r in await staging.summary()}
        for kind in KINDS:
            row = counts.get(kind)
            if row is None:
                continue
            self.report.accepted += row["accepted"]
            self.report.already_imported += row["stored"]
            if kind == "order":
                self.report.orders += row["accepted"]
                self.report.order_amount_fen += row["amount_fen"]
            elif kind == "delivery":
                self.report.deliveries += row["accepted"]
            else:
                self.report.payments += row["accepted"]
                self.report.payment_amount_fen += row["amount_fen"]
        for r in await staging.rejected():
            self._reject(r["line_no"], r["record_id"], r["field"], r["problem"])
        for r in await staging.ids():
            self.report.ids[r["what"]][r["record_id"]] = r["imported_as"]


def _allocate_payments(
    payments: Sequence[asyncpg.Record], open_rows: Sequence[asyncpg.Record]
) -> tuple[list[tuple[int, str | None, str]], list[tuple[int, int, str, int]]]:
    """Each payment, in line order, against its customer's invoices open at that line (stored
    ones, and those issued by earlier lines of the chunk): oldest first, or as allocated.
    Returns the rejections (line, field, message) and the allocations (line, n, invoice, fen)."""
    rejected: list[tuple[int, str | None, str]] = []
    allocations: list[tuple[int, int, str, int]] = []
    open_by_customer: dict[str, dict[str, OpenInvoice]] = {}
    pending = iter(open_rows)
    upcoming = next(pending, None)
    for payment in payments:
        line_no = payment["line_no"]
        while upcoming is not None and upcoming["line_no"] < line_no:
            invoice = OpenInvoice(
                upcoming["invoice_id"], upcoming["issued_on"], upcoming["due_on"], upcoming["open_fen"]
            )
            open_by_customer.setdefault(upcoming["customer_id"], {})[invoice.invoice_id] = invoice
            upcoming = next(pending, None)
        open_now = open_by_customer.setdefault(payment["customer_id"], {})
        requested = None
        try:
            if payment["requested"]:
                requested = []
                for n, (order_record_id, amount) in enumerate(payment["requested"]):
                    invoice_id = invoice_id_for(order_id_for_record(order_record_id))
                    if invoice_id not in open_now:
                        raise DomainError(
                            f"order record {order_record_id} has no open invoice of this customer",
                            field=f"allocations.{n}.order_record_id",
                        )
                    requested.append((invoice_id, int(amount)))
            made = allocate(payment["amount_fen"], list(open_now.values()), requested)
        except DomainError as exc:
            rejected.append((line_no, exc.field, exc.message))
            continue
        for n, a in enumerate(made):
            allocations.append((line_no, n, a.invoice_id, a.amount_fen))
            left = open_now[a.invoice_id].open_fen - a.amount_fen
            if left > 0:
                was = open_now[a.invoice_id]
                open_now[a.invoice_id] = OpenInvoice(a.invoice_id, was.issued_on, was.due_on, left)
            else:
                del open_now[a.invoice_id]
    return rejected, allocations


async def import_records(
    conn: asyncpg.Connection,
    records: Sequence[Any],
    *,
    actor: Actor,
    clock: Clock,
    policy: OrderPolicy,
) -> ImportReport:
    """Import one batch in the caller's open transaction (the `import_history` command)."""
    started = time.perf_counter()
    run = HistoryImport(actor=actor, clock=clock, policy=policy)
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
    chunk_size: int = 20_000,
) -> ImportReport:
    """Import a JSON-lines file, one transaction per chunk of `chunk_size` records. The lines are
    read as they come (a file is never held whole): memory follows the chunk, not the file."""
    started = time.perf_counter()
    run = HistoryImport(actor=actor, clock=clock, policy=policy)
    chunk: list[tuple[int, str | bytes]] = []
    async with pool.acquire() as conn:
        for line_no, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            chunk.append((line_no, raw))
            if len(chunk) >= chunk_size:
                async with conn.transaction():
                    await run.import_chunk(conn, chunk)
                chunk = []
        if chunk:
            async with conn.transaction():
                await run.import_chunk(conn, chunk)
    run.report.seconds = time.perf_counter() - started
    return run.report
