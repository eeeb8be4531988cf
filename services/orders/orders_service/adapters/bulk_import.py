"""The history import in SQL: the records of a chunk are copied into a staging table, checked,
turned into events and applied to the read models by set-based statements in the chunk's
transaction (the record format and its rules: `application/history.py`).

Staging (COPY): `history_record` takes one row per line with the record's fields as read
(`application/history.py` reads each line and checks its fields' types), its ids, and
`field`/`problem` once it is rejected; `history_order_line` the lines of the orders;
`history_allocation` the allocations of the accepted payments. Each is a temporary table emptied
at commit. A record is accepted when it has no problem and was not imported before (`stored`).

The events are appended by one `INSERT … SELECT` in phase order (orders placed, sent for
approval, approved, confirmed, delivered or cancelled, invoices, payments), so every stream's
versions follow the log order, with their outbox rows in the same statement: the relay publishes
them like any others. Should another transaction have stored one of them meanwhile (the same
file imported twice at once, a command on an imported order), a unique key refuses the statement
(in a savepoint) and the chunk is refused whole with a `ConcurrencyConflict`; a rerun skips what
is stored. An order imported
before the transaction gets its delivery only if the head of its stream was written by an older
transaction, the platform's own rule for the global order of the log.

The read models the import touches (`order_board`, `receivables`) are written from the staging
rows with the same values their projections write from the events: a rebuild from the log gives
the same rows (tests/test_rebuild.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from salesplatform.errors import ConcurrencyConflict
from salesplatform.projections import locked_schemas

# The projections whose tables the import reads or writes.
READ_MODELS = ("customer_directory", "catalogue", "order_board", "receivables")

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS history_record (
    line_no         integer PRIMARY KEY,
    kind            text,
    record_id       text,
    customer_id     text,
    rep_id          text,
    order_record_id text,
    at              timestamptz,   -- placed_at, delivered_at
    received_on     date,
    amount_fen      bigint,        -- a payment's; an order's total once checked
    terms           integer,
    field           text,
    problem         text,
    event_id        uuid,          -- the record's first event
    event_id_2      uuid,          -- its second (order.confirmed, invoice.issued)
    order_id        text,          -- of an order, or of the order a delivery names
    invoice_id      text,
    payment_id      text,
    event_id_3      uuid,          -- an approved order's order.approval_required
    event_id_4      uuid,          -- and order.approved
    approved_at     timestamptz,   -- an order's approval, if it needed one
    approver_id     text,
    required_role   text,
    reasons         text[],
    note            text,          -- a cancellation's reason
    stored          boolean NOT NULL DEFAULT false,
    -- derived once checked
    stream_version  integer,       -- of a delivery: the order's next version
    issued_on       date,
    due_on          date,
    on_time         boolean,
    card            jsonb,         -- an order's customer as the directory knows it
    lines_data      jsonb          -- an order's lines as order.placed carries them
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS history_order_line (
    line_no         integer NOT NULL,
    n               integer NOT NULL,
    sku             text NOT NULL,
    quantity        integer NOT NULL,
    unit_price_fen  bigint NOT NULL
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS history_allocation (
    line_no     integer NOT NULL,
    n           integer NOT NULL,
    invoice_id  text NOT NULL,
    amount_fen  bigint NOT NULL
) ON COMMIT DELETE ROWS;
TRUNCATE history_record, history_order_line, history_allocation;
"""

KINDS = ("order", "delivery", "cancellation", "payment")
RECORD_COLUMNS = (
    "line_no",
    "kind",
    "record_id",
    "customer_id",
    "rep_id",
    "order_record_id",
    "at",
    "received_on",
    "amount_fen",
    "terms",
    "field",
    "problem",
    "event_id",
    "event_id_2",
    "order_id",
    "invoice_id",
    "payment_id",
    "event_id_3",
    "event_id_4",
    "approved_at",
    "approver_id",
    "required_role",
    "reasons",
    "note",
)
ORDER_LINE_COLUMNS = ("line_no", "n", "sku", "quantity", "unit_price_fen")

# Records imported before: their first event is in the log. Then the later lines of a record id
# already given in this chunk.
_STORED_AND_TWICE = """
WITH ids AS (
    UPDATE history_record r SET stored = true
    FROM events e
    WHERE r.problem IS NULL AND e.event_id = r.event_id
    RETURNING r.line_no
)
UPDATE history_record r SET field = 'record_id', problem = r.kind || ' record ' || r.record_id || ' appears twice'
FROM (SELECT line_no, row_number() OVER (PARTITION BY kind, record_id ORDER BY line_no) AS n
      FROM history_record WHERE problem IS NULL) t
WHERE t.line_no = r.line_no AND t.n > 1 AND r.line_no NOT IN (SELECT line_no FROM ids)
"""


def _orders_sql(s: dict[str, str]) -> str:
    return f"""
UPDATE history_record r SET
    field = p.problem[1], problem = p.problem[2], card = p.card, lines_data = p.lines_data, amount_fen = p.amount_fen
FROM (
    SELECT r.line_no,
           CASE WHEN c.customer_id IS NOT NULL THEN jsonb_build_object(
               'customer_id', c.customer_id, 'rep_id', c.rep_id, 'district_id', c.district_id,
               'area_id', c.area_id) END AS card,
           l.lines_data, l.amount_fen,
           CASE
               WHEN c.customer_id IS NULL THEN ARRAY['customer_id', 'unknown customer ' || r.customer_id]
               WHEN l.unknown IS NOT NULL THEN ARRAY['lines.' || l.unknown || '.sku', 'unknown SKU ' || l.unknown_sku]
               WHEN l.skus <> l.n THEN ARRAY['lines', 'each SKU may appear only once']
               WHEN r.at > $1 THEN ARRAY['placed_at', 'an order cannot be placed in the future']
               WHEN r.approved_at < r.at THEN ARRAY['approval.approved_at', 'an approval cannot precede the order']
               WHEN r.approved_at > $1 THEN ARRAY['approval.approved_at', 'an approval cannot be in the future']
           END AS problem
    FROM history_record r
    LEFT JOIN {s["customer_directory"]}.customers c ON c.customer_id = r.customer_id
    JOIN (
        SELECT ol.line_no,
               min(ol.n) FILTER (WHERE k.sku IS NULL) AS unknown,
               (array_agg(ol.sku ORDER BY ol.n) FILTER (WHERE k.sku IS NULL))[1] AS unknown_sku,
               count(DISTINCT ol.sku) AS skus, count(*) AS n,
               sum(ol.quantity * ol.unit_price_fen)::bigint AS amount_fen,
               jsonb_agg(jsonb_build_object(
                   'sku', ol.sku, 'product_group', k.product_group, 'quantity', ol.quantity,
                   'unit_price_fen', ol.unit_price_fen, 'amount_fen', ol.quantity * ol.unit_price_fen,
                   'promotion_id', NULL, 'gift_quantity', 0) ORDER BY ol.n) AS lines_data
        FROM history_order_line ol
        LEFT JOIN {s["catalogue"]}.skus k ON k.sku = ol.sku
        GROUP BY ol.line_no
    ) l ON l.line_no = r.line_no
    WHERE r.kind = 'order' AND r.problem IS NULL AND NOT r.stored
) p
WHERE p.line_no = r.line_no
"""


def _closings_sql(s: dict[str, str]) -> str:
    """Each delivery's or cancellation's order: accepted on an earlier line of this chunk, or
    stored before (the order board, and the head of its stream). An order is delivered or
    cancelled once: the first such record of an order wins, the later ones are refused."""
    return f"""
UPDATE history_record r SET
    field = p.problem[1], problem = p.problem[2], customer_id = p.customer_id,
    amount_fen = p.amount_fen, stream_version = p.version,
    issued_on = p.issued_on, due_on = p.issued_on + coalesce(r.terms, p.terms, 0), on_time = p.on_time
FROM (
    SELECT q.*, CASE
               WHEN q.own_problem IS NOT NULL THEN q.own_problem
               WHEN row_number() OVER w > 1 THEN ARRAY['order_record_id', 'order record ' || q.order_record_id
                   || CASE first_value(q.kind) OVER w WHEN 'delivery' THEN ' is delivered' ELSE ' is cancelled' END]
           END AS problem
    FROM (
        SELECT q.*, CASE
               WHEN q.status IS NULL THEN ARRAY['order_record_id', 'unknown order record ' || q.order_record_id]
               WHEN q.status NOT IN ('confirmed', 'dispatched')
                   THEN ARRAY['order_record_id', 'order record ' || q.order_record_id || ' is ' || q.status]
               WHEN q.head_tx > pg_current_xact_id() THEN ARRAY['order_record_id',
                   'order record ' || q.order_record_id || ' changed while this import ran; import the file again']
               WHEN q.at < q.confirmed_at THEN ARRAY[q.at_field, 'cannot precede the order''s confirmation']
               WHEN q.at > $1 THEN ARRAY[q.at_field, 'cannot be in the future']
           END AS own_problem
        FROM (
            SELECT r.line_no, r.kind, r.order_record_id, r.at, r.order_id,
                   CASE r.kind WHEN 'delivery' THEN 'delivered_at' ELSE 'cancelled_at' END AS at_field,
                   coalesce(n.customer_id, b.customer_id) AS customer_id,
                   coalesce(n.amount_fen, b.amount_fen) AS amount_fen,
                   CASE WHEN n.line_no IS NOT NULL THEN 'confirmed' ELSE b.status END AS status,
                   coalesce(n.approved_at, n.at, b.confirmed_at) AS confirmed_at,
                   coalesce(coalesce(n.approved_at, n.at) + make_interval(hours => $2::integer), b.deliver_by)
                       AS deliver_by,
                   r.at <= coalesce(coalesce(n.approved_at, n.at) + make_interval(hours => $2::integer),
                                    b.deliver_by) AS on_time,
                   CASE WHEN n.approved_at IS NOT NULL THEN 5 WHEN n.line_no IS NOT NULL THEN 3
                        ELSE h.stream_version + 1 END AS version,
                   h.tx_id AS head_tx,
                   (r.at AT TIME ZONE $3)::date AS issued_on,
                   c.payment_terms_days AS terms
            FROM history_record r
            LEFT JOIN history_record n ON n.kind = 'order' AND n.order_id = r.order_id AND n.problem IS NULL
                                      AND NOT n.stored AND n.line_no < r.line_no
            LEFT JOIN {s["order_board"]}.orders b ON n.line_no IS NULL AND b.order_id = r.order_id
            LEFT JOIN LATERAL (SELECT e.stream_version, e.tx_id FROM events e
                               WHERE b.order_id IS NOT NULL AND e.stream_id = 'order-' || b.order_id
                               ORDER BY e.stream_version DESC LIMIT 1) h ON true
            LEFT JOIN {s["customer_directory"]}.customers c
                   ON c.customer_id = coalesce(n.customer_id, b.customer_id)
            WHERE r.kind IN ('delivery', 'cancellation') AND r.problem IS NULL AND NOT r.stored
        ) q
    ) q
    WINDOW w AS (PARTITION BY q.order_id, q.own_problem IS NULL ORDER BY q.line_no)
) p
WHERE p.line_no = r.line_no
"""


def _payers_sql(s: dict[str, str]) -> str:
    return f"""
UPDATE history_record r SET field = 'customer_id', problem = 'unknown customer ' || r.customer_id
WHERE r.kind = 'payment' AND r.problem IS NULL AND NOT r.stored
  AND NOT EXISTS (SELECT 1 FROM {s["customer_directory"]}.customers c WHERE c.customer_id = r.customer_id)
"""


def _payments_sql() -> str:
    """The payments to allocate, in line order."""
    return """
SELECT line_no, customer_id, amount_fen FROM history_record
WHERE kind = 'payment' AND problem IS NULL AND NOT stored
ORDER BY line_no
"""


def _open_invoices_sql(s: dict[str, str]) -> str:
    """The open invoices of the chunk's payers: stored ones (line 0), then the ones this chunk's
    deliveries issue, at their line."""
    return f"""
WITH payers AS (
    SELECT DISTINCT customer_id FROM history_record
    WHERE kind = 'payment' AND problem IS NULL AND NOT stored
)
SELECT 0 AS line_no, i.invoice_id, i.customer_id, i.issued_on, i.due_on, i.open_fen
FROM {s["receivables"]}.invoices i JOIN payers USING (customer_id)
WHERE i.open_fen > 0
UNION ALL
SELECT r.line_no, r.invoice_id, r.customer_id, r.issued_on, r.due_on, r.amount_fen
FROM history_record r JOIN payers USING (customer_id)
WHERE r.kind = 'delivery' AND r.problem IS NULL AND NOT r.stored
ORDER BY line_no, issued_on, invoice_id
"""


_REJECT = """
UPDATE history_record r SET field = t.field, problem = t.problem
FROM unnest($1::integer[], $2::text[], $3::text[]) AS t(line_no, field, problem)
WHERE r.line_no = t.line_no
"""

_ISO = '\'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\''


def _iso(column: str) -> str:
    return f"to_char(({column}) AT TIME ZONE 'UTC', {_ISO})"


_EVENTS = f"""
WITH accepted AS MATERIALIZED (
    SELECT * FROM history_record WHERE problem IS NULL AND NOT stored
), new_events (phase, line_no, event_id, stream_id, stream_version, event_type, occurred_at, data, record_id) AS (
    SELECT 0, line_no, event_id, 'order-' || order_id, 1,
           'order.placed', at,
           jsonb_build_object('order_id', order_id, 'customer_id', card->>'customer_id',
                              'rep_id', coalesce(rep_id, card->>'rep_id'), 'district_id', card->>'district_id',
                              'area_id', card->>'area_id', 'source', 'import', 'visit_id', NULL,
                              'lines', lines_data, 'amount_fen', amount_fen,
                              'business_date', to_char((at AT TIME ZONE $1)::date, 'YYYY-MM-DD'),
                              'placed_at', {_iso("at")}),
           record_id
    FROM accepted WHERE kind = 'order'
    UNION ALL
    SELECT 1, line_no, event_id_3, 'order-' || order_id, 2, 'order.approval_required', at,
           jsonb_build_object('order_id', order_id, 'reasons', to_jsonb(reasons), 'required_role', required_role),
           record_id
    FROM accepted WHERE kind = 'order' AND approved_at IS NOT NULL
    UNION ALL
    SELECT 2, line_no, event_id_4, 'order-' || order_id, 3, 'order.approved', approved_at,
           jsonb_build_object('order_id', order_id, 'approver_id', approver_id, 'reason', NULL),
           record_id
    FROM accepted WHERE kind = 'order' AND approved_at IS NOT NULL
    UNION ALL
    SELECT 3, line_no, event_id_2, 'order-' || order_id,
           CASE WHEN approved_at IS NULL THEN 2 ELSE 4 END, 'order.confirmed', coalesce(approved_at, at),
           jsonb_build_object('order_id', order_id, 'confirmed_at', {_iso("coalesce(approved_at, at)")},
                              'deliver_by', {_iso("coalesce(approved_at, at) + make_interval(hours => $2::integer)")}),
           record_id
    FROM accepted WHERE kind = 'order'
    UNION ALL
    SELECT 4, line_no, event_id, 'order-' || order_id, stream_version, 'order.cancelled', at,
           jsonb_build_object('order_id', order_id, 'reason', note),
           record_id
    FROM accepted WHERE kind = 'cancellation'
    UNION ALL
    SELECT 4, line_no, event_id,
           'order-' || order_id, stream_version, 'order.delivered', at,
           jsonb_build_object('order_id', order_id, 'customer_id', customer_id, 'delivered_at', {_iso("at")},
                              'on_time', on_time),
           record_id
    FROM accepted WHERE kind = 'delivery'
    UNION ALL
    SELECT 5, line_no, event_id_2,
           'invoice-' || invoice_id, 1, 'invoice.issued', at,
           jsonb_build_object('invoice_id', invoice_id, 'order_id', order_id, 'customer_id', customer_id,
                              'amount_fen', amount_fen, 'issued_on', to_char(issued_on, 'YYYY-MM-DD'),
                              'due_on', to_char(due_on, 'YYYY-MM-DD')),
           record_id
    FROM accepted WHERE kind = 'delivery'
    UNION ALL
    SELECT 6, r.line_no, r.event_id, 'payment-' || r.payment_id, 1, 'payment.received',
           r.received_on::timestamp AT TIME ZONE $1,
           jsonb_build_object('payment_id', r.payment_id,
                              'customer_id', r.customer_id, 'amount_fen', r.amount_fen,
                              'received_on', to_char(r.received_on, 'YYYY-MM-DD'),
                              'allocations', coalesce(a.allocations, '[]'::jsonb)),
           r.record_id
    FROM accepted r
    LEFT JOIN (SELECT line_no, jsonb_agg(jsonb_build_object('invoice_id', invoice_id, 'amount_fen', amount_fen)
                                         ORDER BY n) AS allocations
               FROM history_allocation GROUP BY line_no) a USING (line_no)
    WHERE r.kind = 'payment'
), appended AS (
    INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, occurred_at,
                        recorded_at, correlation_id, causation_id, actor, data)
    SELECT stream_id, stream_version, event_id, event_type, 1, occurred_at, $3, $4, 'import:' || record_id,
           $5::text::jsonb, data
    FROM new_events ORDER BY phase, line_no
    RETURNING position
), queued AS (
    INSERT INTO outbox (tx_id, position) SELECT pg_current_xact_id(), position FROM appended
)
SELECT count(*) AS appended FROM appended
"""


def _read_models_sql(s: dict[str, str]) -> list[tuple[str, tuple[str, ...]]]:
    """The order board and receivables, as OrderBoard and Receivables write them from these events
    (an order placed and confirmed at once is one confirmed row). Each statement with the names
    of the parameters it takes, in order."""
    board, receivables = s["order_board"], s["receivables"]
    accepted = "problem IS NULL AND NOT stored"
    return [
        (
            f"""
INSERT INTO {board}.orders (order_id, customer_id, rep_id, district_id, area_id, source, visit_id, status,
                            amount_fen, business_date, placed_at, placed_by, approval_reasons, required_role,
                            approved_by, confirmed_at, deliver_by, updated_at)
SELECT order_id, card->>'customer_id', coalesce(rep_id, card->>'rep_id'), card->>'district_id', card->>'area_id',
       'import', NULL, 'confirmed', amount_fen, (at AT TIME ZONE $1)::date, at, $2, coalesce(reasons, '{{}}'),
       required_role, approver_id, coalesce(approved_at, at),
       coalesce(approved_at, at) + make_interval(hours => $3::integer), coalesce(approved_at, at)
FROM history_record WHERE kind = 'order' AND {accepted}
""",
            ("timezone", "actor_id", "delivery_hours"),
        ),
        (
            f"""
INSERT INTO {board}.order_lines (order_id, line_no, sku, product_group, quantity, unit_price_fen, amount_fen,
                                 promotion_id, gift_quantity)
SELECT r.order_id, l.n + 1, l.sku, k.product_group, l.quantity, l.unit_price_fen, l.quantity * l.unit_price_fen,
       NULL, 0
FROM history_record r JOIN history_order_line l USING (line_no) JOIN {s["catalogue"]}.skus k USING (sku)
WHERE r.kind = 'order' AND r.{accepted.replace(" stored", " r.stored")}
""",
            (),
        ),
        (
            f"""
UPDATE {board}.orders o SET status = 'delivered', delivered_at = r.at, on_time = r.on_time, updated_at = r.at
FROM history_record r
WHERE r.kind = 'delivery' AND r.{accepted.replace(" stored", " r.stored")} AND o.order_id = r.order_id
""",
            (),
        ),
        (
            f"""
UPDATE {board}.orders o SET status = 'cancelled', cancel_reason = r.note, updated_at = r.at
FROM history_record r
WHERE r.kind = 'cancellation' AND r.{accepted.replace(" stored", " r.stored")} AND o.order_id = r.order_id
""",
            (),
        ),
        (
            f"""
INSERT INTO {receivables}.invoices (invoice_id, order_id, customer_id, amount_fen, issued_on, due_on)
SELECT invoice_id, order_id, customer_id, amount_fen, issued_on, due_on
FROM history_record WHERE kind = 'delivery' AND {accepted}
""",
            (),
        ),
        (
            f"""
INSERT INTO {receivables}.payments (payment_id, customer_id, amount_fen, received_on, recorded_by)
SELECT payment_id, customer_id, amount_fen, received_on, $1
FROM history_record WHERE kind = 'payment' AND {accepted}
""",
            ("actor_id",),
        ),
        (
            f"""
WITH a AS (
    INSERT INTO {receivables}.allocations (payment_id, invoice_id, amount_fen)
    SELECT r.payment_id, a.invoice_id, a.amount_fen
    FROM history_allocation a JOIN history_record r USING (line_no)
    RETURNING invoice_id, amount_fen
)
UPDATE {receivables}.invoices i SET paid_fen = i.paid_fen + s.total
FROM (SELECT invoice_id, sum(amount_fen) AS total FROM a GROUP BY invoice_id) s
WHERE i.invoice_id = s.invoice_id
""",
            (),
        ),
    ]


_SUMMARY = """
SELECT kind,
       count(*) FILTER (WHERE problem IS NULL AND NOT stored) AS accepted,
       count(*) FILTER (WHERE stored) AS stored,
       coalesce(sum(amount_fen) FILTER (WHERE problem IS NULL AND NOT stored), 0)::bigint AS amount_fen
FROM history_record WHERE kind = ANY($1::text[]) GROUP BY kind
"""

_REJECTED = """
SELECT line_no, record_id, field, problem FROM history_record WHERE problem IS NOT NULL ORDER BY line_no
"""

# What each record accepted now or before is known by (the report's `ids`).
_IDS = """
SELECT CASE kind WHEN 'order' THEN 'orders' WHEN 'delivery' THEN 'invoices' ELSE 'payments' END AS what,
       record_id, order_record_id
FROM history_record WHERE problem IS NULL AND kind <> 'cancellation' ORDER BY line_no
"""


class Staging:
    """One chunk's statements, in the caller's transaction (see the module's docstring)."""

    def __init__(self, conn: asyncpg.Connection, *, timezone: str, delivery_hours: int) -> None:
        self.conn = conn
        self.timezone, self.delivery_hours = timezone, delivery_hours
        self.schemas: dict[str, str] = {}

    async def load(self, records: Sequence[tuple[Any, ...]], order_lines: Sequence[tuple[Any, ...]]) -> None:
        """Stage the chunk: its records (`RECORD_COLUMNS`) and the lines of its orders
        (`ORDER_LINE_COLUMNS`, n from 0)."""
        await self.conn.execute(_STAGING)
        self.schemas = await locked_schemas(self.conn, READ_MODELS, {})
        await self.conn.copy_records_to_table("history_record", records=records, columns=RECORD_COLUMNS)
        if order_lines:
            await self.conn.copy_records_to_table("history_order_line", records=order_lines, columns=ORDER_LINE_COLUMNS)
        # Row counts and the columns joined on, so the plans look `events` up by index and join
        # the chunk's own rows by hash.
        await self.conn.execute("ANALYZE history_record (line_no, kind, order_id), history_order_line (line_no, sku)")

    async def check(self, now: datetime) -> None:
        """Records imported before, record ids given twice, then orders, deliveries and payers
        against the directory, the catalogue, the order board and the earlier lines."""
        await self.conn.execute(_STORED_AND_TWICE)
        await self.conn.execute(_orders_sql(self.schemas), now)
        await self.conn.execute(_closings_sql(self.schemas), now, self.delivery_hours, self.timezone)
        await self.conn.execute(_payers_sql(self.schemas))

    async def payments(self) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(_payments_sql()))

    async def open_invoices(self) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(_open_invoices_sql(self.schemas)))

    async def settle(
        self,
        rejected: Sequence[tuple[int, str | None, str]],
        allocations: Sequence[tuple[int, int, str, int]],
    ) -> None:
        """The payments' outcome: rejections (line, field, message), and the allocations of the
        accepted ones (line, n, invoice id, fen)."""
        if rejected:
            await self.conn.execute(
                _REJECT, [r[0] for r in rejected], [r[1] for r in rejected], [r[2] for r in rejected]
            )
        if allocations:
            await self.conn.copy_records_to_table(
                "history_allocation", records=allocations, columns=("line_no", "n", "invoice_id", "amount_fen")
            )

    async def append(self, *, actor: dict[str, Any], recorded_at: datetime, correlation_id: str) -> int:
        """Append the accepted records' events with their outbox rows, then the read models."""
        try:
            async with self.conn.transaction():  # a savepoint: a conflict leaves the caller's transaction usable
                row = await self.conn.fetchrow(
                    _EVENTS,
                    self.timezone,
                    self.delivery_hours,
                    recorded_at,
                    correlation_id,
                    orjson.dumps(actor).decode(),
                )
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrencyConflict(
                "some of these records were stored while this import ran (an import of the same file at the"
                " same time?); run the import again, records already imported are skipped"
            ) from exc
        if row["appended"]:
            values = {"timezone": self.timezone, "actor_id": actor["id"], "delivery_hours": self.delivery_hours}
            for statement, names in _read_models_sql(self.schemas):
                await self.conn.execute(statement, *(values[n] for n in names))
            await self.conn.execute("SELECT pg_notify('events', '')")
        return int(row["appended"])

    async def summary(self) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(_SUMMARY, list(KINDS)))

    async def rejected(self) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(_REJECTED))

    async def ids(self) -> list[asyncpg.Record]:
        return list(await self.conn.fetch(_IDS))
