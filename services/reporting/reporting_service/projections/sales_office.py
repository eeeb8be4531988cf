"""The sales offices (案场) for the reports: the register lines, who signed in where, every unit
and its status, and each step of a deal (reservation, signed subscription, contract, handover,
release) with the rep credited — from the customer service's and the orders service's events.

The two services' events reach this log through two consumers, so a deposit may be copied
before the register line of the customer who paid it. Nothing here joins one to the other on
arrival: the reports join lines and deals when they are read (queries/office.py), so the order
of arrival never changes a figure.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from reporting_service.projections.base import Stretch, StretchProjection, keys
from salesplatform.projections import Change
from salesplatform.published import SALES_OFFICE_EVENTS, UNIT_EVENTS, UNIT_STATUS_AFTER
from salesplatform.replicas import (
    UNIT_DEAL,
    opened_sales_office,
    recorded_register_line,
    register_lines_table,
    sales_office_table,
)

SCHEMA = (
    sales_office_table("office_projects")
    + """

CREATE TABLE office_sign_ins (
    project_id     text NOT NULL,
    business_date  date NOT NULL,
    rep_id         text NOT NULL,
    PRIMARY KEY (project_id, business_date, rep_id)
);

-- One row per register line (lead_register.entry_recorded).
"""
    + register_lines_table("office_lines", "register_kind")
    + f"""CREATE INDEX office_lines_by_lead ON office_lines (lead_id, at);
CREATE INDEX office_lines_by_day ON office_lines (business_date);

CREATE TABLE office_units (
    unit_id             text PRIMARY KEY,
    project_id          text NOT NULL,
    building            text NOT NULL,
    unit_no             text NOT NULL,
    layout_name         text NOT NULL,
    rooms               integer NOT NULL,
    halls               integer NOT NULL,
    bathrooms           integer NOT NULL,
    area_sqm            numeric(10, 2) NOT NULL,
    status              text NOT NULL,
    {UNIT_DEAL}
);
CREATE INDEX office_units_by_project ON office_units (project_id, status);

-- Each step of a deal: reserved (the first deposit), subscribed (signed), contracted,
-- handed_over, released (with the status it left); amount = the deal's price.
CREATE TABLE office_deals (
    position        bigint PRIMARY KEY,
    project_id      text NOT NULL,
    unit_id         text NOT NULL,
    lead_id         text NOT NULL,
    rep_id          text,
    business_date   date NOT NULL,
    kind            text NOT NULL,
    amount_fen      bigint NOT NULL,
    released_from   text
);
CREATE INDEX office_deals_by_day ON office_deals (business_date, kind);
CREATE INDEX office_deals_by_lead ON office_deals (lead_id, business_date);
"""
)

CUSTOMER_TYPES = SALES_OFFICE_EVENTS | {"reception.signed_in", "lead_register.entry_recorded"}
UNIT_TYPES = UNIT_EVENTS
# Unit events after which the unit has this status.
_STATUS = UNIT_STATUS_AFTER
# Unit events that are a step of a deal (office_deals.kind).
_DEAL_STEP = {
    "unit.reserved": "reserved",
    "unit.subscribed": "subscribed",
    "unit.contracted": "contracted",
    "unit.handed_over": "handed_over",
    "unit.reservation_released": "released",
}


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


class SalesOfficeProjection(StretchProjection):
    name = "sales_office"
    code_version = 1
    rebuild_weight = 0.2  # share of a one-pass rebuild's work (salesplatform.projections.rebuild)
    schema_sql = SCHEMA
    event_types = CUSTOMER_TYPES | UNIT_TYPES

    def __init__(self, timezone: str = "Asia/Shanghai") -> None:
        super().__init__(timezone)
        self._zone = ZoneInfo(self.timezone)

    async def apply_stretch(
        self, conn: asyncpg.Connection, stretch: Stretch, present: set[str] | None, *, changes: bool
    ) -> list[Change]:
        if present is not None and not (present & self.event_types):
            return []
        rows = await conn.fetch(
            "SELECT e.position, e.event_type, e.occurred_at, e.data FROM public.events e"
            f" WHERE e.event_type = ANY($1::text[]) AND {stretch.predicate('e')}"
            " ORDER BY e.tx_id, e.position",
            sorted(self.event_types),
        )
        out: list[Change] = []
        for row in rows:
            out.extend(await self._apply(conn, row["event_type"], row["data"], row["position"], row["occurred_at"]))
        return out if changes else []

    async def _apply(
        self, conn: asyncpg.Connection, t: str, d: dict[str, Any], position: int, at: datetime
    ) -> list[Change]:
        day = at.astimezone(self._zone).date()
        match t:
            case "sales_office.opened":
                await conn.execute(
                    "INSERT INTO office_projects VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT (project_id) DO UPDATE SET name = excluded.name",
                    *opened_sales_office(d).values(),
                )
                return []
            case "reception.signed_in":
                await conn.execute(
                    "INSERT INTO office_sign_ins VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    d["project_id"],
                    _date(d["business_date"]),
                    d["rep_id"],
                )
                return []
            case "lead_register.entry_recorded":
                line_day = _date(d["business_date"])
                await conn.execute(
                    "INSERT INTO office_lines VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                    *recorded_register_line(d).values(),
                )
                return list(keys({"report": "office_leads", "period": line_day, "rep_id": d["rep_id"]}))
            case "unit.defined":
                await conn.execute(
                    "INSERT INTO office_units (unit_id, project_id, building, unit_no, layout_name, rooms, halls,"
                    " bathrooms, area_sqm, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::numeric, 'unreleased')"
                    " ON CONFLICT (unit_id) DO NOTHING",
                    d["unit_id"],
                    d["project_id"],
                    d["building"],
                    d["unit_no"],
                    d["layout_name"],
                    d["rooms"],
                    d["halls"],
                    d["bathrooms"],
                    str(d["area_sqm"]),
                )
                return list(keys({"report": "unit_inventory", "project_id": d["project_id"]}))
        return await self._unit(conn, t, d, position, day)

    async def _unit(
        self, conn: asyncpg.Connection, t: str, d: dict[str, Any], position: int, day: date
    ) -> list[Change]:
        unit = await conn.fetchrow(
            "SELECT credited_rep_id, deal_price_fen, status FROM office_units WHERE unit_id = $1", d["unit_id"]
        )
        if unit is None:
            raise ValueError(f"{t} for a unit never defined: {d['unit_id']}")
        match t:
            case "unit.priced":
                await conn.execute(
                    "UPDATE office_units SET total_price_fen = $2,"
                    " status = CASE WHEN status = 'unreleased' THEN 'available' ELSE status END WHERE unit_id = $1",
                    d["unit_id"],
                    d["total_price_fen"],
                )
            case "unit.reserved":
                await conn.execute(
                    "UPDATE office_units SET lead_id = $2, credited_rep_id = $3, deal_price_fen = $4,"
                    " deposit_agreed_fen = 0, deposit_total_fen = 0, deposit_due_by = NULL, deposit_overdue = false"
                    " WHERE unit_id = $1",
                    d["unit_id"],
                    d["lead_id"],
                    d["credited_rep_id"],
                    d["price_fen"],
                )
            case "unit.deposit_received":
                await conn.execute(
                    "UPDATE office_units SET deposit_agreed_fen = $2, deposit_total_fen = $3, deposit_due_by = $4"
                    " WHERE unit_id = $1",
                    d["unit_id"],
                    d["agreed_fen"],
                    d["total_fen"],
                    _time(d.get("due_by")),
                )
            case "unit.deposit_completed":
                await conn.execute("UPDATE office_units SET deposit_due_by = NULL WHERE unit_id = $1", d["unit_id"])
            case "unit.deposit_overdue":
                await conn.execute("UPDATE office_units SET deposit_overdue = true WHERE unit_id = $1", d["unit_id"])
            case "unit.subscribed" | "unit.contracted":
                await conn.execute(
                    "UPDATE office_units SET credited_rep_id = $2, deal_price_fen = $3 WHERE unit_id = $1",
                    d["unit_id"],
                    d["credited_rep_id"],
                    d["price_fen"],
                )
            case "unit.reservation_released":
                await conn.execute(
                    "UPDATE office_units SET lead_id = NULL, credited_rep_id = NULL, deal_price_fen = NULL,"
                    " deposit_due_by = NULL, deposit_overdue = false WHERE unit_id = $1",
                    d["unit_id"],
                )
        status = _STATUS.get(t)
        if status is not None:
            await conn.execute("UPDATE office_units SET status = $2 WHERE unit_id = $1", d["unit_id"], status)
        step = _DEAL_STEP.get(t)
        if step is None:
            return list(keys({"report": "deposits_due", "project_id": d["project_id"]}))
        rep = d.get("credited_rep_id") or unit["credited_rep_id"]
        amount = d.get("price_fen") or unit["deal_price_fen"] or 0
        deal_day = _date(d["business_date"]) if "business_date" in d else day
        await conn.execute(
            "INSERT INTO office_deals VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            position,
            d["project_id"],
            d["unit_id"],
            d["lead_id"],
            rep,
            deal_day,
            step,
            amount,
            d.get("previous_status"),
        )
        return list(
            keys(
                {"report": "office_sales", "period": deal_day, "project_id": d["project_id"]},
                {"report": "unit_inventory", "project_id": d["project_id"]},
                {"report": "daily_close", "period": deal_day, "rep_id": rep},
            )
        )
