"""Read models of field execution, applied inline: route plans with their days and distances,
visit photos (where each is kept and whether a supervisor reviewed it), the channels' standard
pictures and the closed monthly route cleanups."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import asyncpg

from salesplatform.projections import Change, Projection
from salesplatform.store import RecordedEvent


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class RoutePlanBook(Projection):
    name = "route_plan_book"
    inline = True
    event_types = frozenset(
        {
            "route_plan.requested",
            "route_plan.proposed",
            "route_plan.failed",
            "route_plan.adopted",
            "route_plan.rejected",
        }
    )
    schema_sql = """
    CREATE TABLE route_plans (
        plan_id             text PRIMARY KEY,
        rep_id              text NOT NULL,
        district_id         text,
        area_id             text,
        status              text NOT NULL,
        requested_by        text NOT NULL,
        requested_at        timestamptz NOT NULL,
        effective_from      date NOT NULL,
        start_latitude      double precision NOT NULL,
        start_longitude     double precision NOT NULL,
        rules               jsonb NOT NULL,
        matrix_supplied     boolean NOT NULL,
        cycle_weeks         integer,
        days                jsonb,
        current_distance_m  double precision,
        proposed_distance_m double precision,
        unplaced            jsonb,
        unmeasured          jsonb,
        solver              jsonb,
        proposed_at         timestamptz,
        failure             text,
        decided_by          text,
        decided_at          timestamptz,
        rejection_reason    text,
        route_ids           jsonb,
        retired_route_ids   jsonb
    );
    CREATE INDEX route_plans_rep ON route_plans (rep_id, requested_at DESC);
    CREATE INDEX route_plans_requested ON route_plans (requested_at) WHERE status = 'requested';
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d = event.data
        at = event.envelope.occurred_at
        pid = d["plan_id"]
        match event.event_type:
            case "route_plan.requested":
                await conn.execute(
                    "INSERT INTO route_plans (plan_id, rep_id, district_id, area_id, status, requested_by,"
                    " requested_at, effective_from, start_latitude, start_longitude, rules, matrix_supplied)"
                    " VALUES ($1, $2, $3, $4, 'requested', $5, $6, $7, $8, $9, $10, $11)",
                    pid,
                    d["rep_id"],
                    d.get("district_id"),
                    d.get("area_id"),
                    d["requested_by"],
                    at,
                    date.fromisoformat(d["effective_from"]),
                    d["start_latitude"],
                    d["start_longitude"],
                    d["rules"],
                    d.get("matrix") is not None,
                )
            case "route_plan.proposed":
                await conn.execute(
                    "UPDATE route_plans SET status = 'proposed', cycle_weeks = $2, days = $3, current_distance_m = $4,"
                    " proposed_distance_m = $5, unplaced = $6, unmeasured = $7, solver = $8, proposed_at = $9"
                    " WHERE plan_id = $1",
                    pid,
                    d["cycle_weeks"],
                    d["days"],
                    d["current_distance_m"],
                    d["proposed_distance_m"],
                    d.get("unplaced") or [],
                    d.get("unmeasured") or [],
                    d.get("solver") or {},
                    at,
                )
            case "route_plan.failed":
                await conn.execute(
                    "UPDATE route_plans SET status = 'failed', failure = $2 WHERE plan_id = $1", pid, d["reason"]
                )
            case "route_plan.adopted":
                await conn.execute(
                    "UPDATE route_plans SET status = 'adopted', decided_by = $2, decided_at = $3, route_ids = $4,"
                    " retired_route_ids = $5 WHERE plan_id = $1",
                    pid,
                    d["adopted_by"],
                    at,
                    d["route_ids"],
                    d["retired_route_ids"],
                )
            case "route_plan.rejected":
                await conn.execute(
                    "UPDATE route_plans SET status = 'rejected', decided_by = $2, decided_at = $3,"
                    " rejection_reason = $4 WHERE plan_id = $1",
                    pid,
                    d["rejected_by"],
                    at,
                    d["reason"],
                )
        return [{"plan_id": pid}]


class PhotoBook(Projection):
    """One row per photo: whose visit, which step, where its bytes are, its review."""

    name = "photo_book"
    inline = True
    event_types = frozenset({"visit.planned", "visit.photo_attached", "visit.photo_reviewed", "visit.photo_removed"})
    schema_sql = """
    CREATE TABLE visit_places (
        visit_id    text PRIMARY KEY,
        district_id text,
        area_id     text
    );
    CREATE TABLE photos (
        photo_id      text PRIMARY KEY,
        visit_id      text NOT NULL,
        rep_id        text NOT NULL,
        customer_id   text NOT NULL,
        business_date date NOT NULL,
        district_id   text,
        area_id       text,
        kind          text NOT NULL,
        object_name   text NOT NULL,
        digest        text NOT NULL,
        size_bytes    bigint NOT NULL,
        content_type  text NOT NULL,
        taken_by      text NOT NULL,
        taken_at      timestamptz NOT NULL,
        verdict       text,
        review_note   text,
        reviewed_by   text,
        reviewed_at   timestamptz,
        removed       text,          -- retention | erasure, once the bytes are gone
        removed_at    timestamptz
    );
    CREATE INDEX photos_visit ON photos (visit_id, taken_at);
    CREATE INDEX photos_customer ON photos (customer_id) WHERE removed IS NULL;
    CREATE INDEX photos_kept ON photos (taken_at) WHERE removed IS NULL;
    CREATE INDEX photos_review ON photos (district_id, business_date) WHERE verdict IS NULL AND removed IS NULL;
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d = event.data
        at = event.envelope.occurred_at
        match event.event_type:
            case "visit.planned":
                await conn.execute(
                    "INSERT INTO visit_places VALUES ($1, $2, $3) ON CONFLICT (visit_id) DO NOTHING",
                    d["visit_id"],
                    d.get("district_id"),
                    d.get("area_id"),
                )
                return None
            case "visit.photo_attached":
                await conn.execute(
                    "INSERT INTO photos (photo_id, visit_id, rep_id, customer_id, business_date, district_id, area_id,"
                    " kind, object_name, digest, size_bytes, content_type, taken_by, taken_at)"
                    " SELECT $1, $2, $3, $4, $5, p.district_id, p.area_id, $6, $7, $8, $9, $10, $11, $12"
                    " FROM (SELECT NULL) AS one LEFT JOIN visit_places p ON p.visit_id = $2",
                    d["photo_id"],
                    d["visit_id"],
                    d["rep_id"],
                    d["customer_id"],
                    date.fromisoformat(d["business_date"]),
                    d["kind"],
                    d["object_name"],
                    d["digest"],
                    d["size_bytes"],
                    d["content_type"],
                    d["taken_by"],
                    _ts(d["taken_at"]),
                )
            case "visit.photo_reviewed":
                await conn.execute(
                    "UPDATE photos SET verdict = $2, review_note = $3, reviewed_by = $4, reviewed_at = $5"
                    " WHERE photo_id = $1",
                    d["photo_id"],
                    d["verdict"],
                    d.get("note"),
                    d["reviewed_by"],
                    at,
                )
            case "visit.photo_removed":
                await conn.execute(
                    "UPDATE photos SET removed = $2, removed_at = $3 WHERE photo_id = $1",
                    d["photo_id"],
                    d["reason"],
                    at,
                )
        return [{"photo_id": d["photo_id"]}]


class FieldStandards(Projection):
    """The channels' standard pictures and the closed route cleanups."""

    name = "field_standards"
    inline = True
    event_types = frozenset({"standard_picture.defined", "route_cleanup.closed"})
    schema_sql = """
    CREATE TABLE standard_pictures (
        channel    text PRIMARY KEY,
        items      jsonb NOT NULL,
        defined_by text NOT NULL,
        defined_at timestamptz NOT NULL
    );
    CREATE TABLE route_cleanups (
        cleanup_id  text PRIMARY KEY,
        district_id text NOT NULL,
        month       text NOT NULL,
        closed_by   text NOT NULL,
        closed_on   date NOT NULL,
        counts      jsonb NOT NULL,
        outlets     jsonb NOT NULL,
        notes       text
    );
    CREATE UNIQUE INDEX route_cleanups_month ON route_cleanups (district_id, month);
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d = event.data
        if event.event_type == "standard_picture.defined":
            await conn.execute(
                "INSERT INTO standard_pictures VALUES ($1, $2, $3, $4) ON CONFLICT (channel) DO UPDATE SET"
                " items = EXCLUDED.items, defined_by = EXCLUDED.defined_by, defined_at = EXCLUDED.defined_at",
                d["channel"],
                d["items"],
                d["defined_by"],
                event.envelope.occurred_at,
            )
            return [{"channel": d["channel"]}]
        await conn.execute(
            "INSERT INTO route_cleanups VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            d["cleanup_id"],
            d["district_id"],
            d["month"],
            d["closed_by"],
            date.fromisoformat(d["closed_on"]),
            d["counts"],
            d["outlets"],
            d.get("notes"),
        )
        return [{"cleanup_id": d["cleanup_id"]}]
