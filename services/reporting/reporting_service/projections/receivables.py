"""Invoices and payments, from the orders service's events. Ageing is computed as of any date
from these (an invoice's open amount on a day is its amount less what was paid by then)."""

from __future__ import annotations

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


def _customer_keys(row) -> list[Change]:
    return list(
        keys(
            {"report": "receivables", "customer_id": row["customer_id"]},
            {"report": "credit", "customer_id": row["customer_id"]},
        )
    )


def _payment_keys(row) -> list[Change]:
    return [
        *_customer_keys(row),
        *keys({"report": "collections", "period": row["received_on"], "customer_id": row["customer_id"]}),
    ]


class ReceivablesProjection(SqlProjection):
    name = "receivables"
    code_version = 1
    rebuild_weight = 1.5  # share of a one-pass rebuild's work (rebuild.py)
    schema_sql = SCHEMA
    event_types = frozenset({"invoice.issued", "payment.received"})
    statements = (
        Statement(frozenset({"invoice.issued"}), INVOICE_ISSUED, _customer_keys),
        Statement(frozenset({"payment.received"}), PAYMENT_RECEIVED, _payment_keys),
    )
