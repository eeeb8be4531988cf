"""Importing the history of an older system: orders, deliveries, cancellations and payments.

Each record is validated against the catalogue, the customer directory and what was imported or
stored before it; an accepted record becomes events with ids derived from the record id
(uuid5), so a rerun appends nothing twice. A rejected record is listed with its line, field and
message and changes nothing. Record formats (one JSON object per line):

    {"kind": "order", "record_id": "H-1", "customer_id": "…", "placed_at": "2025-03-01T09:30:00+08:00",
     "lines": [{"sku": "COLA-330", "quantity": 24, "unit_price_fen": 250}], "rep_id": "r1"}
    {"kind": "delivery", "record_id": "D-1", "order_record_id": "H-1", "delivered_at": "…"}
    {"kind": "payment", "record_id": "P-1", "customer_id": "…", "amount_fen": 6000,
     "received_on": "2025-03-20", "allocations": [{"order_record_id": "H-1", "amount_fen": 6000}]}
    {"kind": "cancellation", "record_id": "X-1", "order_record_id": "H-2", "cancelled_at": "…",
     "reason": "customer withdrew"}

An imported order is confirmed as placed, or, with `"approval": {"required_role", "reasons",
"approver_id", "approved_at"}`, placed, sent for approval, approved and confirmed when approved;
a delivery issues the invoice like a live one; a cancellation cancels a confirmed order; a payment
without allocations pays the oldest open invoices first.

The work is set-based (adapters/bulk_import.py): Python reads each line (orjson) and checks its
fields and their types (`read_record`: a record that breaks one is rejected with its field path,
e.g. `lines.0.quantity`) and derives the record's uuid5 ids; the chunk is copied into staging
tables, checked against the directory, the catalogue, the orders and the log, turned into events
and applied to the read models by SQL statements in one transaction. Python also allocates the
payments in line order with the domain's `allocate`, the one rule that depends on every record
before it. A file's next chunk is read in a thread while PostgreSQL imports the one before.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import asyncpg
import orjson

from orders_service.adapters.bulk_import import KINDS, RECORD_COLUMNS, Staging
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
    cancellations: int = 0
    payments: int = 0
    order_amount_fen: int = 0
    payment_amount_fen: int = 0
    seconds: float = 0.0
    # The records accepted now or before, by what they became: the record ids of orders and
    # payments, and of deliveries with the order record each names. `ids` derives the ids from
    # them when asked. They are kept a chunk at a time, as one string of NUL-separated record
    # ids per chunk (no PostgreSQL text holds a NUL). A string per record, made while each
    # chunk's short-lived rows come and go, pins the allocator's arenas: over a file of 200,000
    # records the importer's peak RSS was 144 MB that way, 123 MB this way.
    imported: dict[str, list[str]] = field(default_factory=lambda: {"orders": [], "invoices": [], "payments": []})
    delivered_orders: list[str] = field(default_factory=list)

    def keep_ids(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Keep what a chunk's records became (`what`, `record_id`, and `order_record_id` for
        an invoice), in file order."""
        for what, blocks in self.imported.items():
            block = _ID_SEPARATOR.join(r["record_id"] for r in rows if r["what"] == what)
            if block:
                blocks.append(block)
        delivered = _ID_SEPARATOR.join(r["order_record_id"] for r in rows if r["what"] == "invoices")
        if delivered:
            self.delivered_orders.append(delivered)

    @property
    def ids(self) -> dict[str, dict[str, str]]:
        """record_id → the id it was imported as, per kind, for the records accepted now or before."""
        return {
            "orders": {r: order_id_for_record(r) for r in _record_ids(self.imported["orders"])},
            "invoices": {
                r: invoice_id_for(order_id_for_record(o))
                for r, o in zip(_record_ids(self.imported["invoices"]), _record_ids(self.delivered_orders), strict=True)
            },
            "payments": {r: payment_id_for_record(r) for r in _record_ids(self.imported["payments"])},
        }

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
            "cancellations": self.cancellations,
            "payments": self.payments,
            "order_amount_fen": self.order_amount_fen,
            "payment_amount_fen": self.payment_amount_fen,
            "ids": self.ids,
            "seconds": round(self.seconds, 3),
        }


_WHITE_SPACE = " \t\n\r\f\v"  # what a text field is stripped of

# The events a record becomes, first and second, by kind (their ids: `record_event_id`).
_EVENT_TYPES = {
    "order": ("order.placed", "order.confirmed"),
    "delivery": ("order.delivered", "invoice.issued"),
    "cancellation": ("order.cancelled", None),
    "payment": ("payment.received", None),
}
_FIELDS = {
    "order": {"kind", "record_id", "customer_id", "placed_at", "lines", "rep_id", "approval"},
    "delivery": {"kind", "record_id", "order_record_id", "delivered_at", "payment_terms_days"},
    "cancellation": {"kind", "record_id", "order_record_id", "cancelled_at", "reason"},
    "payment": {"kind", "record_id", "customer_id", "amount_fen", "received_on", "allocations"},
}
_LINE_FIELDS = {"sku", "quantity", "unit_price_fen"}
_ALLOCATION_FIELDS = {"order_record_id", "amount_fen"}
_APPROVAL_FIELDS = {"required_role", "reasons", "approver_id", "approved_at"}
# Who may have had to approve an order (the roles approval routes to).
_APPROVER_ROLES = ("supervisor", "area_manager", "sales_manager", "general_manager")


def record_event_id(kind: str, record_id: str, event_type: str) -> uuid.UUID:
    return uuid5(IMPORT_NAMESPACE, f"{kind}:{record_id}:{event_type}")


class _Bad(Exception):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _text(doc: dict[str, Any], key: str, max_length: int, *, required: bool = True, at: str = "") -> str | None:
    if doc.get(key) is None and not required:
        return None
    if key not in doc:
        raise _Bad(at + key, "required")
    value = doc[key]
    if isinstance(value, str):
        value = value.strip(_WHITE_SPACE)
        if 1 <= len(value) <= max_length:
            return value
    raise _Bad(at + key, f"text of 1 to {max_length} characters")


def _whole(doc: dict[str, Any], key: str, low: int, high: int, *, required: bool = True, at: str = "") -> int | None:
    """A JSON whole number (24, or 24.0 as some writers put it) from `low` to `high`."""
    if doc.get(key) is None and not required:
        return None
    if key not in doc:
        raise _Bad(at + key, "required")
    value = doc[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    raise _Bad(at + key, f"a whole number from {low:,} to {high:,}")


def _moment(doc: dict[str, Any], key: str, *, at: str = "") -> datetime:
    if key not in doc:
        raise _Bad(at + key, "required")
    value = doc[key]
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _Bad(at + key, "a date and time with its UTC offset, e.g. 2025-03-01T09:30:00+08:00")
    return moment


def _day(doc: dict[str, Any], key: str) -> date:
    if key not in doc:
        raise _Bad(key, "required")
    value = doc[key]
    try:
        if isinstance(value, str) and len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise _Bad(key, "a date, e.g. 2025-03-20")


def _entries(doc: dict[str, Any], key: str, fields: set[str], *, required: bool = True) -> list[dict[str, Any]] | None:
    """A list of 1 to 500 JSON objects with only `fields`."""
    if doc.get(key) is None and not required:
        return None
    if key not in doc:
        raise _Bad(key, "required")
    entries = doc[key]
    if not isinstance(entries, list) or not 1 <= len(entries) <= 500:
        raise _Bad(key, "a list of 1 to 500 entries")
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _Bad(key, "each entry is a JSON object")
        extra = entry.keys() - fields
        if extra:
            raise _Bad(f"{key}.{n}.{min(extra)}", "unknown field")
    return entries


@dataclass(slots=True)
class _Read:
    """A line as staged: the record's row, its order lines, its requested allocations."""

    row: tuple[Any, ...]
    order_lines: list[tuple[Any, ...]]
    requested: list[tuple[str, int]] | None


def read_record(line_no: int, doc: Any) -> _Read:
    """Check a record's fields and their types (the rules that need no other record) and give
    its row for the staging table (`bulk_import.RECORD_COLUMNS`); a bad one carries its field
    and message."""
    record_id = doc.get("record_id") if isinstance(doc, dict) else None
    record_id = record_id.strip(_WHITE_SPACE) if isinstance(record_id, str) else None
    kind = doc.get("kind") if isinstance(doc, dict) else None
    try:
        if not isinstance(doc, dict):
            raise _Bad(None, "a record is a JSON object")
        if kind not in _FIELDS:
            raise _Bad(None, f"kind must be one of: {', '.join(_FIELDS)}")
        extra = doc.keys() - _FIELDS[kind]
        if extra:
            raise _Bad(min(extra), "unknown field")
        record_id = _text(doc, "record_id", 100)
        assert record_id is not None
        first, second = _EVENT_TYPES[kind]
        row: dict[str, Any] = {
            "line_no": line_no,
            "kind": kind,
            "record_id": record_id,
            "event_id": record_event_id(kind, record_id, first),
            "event_id_2": record_event_id(kind, record_id, second) if second else None,
        }
        order_lines: list[tuple[Any, ...]] = []
        requested = None
        if kind == "order":
            row["customer_id"] = _text(doc, "customer_id", 64)
            row["at"] = _moment(doc, "placed_at")
            for n, x in enumerate(_entries(doc, "lines", _LINE_FIELDS) or []):
                at = f"lines.{n}."
                sku = _text(x, "sku", 64, at=at)
                quantity = _whole(x, "quantity", 1, 1_000_000, at=at)
                price = _whole(x, "unit_price_fen", 0, 10**11, at=at)
                order_lines.append((line_no, n, sku, quantity, price))
            row["rep_id"] = _text(doc, "rep_id", 64, required=False)
            row["order_id"] = order_id_for_record(record_id)
            if doc.get("approval") is not None:
                row.update(_approval(doc["approval"]))
                row["event_id_3"] = record_event_id(kind, record_id, "order.approval_required")
                row["event_id_4"] = record_event_id(kind, record_id, "order.approved")
        elif kind in ("delivery", "cancellation"):
            named = _text(doc, "order_record_id", 100)
            assert named is not None
            row["order_record_id"] = named
            row["order_id"] = order_id_for_record(named)
            if kind == "delivery":
                row["at"] = _moment(doc, "delivered_at")
                row["terms"] = _whole(doc, "payment_terms_days", 0, 3650, required=False)
                row["invoice_id"] = invoice_id_for(row["order_id"])
            else:
                row["at"] = _moment(doc, "cancelled_at")
                row["note"] = _text(doc, "reason", 500)
        else:
            row["customer_id"] = _text(doc, "customer_id", 64)
            row["amount_fen"] = _whole(doc, "amount_fen", 1, 10**13)
            row["received_on"] = _day(doc, "received_on")
            row["payment_id"] = payment_id_for_record(record_id)
            allocations = _entries(doc, "allocations", _ALLOCATION_FIELDS, required=False)
            if allocations is not None:
                requested = []
                for n, x in enumerate(allocations):
                    at = f"allocations.{n}."
                    named = _text(x, "order_record_id", 100, at=at)
                    fen = _whole(x, "amount_fen", 1, 10**13, at=at)
                    assert named is not None and fen is not None
                    requested.append((named, fen))
    except _Bad as bad:
        row = {"line_no": line_no, "record_id": record_id, "field": bad.field, "problem": bad.message}
        order_lines, requested = [], None
    return _Read(tuple(map(row.get, RECORD_COLUMNS)), order_lines, requested)


def _approval(value: Any) -> dict[str, Any]:
    """An order's approval: who had to approve it and why, who did and when."""
    if not isinstance(value, dict):
        raise _Bad("approval", "a JSON object")
    extra = value.keys() - _APPROVAL_FIELDS
    if extra:
        raise _Bad(f"approval.{min(extra)}", "unknown field")
    role = _text(value, "required_role", 64, at="approval.")
    if role not in _APPROVER_ROLES:
        raise _Bad("approval.required_role", f"one of: {', '.join(_APPROVER_ROLES)}")
    reasons = value.get("reasons")
    if (
        not isinstance(reasons, list)
        or not 1 <= len(reasons) <= 20
        or not all(isinstance(r, str) and 1 <= len(r.strip(_WHITE_SPACE)) <= 200 and "," not in r for r in reasons)
    ):
        raise _Bad("approval.reasons", "a list of 1 to 20 texts without commas")
    approved_at = _moment(value, "approved_at", at="approval.")
    return {
        "required_role": role,
        "reasons": [r.strip(_WHITE_SPACE) for r in reasons],
        "approver_id": _text(value, "approver_id", 64, at="approval."),
        "approved_at": approved_at,
    }


@dataclass(slots=True)
class _Chunk:
    lines: int
    records: list[_Read]
    rejected: list[Rejection]  # the lines that are not JSON


def read_chunk(numbered: Sequence[tuple[int, Any]]) -> _Chunk:
    """A chunk's records as staged; a line that is not JSON is rejected here."""
    chunk = _Chunk(len(numbered), [], [])
    for line_no, raw in numbered:
        try:
            doc = orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw
        except orjson.JSONDecodeError as exc:
            chunk.rejected.append(Rejection(line_no, None, None, f"not JSON: {exc}"))
            continue
        chunk.records.append(read_record(line_no, doc))
    return chunk


class HistoryImport:
    """One import run: chunk by chunk, each in the caller's transaction."""

    def __init__(self, *, actor: Actor, clock: Clock, policy: OrderPolicy) -> None:
        self.actor, self.clock, self.policy = actor, clock, policy
        self.report = ImportReport()
        self.correlation_id = f"import-{uuid.uuid4()}"

    def _reject(self, line: int, record_id: str | None, field: str | None, message: str) -> None:
        self.report.rejected.append(Rejection(line, record_id, field, message))

    async def import_chunk(self, conn: asyncpg.Connection, numbered: Sequence[tuple[int, Any]]) -> None:
        await self.import_read(conn, read_chunk(numbered))

    async def import_read(self, conn: asyncpg.Connection, chunk: _Chunk) -> None:
        """Import a chunk already read (`read_chunk`), in the caller's transaction."""
        self.report.records += chunk.lines
        self.report.rejected.extend(chunk.rejected)
        records = chunk.records
        if not records:
            return
        staging = Staging(conn, timezone=self.policy.timezone, delivery_hours=self.policy.delivery_hours)
        now = self.clock.now()
        await staging.load([r.row for r in records], [line for r in records for line in r.order_lines])
        await staging.check(now)
        requested = {r.row[0]: r.requested for r in records if r.requested}
        rejected, allocations = _allocate_payments(await staging.payments(), requested, await staging.open_invoices())
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
            elif kind == "cancellation":
                self.report.cancellations += row["accepted"]
            else:
                self.report.payments += row["accepted"]
                self.report.payment_amount_fen += row["amount_fen"]
        for r in await staging.rejected():
            self._reject(r["line_no"], r["record_id"], r["field"], r["problem"])
        self.report.rejected.sort(key=lambda r: r.line)
        self.report.keep_ids(await staging.ids())


_ID_SEPARATOR = "\0"


def _record_ids(blocks: list[str]) -> Iterator[str]:
    for block in blocks:
        yield from block.split(_ID_SEPARATOR)


def _allocate_payments(
    payments: Sequence[asyncpg.Record],
    requested_by_line: dict[int, list[tuple[str, int]]],
    open_rows: Sequence[asyncpg.Record],
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
            if line_no in requested_by_line:
                requested = []
                for n, (order_record_id, amount) in enumerate(requested_by_line[line_no]):
                    invoice_id = invoice_id_for(order_id_for_record(order_record_id))
                    if invoice_id not in open_now:
                        raise DomainError(
                            f"order record {order_record_id} has no open invoice of this customer",
                            field=f"allocations.{n}.order_record_id",
                        )
                    requested.append((invoice_id, amount))
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
    chunk_size: int = 10_000,
) -> ImportReport:
    """Import a JSON-lines file, one transaction per chunk of `chunk_size` records. The lines are
    read as they come (a file is never held whole): memory follows the chunk, not the file. The
    next chunk is read and checked in a thread while PostgreSQL imports the one before."""
    started = time.perf_counter()
    run = HistoryImport(actor=actor, clock=clock, policy=policy)
    chunks = _chunks(lines, chunk_size)

    def read_next() -> _Chunk | None:
        numbered = next(chunks, None)
        return None if numbered is None else read_chunk(numbered)

    async with pool.acquire() as conn:
        chunk = await asyncio.to_thread(read_next)
        while chunk is not None:
            following = asyncio.ensure_future(asyncio.to_thread(read_next))
            try:
                async with conn.transaction():
                    await run.import_read(conn, chunk)
            except BaseException:
                await asyncio.gather(following, return_exceptions=True)  # no thread left reading the file
                raise
            chunk = await following
    run.report.seconds = time.perf_counter() - started
    return run.report


def _chunks(lines: Iterable[str | bytes], size: int) -> Iterator[list[tuple[int, str | bytes]]]:
    """Numbered non-blank lines, `size` at a time."""
    chunk: list[tuple[int, str | bytes]] = []
    for line_no, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        chunk.append((line_no, raw))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
