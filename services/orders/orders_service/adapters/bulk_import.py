"""The history import in SQL: the records of a chunk are copied into a staging table, checked,
turned into events and applied to the read models by set-based statements in the chunk's
transaction (the record format and its rules: `application/history.py`).

Staging: `history_line` takes the raw lines (COPY), `history_record` one row per line with the
typed fields, the derived ids, and `field`/`problem` once the record is rejected;
`history_allocation` the allocations of the accepted payments. Each is a temporary table emptied
at commit. A record is accepted when it has no problem and was not imported before (`stored`).

The events are appended by one `INSERT … SELECT … ON CONFLICT DO NOTHING` in phase order (orders
placed, confirmed, delivered, invoices, payments), so every stream's versions follow the log
order, with their outbox rows in the same statement: the relay publishes them like any others.
Should another transaction have stored one of them meanwhile (the same file imported twice at
once, a command on an imported order), fewer rows are inserted than asked and the chunk is
refused whole with a `ConcurrencyConflict`; a rerun skips what is stored. An order imported
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
CREATE TEMP TABLE IF NOT EXISTS history_line (
    line_no     integer NOT NULL,
    raw         text NOT NULL,
    event_id    uuid,   -- the record's first event
    event_id_2  uuid,   -- its second (order.confirmed, invoice.issued)
    order_id    text,   -- of an order or the order a delivery names
    invoice_id  text,
    payment_id  text
) ON COMMIT DELETE ROWS;
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
    lines           jsonb,
    allocations     jsonb,
    field           text,
    problem         text,
    stored          boolean NOT NULL DEFAULT false,
    event_id        uuid,
    event_id_2      uuid,
    order_id        text,
    payment_id      text,
    -- derived once checked
    stream_version  integer,       -- of a delivery: the order's next version
    invoice_id      text,
    issued_on       date,
    due_on          date,
    on_time         boolean,
    card            jsonb,         -- an order's customer as the directory knows it
    lines_data      jsonb          -- an order's lines as order.placed carries them
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS history_allocation (
    line_no     integer NOT NULL,
    n           integer NOT NULL,
    invoice_id  text NOT NULL,
    amount_fen  bigint NOT NULL
) ON COMMIT DELETE ROWS;
TRUNCATE history_line, history_record, history_allocation;
"""

_KEYS = {
    "order": ["kind", "record_id", "customer_id", "placed_at", "lines", "rep_id"],
    "delivery": ["kind", "record_id", "order_record_id", "delivered_at", "payment_terms_days"],
    "payment": ["kind", "record_id", "customer_id", "amount_fen", "received_on", "allocations"],
}
KINDS = tuple(_KEYS)
LINE_COLUMNS = ("line_no", "raw", "event_id", "event_id_2", "order_id", "invoice_id", "payment_id")


def _lit(values: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def _text(kind: str, key: str, max_length: int, *, optional: bool = False) -> str:
    """The CASE branches checking a text field."""
    value = f"history_text(d->'{key}')"
    missing = f"WHEN kind = '{kind}' AND NOT d ? '{key}' THEN ARRAY['{key}', 'required']\n" if not optional else ""
    present = f" AND d->'{key}' <> 'null'" if optional else ""
    return (
        missing + f"WHEN kind = '{kind}'{present} AND coalesce(length({value}) NOT BETWEEN 1 AND {max_length}, true)"
        f" THEN ARRAY['{key}', 'text of 1 to {max_length} characters']\n"
    )


def _int(kind: str, key: str, low: int, high: int, *, optional: bool = False) -> str:
    value = f"history_int(d->'{key}')"
    missing = f"WHEN kind = '{kind}' AND NOT d ? '{key}' THEN ARRAY['{key}', 'required']\n" if not optional else ""
    present = f" AND d->'{key}' <> 'null'" if optional else ""
    return (
        missing + f"WHEN kind = '{kind}'{present} AND coalesce({value} NOT BETWEEN {low} AND {high}, true)"
        f" THEN ARRAY['{key}', 'a whole number from {low:,} to {high:,}']\n"
    )


def _required(kind: str, key: str) -> str:
    return f"WHEN kind = '{kind}' AND NOT d ? '{key}' THEN ARRAY['{key}', 'required']\n"


def _elements(kind: str, key: str, min_n: int, max_n: int, element_checks: str, *, optional: bool = False) -> str:
    """CASE branches for an array of objects: its length, then the first element with a problem
    (`element_checks`: CASE branches over `x`, an element, and `n`, its index from 0, giving
    ARRAY[field below the element, message])."""
    present = f" AND d->'{key}' <> 'null'" if optional else ""
    return (
        (_required(kind, key) if not optional else "")
        + f"WHEN kind = '{kind}'{present} AND CASE WHEN jsonb_typeof(d->'{key}') = 'array'"
        f" THEN jsonb_array_length(d->'{key}') NOT BETWEEN {min_n} AND {max_n} ELSE true END"
        f" THEN ARRAY['{key}', 'a list of {min_n} to {max_n} entries']\n"
        f"WHEN kind = '{kind}'{present} AND EXISTS (SELECT 1 FROM jsonb_array_elements(d->'{key}') x"
        " WHERE jsonb_typeof(x) <> 'object')"
        f" THEN ARRAY['{key}', 'each entry is a JSON object']\n"
        f"WHEN kind = '{kind}'{present} AND EXISTS (SELECT 1 FROM jsonb_array_elements(d->'{key}') WITH ORDINALITY"
        f" AS e(x, o), LATERAL (SELECT o - 1 AS n) i WHERE (CASE {element_checks} END) IS NOT NULL)"
        f" THEN (SELECT ARRAY['{key}.' || n || '.' || p[1], p[2]]"
        f" FROM jsonb_array_elements(d->'{key}') WITH ORDINALITY AS e(x, o), LATERAL (SELECT o - 1 AS n) i,"
        f" LATERAL (SELECT CASE {element_checks} END AS p) c WHERE p IS NOT NULL ORDER BY o LIMIT 1)\n"
    )


def _element_text(key: str, max_length: int) -> str:
    return (
        f"WHEN NOT x ? '{key}' THEN ARRAY['{key}', 'required'] "
        f"WHEN coalesce(length(history_text(x->'{key}')) NOT BETWEEN 1 AND {max_length}, true)"
        f" THEN ARRAY['{key}', 'text of 1 to {max_length} characters'] "
    )


def _element_int(key: str, low: int, high: int) -> str:
    return (
        f"WHEN NOT x ? '{key}' THEN ARRAY['{key}', 'required'] "
        f"WHEN coalesce(history_int(x->'{key}') NOT BETWEEN {low} AND {high}, true)"
        f" THEN ARRAY['{key}', 'a whole number from {low:,} to {high:,}'] "
    )


def _unknown_element_key(keys: Sequence[str]) -> str:
    return (
        f"WHEN EXISTS (SELECT 1 FROM jsonb_object_keys(x) k WHERE k <> ALL ({_lit(keys)}))"
        f" THEN ARRAY[(SELECT min(k) FROM jsonb_object_keys(x) k WHERE k <> ALL ({_lit(keys)})), 'unknown field'] "
    )


_AWARE = "a date and time with its UTC offset, e.g. 2025-03-01T09:30:00+08:00"
_CHECKS = (
    "WHEN jsonb_typeof(d) <> 'object' THEN ARRAY[NULL, 'a record is a JSON object']\n"
    f"WHEN kind IS NULL OR kind <> ALL ({_lit(KINDS)}) THEN ARRAY[NULL, 'kind must be one of: {', '.join(KINDS)}']\n"
    "WHEN extra IS NOT NULL THEN ARRAY[extra, 'unknown field']\n"
    "WHEN NOT d ? 'record_id' THEN ARRAY['record_id', 'required']\n"
    "WHEN coalesce(length(history_text(d->'record_id')) NOT BETWEEN 1 AND 100, true)"
    " THEN ARRAY['record_id', 'text of 1 to 100 characters']\n"
    # an order
    + _text("order", "customer_id", 64)
    + _required("order", "placed_at")
    + f"WHEN kind = 'order' AND history_timestamptz(d->>'placed_at') IS NULL THEN ARRAY['placed_at', '{_AWARE}']\n"
    + _elements(
        "order",
        "lines",
        1,
        500,
        _unknown_element_key(["sku", "quantity", "unit_price_fen"])
        + _element_text("sku", 64)
        + _element_int("quantity", 1, 1_000_000)
        + _element_int("unit_price_fen", 0, 10**11),
    )
    + _text("order", "rep_id", 64, optional=True)
    # a delivery
    + _text("delivery", "order_record_id", 100)
    + _required("delivery", "delivered_at")
    + f"WHEN kind = 'delivery' AND history_timestamptz(d->>'delivered_at') IS NULL"
    f" THEN ARRAY['delivered_at', '{_AWARE}']\n"
    + _int("delivery", "payment_terms_days", 0, 3650, optional=True)
    # a payment
    + _text("payment", "customer_id", 64)
    + _int("payment", "amount_fen", 1, 10**13)
    + _required("payment", "received_on")
    + "WHEN kind = 'payment' AND history_date(d->>'received_on') IS NULL"
    " THEN ARRAY['received_on', 'a date, e.g. 2025-03-20']\n"
    + _elements(
        "payment",
        "allocations",
        1,
        500,
        _unknown_element_key(["order_record_id", "amount_fen"])
        + _element_text("order_record_id", 100)
        + _element_int("amount_fen", 1, 10**13),
        optional=True,
    )
)

_PARSE = f"""
INSERT INTO history_record (line_no, kind, record_id, customer_id, rep_id, order_record_id, at, received_on,
                            amount_fen, terms, lines, allocations, field, problem,
                            event_id, event_id_2, order_id, invoice_id, payment_id)
SELECT line_no, kind, history_text(d->'record_id'), history_text(d->'customer_id'), history_text(d->'rep_id'),
       history_text(d->'order_record_id'),
       CASE WHEN p IS NULL THEN history_timestamptz(coalesce(d->>'placed_at', d->>'delivered_at')) END,
       CASE WHEN p IS NULL THEN history_date(d->>'received_on') END,
       CASE WHEN p IS NULL THEN history_int(d->'amount_fen')::bigint END,
       CASE WHEN p IS NULL THEN history_int(d->'payment_terms_days')::integer END,
       CASE WHEN p IS NULL THEN d->'lines' END,
       CASE WHEN p IS NULL AND d->'allocations' <> 'null' THEN d->'allocations' END,
       p[1], p[2], event_id, event_id_2, order_id, invoice_id, payment_id
FROM (
    SELECT t.*, CASE {_CHECKS} END AS p
    FROM (
        SELECT l.line_no, l.d, k.kind, l.event_id, l.event_id_2, l.order_id, l.invoice_id, l.payment_id,
               (SELECT min(key) FROM jsonb_object_keys(CASE WHEN k.kind IS NOT NULL THEN l.d ELSE '{{}}' END) key
                 WHERE key <> ALL (CASE k.kind {" ".join(f"WHEN '{kind}' THEN {_lit(keys)}" for kind, keys in _KEYS.items())}
                                   ELSE ARRAY['kind'] END)) AS extra
        FROM (SELECT h.*, raw::jsonb AS d FROM history_line h) l,
             LATERAL (SELECT CASE WHEN jsonb_typeof(l.d) = 'object' THEN l.d->>'kind' END AS kind) k
    ) t
) v
"""

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
    field = p.problem[1], problem = p.problem[2], card = p.card,
    lines_data = p.lines_data, amount_fen = p.amount_fen
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
           END AS problem
    FROM history_record r
    LEFT JOIN {s["customer_directory"]}.customers c ON c.customer_id = r.customer_id
    CROSS JOIN LATERAL (
        SELECT min(e.o - 1) FILTER (WHERE k.sku IS NULL) AS unknown,
               (array_agg(history_text(e.x->'sku') ORDER BY e.o) FILTER (WHERE k.sku IS NULL))[1] AS unknown_sku,
               count(DISTINCT history_text(e.x->'sku')) AS skus, count(*) AS n,
               sum(history_int(e.x->'quantity') * history_int(e.x->'unit_price_fen'))::bigint AS amount_fen,
               jsonb_agg(jsonb_build_object(
                   'sku', history_text(e.x->'sku'), 'product_group', k.product_group,
                   'quantity', history_int(e.x->'quantity')::integer,
                   'unit_price_fen', history_int(e.x->'unit_price_fen')::bigint,
                   'amount_fen', (history_int(e.x->'quantity') * history_int(e.x->'unit_price_fen'))::bigint,
                   'promotion_id', NULL, 'gift_quantity', 0) ORDER BY e.o) AS lines_data
        FROM jsonb_array_elements(r.lines) WITH ORDINALITY AS e(x, o)
        LEFT JOIN {s["catalogue"]}.skus k ON k.sku = history_text(e.x->'sku')
    ) l
    WHERE r.kind = 'order' AND r.problem IS NULL AND NOT r.stored
) p
WHERE p.line_no = r.line_no
"""


def _deliveries_sql(s: dict[str, str]) -> str:
    """Each delivery's order: accepted on an earlier line of this chunk, or stored before (the
    order board, and the head of its stream); the first delivery of an order wins."""
    return f"""
UPDATE history_record r SET
    field = p.problem[1], problem = p.problem[2], customer_id = p.customer_id,
    amount_fen = p.amount_fen, stream_version = p.version,
    issued_on = p.issued_on, due_on = p.issued_on + coalesce(r.terms, p.terms, 0), on_time = p.on_time
FROM (
    SELECT q.*, CASE
               WHEN q.status IS NULL THEN ARRAY['order_record_id', 'unknown order record ' || q.order_record_id]
               WHEN q.status NOT IN ('confirmed', 'dispatched')
                   THEN ARRAY['order_record_id', 'order record ' || q.order_record_id || ' is ' || q.status]
               WHEN q.head_tx > pg_current_xact_id() THEN ARRAY['order_record_id',
                   'order record ' || q.order_record_id || ' changed while this import ran; import the file again']
               WHEN q.at < q.confirmed_at THEN ARRAY['delivered_at', 'a delivery cannot precede the order']
               WHEN q.at > $1 THEN ARRAY['delivered_at', 'a delivery cannot be in the future']
               WHEN row_number() OVER (PARTITION BY q.order_id, (q.at < q.confirmed_at OR q.at > $1)
                                       ORDER BY q.line_no) > 1
                   THEN ARRAY['order_record_id', 'order record ' || q.order_record_id || ' is delivered']
           END AS problem
    FROM (
        SELECT r.line_no, r.order_record_id, r.at, r.order_id,
               coalesce(n.customer_id, b.customer_id) AS customer_id,
               coalesce(n.amount_fen, b.amount_fen) AS amount_fen,
               CASE WHEN n.line_no IS NOT NULL THEN 'confirmed' ELSE b.status END AS status,
               coalesce(n.at, b.confirmed_at) AS confirmed_at,
               coalesce(n.at + make_interval(hours => $2::integer), b.deliver_by) AS deliver_by,
               r.at <= coalesce(n.at + make_interval(hours => $2::integer), b.deliver_by) AS on_time,
               CASE WHEN n.line_no IS NOT NULL THEN 3 ELSE h.stream_version + 1 END AS version,
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
        LEFT JOIN {s["customer_directory"]}.customers c ON c.customer_id = coalesce(n.customer_id, b.customer_id)
        WHERE r.kind = 'delivery' AND r.problem IS NULL AND NOT r.stored
    ) q
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
    """The payments to allocate, in line order, with their requested allocations (order record,
    fen)."""
    return """
SELECT r.line_no, r.customer_id, r.amount_fen,
       (SELECT array_agg(ARRAY[history_text(a.x->'order_record_id'), history_int(a.x->'amount_fen')::text]
                         ORDER BY a.o)
          FROM jsonb_array_elements(r.allocations) WITH ORDINALITY AS a(x, o)) AS requested
FROM history_record r
WHERE r.kind = 'payment' AND r.problem IS NULL AND NOT r.stored
ORDER BY r.line_no
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
    SELECT 1, line_no, event_id_2, 'order-' || order_id,
           2, 'order.confirmed', at,
           jsonb_build_object('order_id', order_id, 'confirmed_at', {_iso("at")},
                              'deliver_by', {_iso("at + make_interval(hours => $2::integer)")}),
           record_id
    FROM accepted WHERE kind = 'order'
    UNION ALL
    SELECT 2, line_no, event_id,
           'order-' || order_id, stream_version, 'order.delivered', at,
           jsonb_build_object('order_id', order_id, 'customer_id', customer_id, 'delivered_at', {_iso("at")},
                              'on_time', on_time),
           record_id
    FROM accepted WHERE kind = 'delivery'
    UNION ALL
    SELECT 3, line_no, event_id_2,
           'invoice-' || invoice_id, 1, 'invoice.issued', at,
           jsonb_build_object('invoice_id', invoice_id, 'order_id', order_id, 'customer_id', customer_id,
                              'amount_fen', amount_fen, 'issued_on', to_char(issued_on, 'YYYY-MM-DD'),
                              'due_on', to_char(due_on, 'YYYY-MM-DD')),
           record_id
    FROM accepted WHERE kind = 'delivery'
    UNION ALL
    SELECT 4, r.line_no, r.event_id, 'payment-' || r.payment_id, 1, 'payment.received',
           r.received_on::timestamp AT TIME ZONE $1,
           jsonb_build_object('payment_id', r.payment_id,
                              'customer_id', r.customer_id, 'amount_fen', r.amount_fen,
                              'received_on', to_char(r.received_on, 'YYYY-MM-DD'),
                              'allocations', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                  'invoice_id', a.invoice_id, 'amount_fen', a.amount_fen) ORDER BY a.n)
                                  FROM history_allocation a WHERE a.line_no = r.line_no), '[]'::jsonb)),
           r.record_id
    FROM accepted r WHERE r.kind = 'payment'
), appended AS (
    INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, occurred_at,
                        recorded_at, correlation_id, causation_id, actor, data)
    SELECT stream_id, stream_version, event_id, event_type, 1, occurred_at, $3, $4, 'import:' || record_id,
           $5::text::jsonb, data
    FROM new_events ORDER BY phase, line_no
    ON CONFLICT DO NOTHING
    RETURNING position
), queued AS (
    INSERT INTO outbox (tx_id, position) SELECT pg_current_xact_id(), position FROM appended
)
SELECT (SELECT count(*) FROM appended) AS appended, (SELECT count(*) FROM new_events) AS wanted
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
                            amount_fen, business_date, placed_at, placed_by, confirmed_at, deliver_by, updated_at)
SELECT order_id, card->>'customer_id', coalesce(rep_id, card->>'rep_id'), card->>'district_id', card->>'area_id',
       'import', NULL, 'confirmed', amount_fen, (at AT TIME ZONE $1)::date, at, $2, at,
       at + make_interval(hours => $3::integer), at
FROM history_record WHERE kind = 'order' AND {accepted}
""",
            ("timezone", "actor_id", "delivery_hours"),
        ),
        (
            f"""
INSERT INTO {board}.order_lines (order_id, line_no, sku, product_group, quantity, unit_price_fen, amount_fen,
                                 promotion_id, gift_quantity)
SELECT r.order_id, l.n, l.x->>'sku', l.x->>'product_group', (l.x->>'quantity')::integer,
       (l.x->>'unit_price_fen')::bigint, (l.x->>'amount_fen')::bigint, NULL, 0
FROM history_record r CROSS JOIN LATERAL jsonb_array_elements(r.lines_data) WITH ORDINALITY AS l(x, n)
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
       record_id,
       CASE kind WHEN 'order' THEN order_id WHEN 'delivery' THEN invoice_id ELSE payment_id END AS imported_as
FROM history_record WHERE problem IS NULL ORDER BY line_no
"""


class Staging:
    """One chunk's statements, in the caller's transaction (see the module's docstring)."""

    def __init__(self, conn: asyncpg.Connection, *, timezone: str, delivery_hours: int) -> None:
        self.conn = conn
        self.timezone, self.delivery_hours = timezone, delivery_hours
        self.schemas: dict[str, str] = {}

    async def load(self, lines: Sequence[tuple[Any, ...]]) -> None:
        """Stage the chunk's lines, (line number, JSON text, first event id, second event id,
        order id, invoice id, payment id) each, and check each record's fields and types."""
        await self.conn.execute(_STAGING)
        self.schemas = await locked_schemas(self.conn, READ_MODELS, {})
        await self.conn.copy_records_to_table("history_line", records=lines, columns=LINE_COLUMNS)
        await self.conn.execute(_PARSE)
        await self.conn.execute("ANALYZE history_record")  # so the plans look up `events` by index

    async def check(self, now: datetime) -> None:
        """Records imported before, record ids given twice, then orders, deliveries and payers
        against the directory, the catalogue, the order board and the earlier lines."""
        await self.conn.execute(_STORED_AND_TWICE)
        await self.conn.execute(_orders_sql(self.schemas), now)
        await self.conn.execute(_deliveries_sql(self.schemas), now, self.delivery_hours, self.timezone)
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
        row = await self.conn.fetchrow(
            _EVENTS,
            self.timezone,
            self.delivery_hours,
            recorded_at,
            correlation_id,
            orjson.dumps(actor).decode(),
        )
        if row["appended"] != row["wanted"]:
            raise ConcurrencyConflict(
                "some of these records were stored while this import ran (an import of the same file at the"
                " same time?); run the import again, records already imported are skipped"
            )
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
