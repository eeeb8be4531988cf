"""The customer directory: one row per card, current values, for cards, lists, composition and
the handlers' look-ups (a rep's customers). Inline, so a command's result is readable at once.

Personal data stays sealed here too (`personal`: the sealed parts in order); the card query
opens them with the customer's keys. An erasure empties the list, so the read side holds no
personal data even in sealed form, and a rebuild from the log ends the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from customer_service.domain import card
from salesplatform.projections import Change, Projection, StatementRuns
from salesplatform.published import CUSTOMER_CARD_EVENTS, CUSTOMER_CREDIT_EVENTS, CUSTOMER_POSITION_EVENTS
from salesplatform.store import RecordedEvent


class CustomerDirectory(Projection):
    name = "customer_directory"
    inline = True
    code_version = 2
    event_types = (
        CUSTOMER_CARD_EVENTS
        | CUSTOMER_CREDIT_EVENTS
        | CUSTOMER_POSITION_EVENTS
        | {"customer.data_verified", "customer.contact_logged", "customer.duplicate_absorbed"}
    )
    schema_sql = """
        CREATE TABLE customers (
            customer_id        text PRIMARY KEY,
            customer_code      text,
            name               text NOT NULL,
            address            text NOT NULL,
            phone              text NOT NULL,
            status             text NOT NULL,
            nature             text NOT NULL,
            ownership          text,
            channel            text NOT NULL,
            location_type      text NOT NULL,
            grade              text,
            grade_basis        text,
            grade_figures      jsonb,
            district_id        text NOT NULL,
            area_id            text NOT NULL,
            division_id        text,
            rep_id             text,
            released_from      text,
            source             text NOT NULL,
            verified           boolean NOT NULL,
            credit_rating      text,
            credit_limit_fen   bigint,
            payment_terms_days integer,
            merged_into        text,
            card               jsonb NOT NULL,           -- public groups: base, characteristics, …
            position           jsonb,                    -- the outlet's {latitude, longitude}, if public
            personal           jsonb NOT NULL DEFAULT '[]',  -- sealed personal parts, oldest first
            personal_erased    boolean NOT NULL DEFAULT false,
            rejection_reason   text,
            last_contact_at    timestamptz,
            registered_at      timestamptz NOT NULL,
            registered_by      text NOT NULL,
            approved_at        timestamptz,
            approved_by        text,
            updated_at         timestamptz NOT NULL,
            version            integer NOT NULL
        );
        CREATE INDEX customers_by_code ON customers (customer_code);
        CREATE INDEX customers_by_rep ON customers (rep_id);
        CREATE INDEX customers_by_district ON customers (district_id);
        CREATE INDEX customers_by_area ON customers (area_id);
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change]:
        return await self.apply_batch(conn, [event])

    async def apply_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> list[Change]:
        """Events in order; a run of events that set the same columns (contacts logged by a
        batch of commands, say) is one round trip."""
        changes: list[Change] = []
        runs = StatementRuns(conn)
        for event in events:
            if not self.handles(event):
                continue
            d = event.data
            cid = d["customer_id"]
            changes.append({"customer_id": cid})
            if event.event_type == "customer.registered":
                await runs.flush()
                await self._register(conn, event)
                continue
            if event.event_type == "customer.profile_updated":
                await runs.flush()
                await self._update_card(conn, cid, d)
            if event.event_type == "customer.position_set" and d.get("personal"):
                await runs.flush()
                await conn.execute(
                    "UPDATE customers SET personal = personal || jsonb_build_array($2::text), personal_erased = false"
                    " WHERE customer_id = $1",
                    cid,
                    d["personal"],
                )
            sets, args = self._changes(event)
            assignments = ", ".join(f"{col} = ${i + 4}" for i, col in enumerate(sets))
            await runs.execute(
                f"UPDATE customers SET updated_at = $2, version = $3{', ' if sets else ''}{assignments}"
                " WHERE customer_id = $1",
                cid,
                event.envelope.occurred_at,
                event.envelope.stream_version,
                *args,
            )
        await runs.flush()
        return changes

    @staticmethod
    def _changes(event: RecordedEvent) -> tuple[list[str], list[Any]]:
        """Columns set by an event (other than registration and card fields)."""
        d = event.data
        at = event.envelope.occurred_at
        match event.event_type:
            case "customer.data_verified":
                return ["verified"], [True]
            case "customer.approved":
                return ["status", "customer_code", "approved_at", "approved_by"], [
                    d["status"],
                    d["customer_code"],
                    at,
                    d["approved_by"],
                ]
            case "customer.rejected":
                return ["status", "rejection_reason"], ["rejected", d["reason"]]
            case "customer.classified":
                return ["nature", "ownership", "channel", "location_type", "grade", "grade_basis", "grade_figures"], [
                    d["nature"],
                    d.get("ownership"),
                    d["channel"],
                    d["location_type"],
                    d.get("grade"),
                    d.get("basis", "manual"),
                    d.get("figures"),
                ]
            case "customer.credit_limit_set":
                return ["credit_rating", "credit_limit_fen", "payment_terms_days"], [
                    d["credit_rating"],
                    d["credit_limit_fen"],
                    d["payment_terms_days"],
                ]
            case "customer.assigned":
                return ["rep_id", "district_id", "area_id", "division_id", "released_from"], [
                    d["rep_id"],
                    d["district_id"],
                    d["area_id"],
                    d.get("division_id"),
                    None,
                ]
            case "customer.status_changed":
                return ["status"], [d["status"]]
            case "customer.released":
                return ["rep_id", "released_from"], [None, d["rep_id"]]
            case "customer.claimed":
                return ["rep_id", "released_from"], [d["rep_id"], None]
            case "customer.contact_logged":
                return ["last_contact_at"], [event.envelope.occurred_at]
            case "customer.position_set":
                # A sealed position (an individual's home) is kept with the other sealed parts.
                return ([], []) if d.get("personal") else (["position"], [d.get("position")])
            case "customer.merged":
                return ["status", "merged_into"], ["merged", d["survivor_id"]]
            case "customer.personal_data_erased":
                return ["personal", "personal_erased"], [[], True]
        return [], []

    @staticmethod
    async def _register(conn: asyncpg.Connection, event: RecordedEvent) -> None:
        d = event.data
        env = event.envelope
        groups = {g: d[g] for g in card.GROUPS}
        await conn.execute(
            """INSERT INTO customers (customer_id, name, address, phone, status, nature, ownership, channel,
                   location_type, district_id, area_id, division_id, rep_id, source, verified, card, personal,
                   registered_at, registered_by, updated_at, version, position)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                   $18, $20, $21)""",
            d["customer_id"],
            d["name"],
            d["address"],
            d["phone"],
            d["status"],
            d["nature"],
            d.get("ownership"),
            d["channel"],
            d["location_type"],
            d["district_id"],
            d["area_id"],
            d["division_id"],
            d["rep_id"],
            d["source"],
            d["verified"],
            groups,
            [d["personal"]] if d.get("personal") else [],
            env.occurred_at,
            env.actor.id,
            env.stream_version,
            d.get("position"),
        )

    @staticmethod
    async def _update_card(conn: asyncpg.Connection, customer_id: str, d: dict[str, Any]) -> None:
        row = await conn.fetchrow("SELECT card, personal FROM customers WHERE customer_id = $1", customer_id)
        doc = row["card"]
        columns: dict[str, Any] = {}
        for path, value in d["changes"].items():
            if path in card.IDENTITY_PATHS:
                columns[path] = value
            else:
                card.set_path(doc, path, value)
        personal = list(row["personal"])
        erased_flag: list[str] = []
        if d.get("personal"):
            personal.append(d["personal"])
            erased_flag = ["personal_erased = false"]
        sets = ["card = $2", "personal = $3", *erased_flag, *(f"{c} = ${i + 4}" for i, c in enumerate(columns))]
        await conn.execute(
            f"UPDATE customers SET {', '.join(sets)} WHERE customer_id = $1",
            customer_id,
            doc,
            personal,
            *columns.values(),
        )
