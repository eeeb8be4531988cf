"""Receivables: invoices with what is paid and credited, payments with their allocations,
collection notes. Inline: a payment is checked against the open amounts it reads here."""

from __future__ import annotations

import asyncpg

from orders_service.projections.base import Run, RunProjection, actors, column, occurred


class Receivables(RunProjection):
    name = "receivables"
    inline = True
    code_version = 2
    event_types = frozenset(
        {
            "invoice.issued",
            "payment.received",
            "collection.note_recorded",
            "return.requested",
            "return.resolved",
        }
    )
    schema_sql = """
    CREATE TABLE invoices (
        invoice_id      text PRIMARY KEY,
        order_id        text NOT NULL,
        customer_id     text NOT NULL,
        amount_fen      bigint NOT NULL,
        paid_fen        bigint NOT NULL DEFAULT 0,
        credited_fen    bigint NOT NULL DEFAULT 0,
        open_fen        bigint GENERATED ALWAYS AS (amount_fen - paid_fen - credited_fen) STORED,
        issued_on       date NOT NULL,
        due_on          date NOT NULL
    );
    CREATE INDEX invoices_by_customer ON invoices (customer_id, issued_on);
    CREATE INDEX invoices_by_order ON invoices (order_id);
    -- A customer's open invoices (credit check, collection): only the unpaid ones are read.
    CREATE INDEX invoices_open_by_customer ON invoices (customer_id) INCLUDE (open_fen, due_on)
        WHERE open_fen > 0;
    CREATE TABLE payments (
        payment_id      text PRIMARY KEY,
        customer_id     text NOT NULL,
        amount_fen      bigint NOT NULL,
        received_on     date NOT NULL,
        recorded_by     text NOT NULL
    );
    CREATE INDEX payments_by_customer ON payments (customer_id, received_on);
    CREATE TABLE allocations (
        payment_id      text NOT NULL,
        invoice_id      text NOT NULL,
        amount_fen      bigint NOT NULL,
        PRIMARY KEY (payment_id, invoice_id)
    );
    CREATE INDEX allocations_by_invoice ON allocations (invoice_id);
    -- A credit note resolving a return lowers what is open on the order's invoice.
    CREATE TABLE return_orders (return_id text PRIMARY KEY, order_id text NOT NULL);
    CREATE TABLE credit_notes (
        return_id       text PRIMARY KEY,
        invoice_id      text,
        amount_fen      bigint NOT NULL,
        credited_fen    bigint NOT NULL
    );
    CREATE TABLE collection_notes (
        note_id             text PRIMARY KEY,
        customer_id         text NOT NULL,
        invoice_id          text,
        note                text NOT NULL,
        promised_on         date,
        next_follow_up_on   date,
        noted_by            text NOT NULL,
        noted_at            timestamptz NOT NULL
    );
    CREATE INDEX collection_notes_by_customer ON collection_notes (customer_id, noted_at);
    """

    async def on_invoice_issued(self, conn: asyncpg.Connection, run: Run) -> None:
        await conn.execute(
            """
            INSERT INTO invoices (invoice_id, order_id, customer_id, amount_fen, issued_on, due_on)
            SELECT i, o, c, a, io::date, d::date
            FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[])
                 AS t(i, o, c, a, io, d)
            """,
            column(run, "invoice_id"),
            column(run, "order_id"),
            column(run, "customer_id"),
            column(run, "amount_fen"),
            column(run, "issued_on"),
            column(run, "due_on"),
        )

    async def on_payment_received(self, conn: asyncpg.Connection, run: Run) -> None:
        await conn.execute(
            """
            INSERT INTO payments (payment_id, customer_id, amount_fen, received_on, recorded_by)
            SELECT p, c, a, r::date, who
            FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[]) AS t(p, c, a, r, who)
            """,
            column(run, "payment_id"),
            column(run, "customer_id"),
            column(run, "amount_fen"),
            column(run, "received_on"),
            actors(run),
        )
        allocations = [
            (e.data["payment_id"], a["invoice_id"], a["amount_fen"]) for e in run for a in e.data["allocations"]
        ]
        if not allocations:
            return
        await conn.execute(
            """
            WITH a AS (
                INSERT INTO allocations (payment_id, invoice_id, amount_fen)
                SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
                RETURNING invoice_id, amount_fen
            )
            UPDATE invoices i SET paid_fen = i.paid_fen + s.total
            FROM (SELECT invoice_id, sum(amount_fen) AS total FROM a GROUP BY invoice_id) s
            WHERE i.invoice_id = s.invoice_id
            """,
            [p for p, _, _ in allocations],
            [i for _, i, _ in allocations],
            [x for _, _, x in allocations],
        )

    async def on_collection_note_recorded(self, conn: asyncpg.Connection, run: Run) -> None:
        await conn.execute(
            """
            INSERT INTO collection_notes (note_id, customer_id, invoice_id, note, promised_on,
                                          next_follow_up_on, noted_by, noted_at)
            SELECT n, c, i, t, p::date, f::date, who, at
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                        $7::text[], $8::timestamptz[]) AS x(n, c, i, t, p, f, who, at)
            """,
            column(run, "note_id"),
            column(run, "customer_id"),
            column(run, "invoice_id"),
            column(run, "note"),
            column(run, "promised_on"),
            column(run, "next_follow_up_on"),
            actors(run),
            occurred(run),
        )

    async def on_return_requested(self, conn: asyncpg.Connection, run: Run) -> None:
        await conn.execute(
            "INSERT INTO return_orders SELECT * FROM unnest($1::text[], $2::text[])",
            column(run, "return_id"),
            column(run, "order_id"),
        )

    async def on_return_resolved(self, conn: asyncpg.Connection, run: Run) -> None:
        # One at a time: two credit notes on one invoice must see each other's effect.
        for event in run:
            if event.data["resolution"] != "credit_note":
                continue
            row = await conn.fetchrow(
                "SELECT i.invoice_id, i.open_fen FROM return_orders r JOIN invoices i USING (order_id)"
                " WHERE r.return_id = $1",
                event.data["return_id"],
            )
            credited = min(event.data["amount_fen"], row["open_fen"]) if row else 0
            await conn.execute(
                "INSERT INTO credit_notes VALUES ($1, $2, $3, $4)",
                event.data["return_id"],
                row["invoice_id"] if row else None,
                event.data["amount_fen"],
                credited,
            )
            if row and credited:
                await conn.execute(
                    "UPDATE invoices SET credited_fen = credited_fen + $2 WHERE invoice_id = $1",
                    row["invoice_id"],
                    credited,
                )
