"""Sales control's read models.

- `sales_offices` (catch-up, from the customer service's events): the projects' sales offices
  (district, area) and each lead's rep, so a deposit credits the rep who follows the customer.
- `sales_control` (inline, this service's events): every unit with its status and deal, what
  changed when (the daily sales-control check), the receipts, the price lists, who takes
  deposits, and the checks recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from salesplatform.projections import Change, Projection
from salesplatform.published import SALES_OFFICE_EVENTS, UNIT_EVENTS, UNIT_STATUS_AFTER
from salesplatform.replicas import UNIT_DEAL, opened_sales_office, sales_office_table
from salesplatform.store import RecordedEvent


def _time(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class SalesOffices(Projection):
    name = "sales_offices"
    event_types = SALES_OFFICE_EVENTS | {
        "lead.registered",
        "lead.received",
        "lead.lapsed",
        "lead.released",
        "lead.dispute_decided",
    }
    schema_sql = (
        sales_office_table("offices", "division_id  text")
        + """
        CREATE TABLE leads (
            lead_id     text PRIMARY KEY,
            project_id  text NOT NULL,
            rep_id      text,
            stage       text NOT NULL
        );
    """
    )

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d = event.data
        match event.event_type:
            case "sales_office.opened":
                await conn.execute(
                    "INSERT INTO offices VALUES ($1, $2, $3, $4, $5)"
                    " ON CONFLICT (project_id) DO UPDATE SET name = excluded.name",
                    *opened_sales_office(d).values(),
                    d.get("division_id"),
                )
            case "lead.registered":
                await conn.execute(
                    "INSERT INTO leads VALUES ($1, $2, $3, $4) ON CONFLICT (lead_id) DO NOTHING",
                    d["lead_id"],
                    d["project_id"],
                    d["rep_id"],
                    "walk_in" if d["source"] == "walk_in" else "phone",
                )
            case "lead.received":
                await conn.execute(
                    "UPDATE leads SET rep_id = $2, stage = CASE WHEN $3 = 'walk_in' THEN 'walk_in'"
                    " WHEN $4::boolean THEN 'phone' ELSE stage END WHERE lead_id = $1",
                    d["lead_id"],
                    d["following_rep_id"],
                    d["kind"],
                    d["again"],
                )
            case "lead.lapsed" | "lead.released":
                stage = event.event_type.split(".")[1]
                await conn.execute("UPDATE leads SET rep_id = NULL, stage = $2 WHERE lead_id = $1", d["lead_id"], stage)
            case "lead.dispute_decided":
                await conn.execute(
                    "UPDATE leads SET rep_id = $2, stage = CASE WHEN stage IN ('lapsed', 'released')"
                    " THEN 'walk_in' ELSE stage END WHERE lead_id = $1",
                    d["lead_id"],
                    d["rep_id"],
                )
        return None


# Each event's status afterwards (None: the status does not change).
_STATUS_AFTER: dict[str, str | None] = {
    "unit.priced": None,  # unreleased → available, handled in SQL
    **UNIT_STATUS_AFTER,
}


class SalesControl(Projection):
    name = "sales_control"
    inline = True
    event_types = UNIT_EVENTS | {
        "unit.subscription_filled",
        "unit.subscription_returned",
        "project.deposit_taker_named",
        "project.deposit_taker_revoked",
        "sales_control.checked",
    }
    schema_sql = f"""
        CREATE TABLE units (
            unit_id            text PRIMARY KEY,
            project_id         text NOT NULL,
            building           text NOT NULL,
            unit_no            text NOT NULL,
            floor              integer NOT NULL,
            layout_name        text NOT NULL,
            rooms              integer NOT NULL,
            halls              integer NOT NULL,
            bathrooms          integer NOT NULL,
            area_sqm           numeric(10, 2) NOT NULL,
            orientation        text NOT NULL,
            position           text,
            status             text NOT NULL,
            release            text,
            unit_price_fen     bigint,
            {UNIT_DEAL},
            subscription_no    text,
            subscription_state text,            -- filled | signed (null: none)
            subscription_price_fen bigint,
            payment_plan       text,
            contract_no        text,
            status_since       timestamptz NOT NULL,
            updated_at         timestamptz NOT NULL
        );
        CREATE INDEX units_by_project ON units (project_id, status);
        CREATE INDEX units_due ON units (deposit_due_by) WHERE deposit_due_by IS NOT NULL;
        -- What changed when: one row per event, for the daily sales-control check.
        CREATE TABLE unit_changes (
            position       bigint PRIMARY KEY,
            unit_id        text NOT NULL,
            project_id     text NOT NULL,
            business_date  date NOT NULL,
            at             timestamptz NOT NULL,
            event_type     text NOT NULL,
            status_before  text,
            status_after   text,
            lead_id        text,
            rep_id         text,
            amount_fen     bigint,
            by             text NOT NULL,
            detail         jsonb NOT NULL
        );
        CREATE INDEX unit_changes_by_day ON unit_changes (project_id, business_date);
        CREATE TABLE receipts (
            receipt_no   text PRIMARY KEY,
            unit_id      text NOT NULL,
            project_id   text NOT NULL,
            receipt      jsonb NOT NULL
        );
        CREATE INDEX receipts_by_unit ON receipts (unit_id);
        CREATE TABLE price_lists (
            project_id       text NOT NULL,
            release          text NOT NULL,
            unit_id          text NOT NULL,
            unit_price_fen   bigint NOT NULL,
            total_price_fen  bigint NOT NULL,
            set_at           timestamptz NOT NULL,
            set_by           text NOT NULL,
            reason           text,
            PRIMARY KEY (project_id, release, unit_id)
        );
        CREATE TABLE deposit_takers (
            project_id  text NOT NULL,
            staff_id    text NOT NULL,
            PRIMARY KEY (project_id, staff_id)
        );
        CREATE TABLE checks (
            position       bigint PRIMARY KEY,
            project_id     text NOT NULL,
            business_date  date NOT NULL,
            checked_by     text NOT NULL,
            role           text NOT NULL,
            at             timestamptz NOT NULL,
            units          integer NOT NULL,
            discrepancies  jsonb NOT NULL
        );
    """

    def __init__(self, timezone: str = "Asia/Shanghai") -> None:
        self.timezone = timezone

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d: dict[str, Any] = event.data
        t = event.event_type
        at = event.envelope.occurred_at
        by = event.envelope.actor.id
        if t.startswith("project."):
            if t == "project.deposit_taker_named":
                await conn.execute(
                    "INSERT INTO deposit_takers VALUES ($1, $2) ON CONFLICT DO NOTHING", d["project_id"], d["staff_id"]
                )
            else:
                await conn.execute(
                    "DELETE FROM deposit_takers WHERE project_id = $1 AND staff_id = $2", d["project_id"], d["staff_id"]
                )
            return None
        if t == "sales_control.checked":
            await conn.execute(
                "INSERT INTO checks VALUES ($1, $2, $3::text::date, $4, $5, $6, $7, $8)",
                event.position,
                d["project_id"],
                d["business_date"],
                d["checked_by"],
                d["role"],
                at,
                d["units"],
                d.get("discrepancies", []),
            )
            return None
        unit_id = d["unit_id"]
        if t == "unit.defined":
            await conn.execute(
                "INSERT INTO units (unit_id, project_id, building, unit_no, floor, layout_name, rooms, halls,"
                " bathrooms, area_sqm, orientation, position, status, status_since, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::numeric, $11, $12, 'unreleased', $13, $13)"
                " ON CONFLICT (unit_id) DO NOTHING",
                unit_id,
                d["project_id"],
                d["building"],
                d["unit_no"],
                d["floor"],
                d["layout_name"],
                d["rooms"],
                d["halls"],
                d["bathrooms"],
                str(d["area_sqm"]),
                d["orientation"],
                d.get("position"),
                at,
            )
            return [{"unit_id": unit_id}]
        before = await conn.fetchval("SELECT status FROM units WHERE unit_id = $1", unit_id)
        assignments, args = _unit_update(t, d)
        after = _STATUS_AFTER.get(t)
        if t == "unit.priced":
            after = "available" if before == "unreleased" else None
            await conn.execute(
                "INSERT INTO price_lists VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT (project_id, release, unit_id) DO UPDATE SET unit_price_fen = excluded.unit_price_fen,"
                " total_price_fen = excluded.total_price_fen, set_at = excluded.set_at, set_by = excluded.set_by,"
                " reason = excluded.reason",
                d["project_id"],
                d["release"],
                unit_id,
                d["unit_price_fen"],
                d["total_price_fen"],
                at,
                by,
                d.get("reason"),
            )
        if after is not None:
            assignments += f", status = '{after}', status_since = ${len(args) + 2}"
            args.append(at)
        await conn.execute(
            f"UPDATE units SET {assignments}, updated_at = ${len(args) + 2} WHERE unit_id = $1", unit_id, *args, at
        )
        if t == "unit.deposit_received":
            await conn.execute(
                "INSERT INTO receipts VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                d["receipt_no"],
                unit_id,
                d["project_id"],
                {**d, "at": at.isoformat(), "taken_by": d["taken_by"]},
            )
        await conn.execute(
            "INSERT INTO unit_changes VALUES ($1, $2, $3, (($4::timestamptz) AT TIME ZONE $5)::date, $4, $6, $7, $8,"
            " $9, $10, $11, $12, $13) ON CONFLICT (position) DO NOTHING",
            event.position,
            unit_id,
            d["project_id"],
            at,
            self.timezone,
            t,
            before,
            after or before,
            d.get("lead_id"),
            d.get("credited_rep_id"),
            d.get("price_fen", d.get("amount_fen", d.get("deposit_fen"))),
            by,
            {k: v for k, v in d.items() if k not in ("unit_id", "project_id")},
        )
        return [{"unit_id": unit_id, "project_id": d["project_id"]}]


def _unit_update(event_type: str, d: dict[str, Any]) -> tuple[str, list[Any]]:
    """The SET list for a unit event ($1 is the unit id) and its arguments."""
    match event_type:
        case "unit.priced":
            return "release = $2, unit_price_fen = $3, total_price_fen = $4", [
                d["release"],
                d["unit_price_fen"],
                d["total_price_fen"],
            ]
        case "unit.reserved":
            return (
                "lead_id = $2, credited_rep_id = $3, deal_price_fen = $4, deposit_agreed_fen = 0,"
                " deposit_total_fen = 0, deposit_due_by = NULL, deposit_overdue = false, subscription_no = NULL,"
                " subscription_state = NULL, subscription_price_fen = NULL, payment_plan = NULL, contract_no = NULL",
                [d["lead_id"], d["credited_rep_id"], d["price_fen"]],
            )
        case "unit.deposit_received":
            return "deposit_agreed_fen = $2, deposit_total_fen = $3, deposit_due_by = $4", [
                d["agreed_fen"],
                d["total_fen"],
                _time(d.get("due_by")),
            ]
        case "unit.deposit_completed":
            return "deposit_due_by = NULL", []
        case "unit.deposit_overdue":
            return "deposit_overdue = true", []
        case "unit.subscription_filled":
            return (
                "subscription_no = $2, subscription_state = 'filled', subscription_price_fen = $3, payment_plan = $4",
                [
                    d["subscription_no"],
                    d["price_fen"],
                    d["payment_plan"],
                ],
            )
        case "unit.subscription_returned":
            return "subscription_no = NULL, subscription_state = NULL, subscription_price_fen = NULL", []
        case "unit.subscribed":
            return "subscription_state = 'signed', credited_rep_id = $2", [d["credited_rep_id"]]
        case "unit.contracted":
            return "contract_no = $2, payment_plan = $3, credited_rep_id = $4", [
                d["contract_no"],
                d["payment_plan"],
                d["credited_rep_id"],
            ]
        case "unit.reservation_released":
            return (
                "lead_id = NULL, credited_rep_id = NULL, deal_price_fen = NULL, deposit_due_by = NULL,"
                " deposit_overdue = false, subscription_no = NULL, subscription_state = NULL,"
                " subscription_price_fen = NULL, payment_plan = NULL",
                [],
            )
        case _:  # unit.mortgage_started, unit.handed_over: the status only
            return "unit_id = unit_id", []
