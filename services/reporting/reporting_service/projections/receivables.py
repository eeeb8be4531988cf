"""Invoices, payments and credit notes, from the orders service's events. Ageing is computed as
of any date from these: an invoice's open amount on a day is its amount less what was paid and
credited by then.

A credit note (a return resolved with `resolution` credit_note) settles the invoice of the
returned order, on the business date of the resolution, for its amount but never more than
the invoice still had open when it was resolved (what was paid or credited before, in the order
the orders service recorded them). That is the orders service's own rule, so both services
show the same open amount.
"""

from __future__ import annotations

import asyncpg

from reporting_service.projections.base import SqlProjection, Statement, keys
from salesplatform.projections import Change

SCHEMA = """
CREATE TABLE invoices (
    invoice_id  text PRIMARY KEY,
    order_id    text,
    customer_id text NOT NULL,
    amount_fen  bigint NOT NULL,
    issued_on   date NOT NULL,
    due_on      date NOT NULL
);
CREATE INDEX invoices_by_customer ON invoices (customer_id);

CREATE TABLE payments (
    payment_id  text PRIMARY KEY,
    customer_id text NOT NULL,
    amount_fen  bigint NOT NULL,
    received_on date NOT NULL
);

CREATE TABLE allocations (
    payment_id  text NOT NULL,
    line_no     integer NOT NULL,
    invoice_id  text NOT NULL,
    amount_fen  bigint NOT NULL,
    received_on date NOT NULL,
    PRIMARY KEY (payment_id, line_no)
);
CREATE INDEX allocations_by_invoice ON allocations (invoice_id);

CREATE TABLE return_orders (return_id text PRIMARY KEY, order_id text NOT NULL);

CREATE TABLE credit_notes (
    return_id    text PRIMARY KEY,
    invoice_id   text,
    customer_id  text,
    amount_fen   bigint NOT NULL,
    credited_fen bigint NOT NULL,
    credited_on  date NOT NULL
);
CREATE INDEX credit_notes_by_invoice ON credit_notes (invoice_id);
"""

INVOICE_ISSUED = """
INSERT INTO invoices
SELECT e.data->>'invoice_id', e.data->>'order_id', e.data->>'customer_id',
       coalesce((e.data->>'amount_fen')::bigint, 0),
       coalesce((e.data->>'issued_on')::date, (e.occurred_at AT TIME ZONE '__TZ__')::date),
       coalesce((e.data->>'due_on')::date, (e.data->>'issued_on')::date,
                (e.occurred_at AT TIME ZONE '__TZ__')::date)
FROM public.events e
WHERE e.event_type = 'invoice.issued' AND __RANGE__
ORDER BY e.tx_id, e.position
ON CONFLICT (invoice_id) DO NOTHING
RETURNING customer_id
"""

PAYMENT_RECEIVED = """
WITH new AS (
    INSERT INTO payments
    SELECT e.data->>'payment_id', e.data->>'customer_id', coalesce((e.data->>'amount_fen')::bigint, 0),
           coalesce((e.data->>'received_on')::date, (e.occurred_at AT TIME ZONE '__TZ__')::date)
    FROM public.events e
    WHERE e.event_type = 'payment.received' AND __RANGE__
    ORDER BY e.tx_id, e.position
    ON CONFLICT (payment_id) DO NOTHING
    RETURNING payment_id, customer_id, received_on
), allocated AS (
    INSERT INTO allocations
    SELECT n.payment_id, a.n, a.v->>'invoice_id', coalesce((a.v->>'amount_fen')::bigint, 0),
           n.received_on
    FROM public.events e
    JOIN new n ON n.payment_id = e.data->>'payment_id'
    CROSS JOIN LATERAL jsonb_array_elements(coalesce(e.data->'allocations', '[]'::jsonb))
        WITH ORDINALITY AS a(v, n)
    WHERE e.event_type = 'payment.received' AND __RANGE__
    ON CONFLICT (payment_id, line_no) DO NOTHING
)
SELECT customer_id, received_on FROM new
"""


RETURN_REQUESTED = """
INSERT INTO return_orders
SELECT e.data->>'return_id', e.data->>'order_id'
FROM public.events e
WHERE e.event_type = 'return.requested' AND __RANGE__ AND e.data->>'order_id' IS NOT NULL
ON CONFLICT (return_id) DO NOTHING
"""

# Credit notes of one invoice in one stretch see each other: the k-th is credited
# min(open, its amount and the ones before) − min(open, the ones before), which is what
# crediting them one by one, each capped at what is left, gives.
RETURN_RESOLVED = """
WITH notes AS (
    SELECT e.data->>'return_id' AS return_id, i.invoice_id, i.customer_id,
           coalesce((e.data->>'amount_fen')::bigint, 0) AS amount_fen,
           (e.occurred_at AT TIME ZONE '__TZ__')::date AS credited_on,
           i.amount_fen - coalesce((SELECT sum(a.amount_fen) FROM allocations a
                                    WHERE a.invoice_id = i.invoice_id), 0)
                        - coalesce((SELECT sum(c.credited_fen) FROM credit_notes c
                                    WHERE c.invoice_id = i.invoice_id), 0) AS open_fen,
           e.tx_id, e.position
    FROM public.events e
    LEFT JOIN return_orders r ON r.return_id = e.data->>'return_id'
    LEFT JOIN LATERAL (SELECT * FROM invoices i WHERE i.order_id = r.order_id
                       ORDER BY i.issued_on, i.invoice_id LIMIT 1) i ON true
    WHERE e.event_type = 'return.resolved' AND __RANGE__ AND e.data->>'resolution' = 'credit_note'
      AND NOT EXISTS (SELECT 1 FROM credit_notes c WHERE c.return_id = e.data->>'return_id')
), running AS (
    SELECT n.*, greatest(n.open_fen, 0) AS room,
           sum(n.amount_fen) OVER (PARTITION BY n.invoice_id ORDER BY n.tx_id, n.position) AS upto
    FROM notes n
)
INSERT INTO credit_notes
SELECT return_id, invoice_id, customer_id, amount_fen,
       CASE WHEN invoice_id IS NULL THEN 0
            ELSE least(room, upto) - least(room, upto - amount_fen) END,
       credited_on
FROM running
ON CONFLICT (return_id) DO NOTHING
RETURNING customer_id
"""


def _customer_keys(row: asyncpg.Record) -> list[Change]:
    return list(
        keys(
            {"report": "receivables", "customer_id": row["customer_id"]},
            {"report": "credit", "customer_id": row["customer_id"]},
        )
    )


def _payment_keys(row: asyncpg.Record) -> list[Change]:
    return [
        *_customer_keys(row),
        *keys({"report": "collections", "period": row["received_on"], "customer_id": row["customer_id"]}),
    ]


def _credit_keys(row: asyncpg.Record) -> list[Change]:
    return _customer_keys(row) if row["customer_id"] else []


class ReceivablesProjection(SqlProjection):
    name = "receivables"
    code_version = 2
    rebuild_weight = 1.5  # its share of a rebuild of all reports
    schema_sql = SCHEMA
    event_types = frozenset({"invoice.issued", "payment.received", "return.requested", "return.resolved"})
    # In this order: a credit note reads the invoices, payments and returns before it.
    statements = (
        Statement(frozenset({"invoice.issued"}), INVOICE_ISSUED, _customer_keys),
        Statement(frozenset({"return.requested"}), RETURN_REQUESTED),
        Statement(frozenset({"payment.received"}), PAYMENT_RECEIVED, _payment_keys),
        Statement(frozenset({"return.resolved"}), RETURN_RESOLVED, _credit_keys),
    )
