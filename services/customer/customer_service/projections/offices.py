"""The sales offices as their people see them: each day's sign-in sheet and rotation (the
board), the register lines, and the leads with their rep and 7-day clocks. Inline, so the
front desk sees who is next right after a reception.

Names and phones stay sealed here (`personal`: the sealed parts, oldest first); the queries
open them with the lead's keys for readers in line. An erasure empties them.

The rotation is kept as a number per rep (`rotation_key`): the stream version of the event that
put the rep at the end of the queue (signing in, or taking a turn). The queue is the reps signed
in, ordered by it: the same order `ReceptionDay` keeps.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from salesplatform.projections import Change, Projection
from salesplatform.published import SALES_OFFICE_EVENTS
from salesplatform.replicas import (
    opened_sales_office,
    recorded_register_line,
    register_lines_table,
    sales_office_table,
)
from salesplatform.store import RecordedEvent

_LEAD_PERSONAL = ("lead.registered", "lead.member_added", "lead.details_corrected")


class OfficeDirectory(Projection):
    name = "office_directory"
    inline = True
    event_types = SALES_OFFICE_EVENTS | frozenset(
        {
            "reception.signed_in",
            "reception.signed_out",
            "reception.customer_received",
            "reception.finished",
            "lead_register.entry_recorded",
            "lead_register.entry_corrected",
            "lead.registered",
            "lead.received",
            "lead.followed_up",
            "lead.lapsed",
            "lead.released",
            "lead.dispute_decided",
            "lead.member_added",
            "lead.details_corrected",
            "lead.personal_data_erased",
        }
    )
    schema_sql = (
        sales_office_table("offices", "division_id  text", "opened_at    timestamptz NOT NULL")
        + """
        CREATE TABLE sign_ins (
            project_id     text NOT NULL,
            business_date  date NOT NULL,
            rep_id         text NOT NULL,
            place          integer NOT NULL,
            signed_in_at   timestamptz NOT NULL,
            signed_out_at  timestamptz,
            present        boolean NOT NULL,
            rotation_key   integer NOT NULL,
            serving_lead   text,
            serving_since  timestamptz,
            turns          integer NOT NULL DEFAULT 0,
            own            integer NOT NULL DEFAULT 0,
            duties         integer NOT NULL DEFAULT 0,
            PRIMARY KEY (project_id, business_date, rep_id)
        );
    """
        + register_lines_table(
            "register_entries",
            "register",
            "remark          text",
            "source_channel  text",
            "personal        jsonb NOT NULL DEFAULT '[]'",
            "corrections     jsonb NOT NULL DEFAULT '[]'",
        )
        + """
        CREATE INDEX register_entries_by_day ON register_entries (project_id, business_date);
        CREATE INDEX register_entries_by_lead ON register_entries (lead_id);
        CREATE TABLE leads (
            lead_id            text PRIMARY KEY,
            project_id         text NOT NULL,
            district_id        text NOT NULL,
            area_id            text NOT NULL,
            source             text NOT NULL,
            stage              text NOT NULL,
            rep_id             text,
            referred_by        text,
            registered_at      timestamptz NOT NULL,
            phone_since        timestamptz NOT NULL,
            visited_at         timestamptz,
            last_follow_up_at  timestamptz,
            receptions         integer NOT NULL DEFAULT 0,
            follow_ups         integer NOT NULL DEFAULT 0,
            personal           jsonb NOT NULL DEFAULT '[]',
            members            jsonb NOT NULL DEFAULT '[]',
            erased             boolean NOT NULL DEFAULT false,
            history            jsonb NOT NULL DEFAULT '[]',
            updated_at         timestamptz NOT NULL
        );
        CREATE INDEX leads_by_project ON leads (project_id, stage);
        CREATE INDEX leads_by_rep ON leads (rep_id);
    """
    )

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change]:
        d: dict[str, Any] = event.data
        t = event.event_type
        at = event.envelope.occurred_at
        if t.startswith("lead."):
            await self._lead(conn, t, d, event)
            return [{"lead_id": d["lead_id"]}]
        match t:
            case "sales_office.opened":
                await conn.execute(
                    "INSERT INTO offices VALUES ($1, $2, $3, $4, $5, $6)"
                    " ON CONFLICT (project_id) DO UPDATE SET name = excluded.name",
                    *opened_sales_office(d).values(),
                    d.get("division_id"),
                    at,
                )
            case "reception.signed_in":
                await conn.execute(
                    "INSERT INTO sign_ins (project_id, business_date, rep_id, place, signed_in_at, present, rotation_key)"
                    " VALUES ($1, $2::text::date, $3, $4, $5, true, $6)"
                    " ON CONFLICT (project_id, business_date, rep_id) DO UPDATE SET"
                    " present = true, signed_out_at = NULL, signed_in_at = excluded.signed_in_at,"
                    " rotation_key = excluded.rotation_key",
                    d["project_id"],
                    d["business_date"],
                    d["rep_id"],
                    d["place"],
                    _time(d["at"]),
                    event.envelope.stream_version,
                )
            case "reception.signed_out":
                await conn.execute(
                    "UPDATE sign_ins SET present = false, signed_out_at = $4"
                    " WHERE project_id = $1 AND business_date = $2::text::date AND rep_id = $3",
                    d["project_id"],
                    d["business_date"],
                    d["rep_id"],
                    _time(d["at"]),
                )
            case "reception.customer_received":
                counter = {"turn": "turns", "own": "own", "duty": "duties"}[d["basis"]]
                await conn.execute(
                    f"UPDATE sign_ins SET {counter} = {counter} + 1,"
                    " rotation_key = CASE WHEN $4 = 'turn' THEN $5 ELSE rotation_key END,"
                    " serving_lead = CASE WHEN $6 = 'walk_in' THEN $7 ELSE serving_lead END,"
                    " serving_since = CASE WHEN $6 = 'walk_in' THEN $8 ELSE serving_since END"
                    " WHERE project_id = $1 AND business_date = $2::text::date AND rep_id = $3",
                    d["project_id"],
                    d["business_date"],
                    d["rep_id"],
                    d["basis"],
                    event.envelope.stream_version,
                    d["kind"],
                    d["lead_id"],
                    _time(d["at"]),
                )
            case "reception.finished":
                await conn.execute(
                    "UPDATE sign_ins SET serving_lead = NULL, serving_since = NULL"
                    " WHERE project_id = $1 AND business_date = $2::text::date AND rep_id = $3",
                    d["project_id"],
                    d["business_date"],
                    d["rep_id"],
                )
            case "lead_register.entry_recorded":
                await conn.execute(
                    "INSERT INTO register_entries (project_id, register, entry_no, business_date, at, lead_id,"
                    " rep_id, basis, new_lead, first_visit, remark, source_channel, personal)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    *recorded_register_line(d).values(),
                    d.get("remark"),
                    d.get("source_channel"),
                    [d["personal"]] if d.get("personal") else [],
                )
            case "lead_register.entry_corrected":
                correction = {
                    "reason": d["reason"],
                    "by": d["corrected_by"],
                    "at": at.isoformat(),
                    "fields": d.get("personal_fields", []) + (["source_channel"] if d.get("source_channel") else []),
                }
                await conn.execute(
                    "UPDATE register_entries SET corrections = corrections || $4::jsonb,"
                    " personal = personal || $5::jsonb, source_channel = coalesce($6, source_channel)"
                    " WHERE project_id = $1 AND register = $2 AND entry_no = $3",
                    d["project_id"],
                    d["register_kind"],
                    d["entry_no"],
                    [correction],
                    [d["personal"]] if d.get("personal") else [],
                    d.get("source_channel"),
                )
        return [{"project_id": d["project_id"]}]

    async def _lead(self, conn: asyncpg.Connection, t: str, d: dict[str, Any], event: RecordedEvent) -> None:
        at = event.envelope.occurred_at
        step = {"event": t, "at": at.isoformat(), "by": event.envelope.actor.id}
        for name in ("rep_id", "kind", "basis", "again", "reason", "channel", "relation", "previous_rep_id"):
            if name in d:
                step[name] = d[name]
        history = [step]
        lid = d["lead_id"]
        if t == "lead.registered":
            walk_in = d["source"] == "walk_in"
            await conn.execute(
                "INSERT INTO leads (lead_id, project_id, district_id, area_id, source, stage, rep_id, referred_by,"
                " registered_at, phone_since, visited_at, last_follow_up_at, receptions, personal, history, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $10, 1, $11, $12::jsonb, $13)",
                lid,
                d["project_id"],
                d["district_id"],
                d["area_id"],
                d["source"],
                "walk_in" if walk_in else "phone",
                d["rep_id"],
                d.get("referred_by"),
                _time(d["at"]),
                _time(d["at"]) if walk_in else None,
                [d["personal"]] if d.get("personal") else [],
                history,
                at,
            )
            return
        sets = {
            "lead.received": _RECEIVED,
            "lead.followed_up": "last_follow_up_at = $3::timestamptz, follow_ups = follow_ups + 1",
            "lead.lapsed": "stage = 'lapsed', rep_id = NULL",
            "lead.released": "stage = 'released', rep_id = NULL",
            "lead.dispute_decided": (
                "rep_id = $3, stage = CASE WHEN stage IN ('lapsed', 'released')"
                " THEN CASE WHEN visited_at IS NULL THEN 'phone' ELSE 'walk_in' END ELSE stage END,"
                " phone_since = $4::timestamptz, last_follow_up_at = $4::timestamptz"
            ),
            "lead.member_added": "members = members || $3::jsonb, erased = false",
            "lead.details_corrected": "personal = personal || $3::jsonb, erased = false",
            "lead.personal_data_erased": "personal = '[]', members = '[]', erased = true",
        }[t]
        args: list[Any] = []
        match t:
            case "lead.received":
                args = [d["following_rep_id"], _time(d["at"]), d["kind"], d["basis"], d["again"]]
            case "lead.followed_up":
                args = [_time(d["at"])]
            case "lead.dispute_decided":
                args = [d["rep_id"], _time(d["at"])]
            case "lead.member_added":
                args = [[{"relation": d["relation"], "personal": d.get("personal")}]]
            case "lead.details_corrected":
                args = [[d["personal"]] if d.get("personal") else []]
        await conn.execute(
            f"UPDATE leads SET {sets}, history = history || $2::jsonb, updated_at = now() WHERE lead_id = $1",
            lid,
            history,
            *args,
        )
        # Register lines hold the lead's sealed name and phone too.
        if t == "lead.personal_data_erased":
            await conn.execute("UPDATE register_entries SET personal = '[]' WHERE lead_id = $1", lid)


# lead.received: $3 following rep, $4 at, $5 kind, $6 basis, $7 again (see Lead._received).
_RECEIVED = """
    rep_id = $3, receptions = receptions + 1,
    last_follow_up_at = CASE
        WHEN $5 = 'walk_in' AND (stage <> 'walk_in' OR $6 <> 'duty') THEN $4::timestamptz
        WHEN $5 = 'phone' AND $6 = 'own' AND stage = 'walk_in' AND NOT $7::boolean THEN $4::timestamptz
        ELSE last_follow_up_at END,
    phone_since = CASE WHEN $5 = 'phone' AND $7::boolean THEN $4::timestamptz ELSE phone_since END,
    visited_at = CASE WHEN $5 = 'walk_in' THEN coalesce(visited_at, $4::timestamptz) ELSE visited_at END,
    stage = CASE WHEN $5 = 'walk_in' THEN 'walk_in' WHEN $7::boolean THEN 'phone' ELSE stage END
"""


def _time(value: Any) -> Any:
    """Times in payloads are ISO strings."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value
