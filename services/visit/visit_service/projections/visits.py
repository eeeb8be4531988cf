"""Read models of the service's own work, applied inline (in the command's transaction) so a
command's result is visible to the next query at once: visits with their card and approvals,
routes, complaints, surveys, key-account reports, coaching notes and spot checks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import asyncpg

from salesplatform.projections import Change, Projection
from salesplatform.store import RecordedEvent


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _day(value: str) -> date:
    return date.fromisoformat(value)


class VisitBoard(Projection):
    """One row per visit: plan, approval, and each step of the visit card."""

    name = "visit_board"
    inline = True
    code_version = 2
    event_types = frozenset(
        {
            "visit.check_in_confirmed",
            "visit.planned",
            "visit.approval_requested",
            "visit.approved",
            "visit.approval_rejected",
            "visit.approval_overdue",
            "visit.checked_in",
            "visit.stock_counted",
            "visit.merchandising_audited",
            "visit.cooler_checked",
            "visit.competitor_observed",
            "visit.order_suggested",
            "visit.order_taken",
            "visit.order_refused",
            "visit.delivery_confirmed",
            "visit.checked_out",
            "visit.missed",
        }
    )
    schema_sql = """
    CREATE TABLE visits (
        visit_id              text PRIMARY KEY,
        rep_id                text NOT NULL,
        customer_id           text NOT NULL,
        business_date         date NOT NULL,
        route_id              text,
        planned               boolean NOT NULL,
        sequence              integer NOT NULL,
        district_id           text,
        area_id               text,
        status                text NOT NULL,
        planned_at            timestamptz NOT NULL,
        approval_status       text,
        approval_reason       text,
        requested_by          text,
        requested_at          timestamptz,
        approval_due_at       timestamptz,
        approval_overdue      boolean NOT NULL DEFAULT false,
        overdue_supervisor_id text,
        approver_id           text,
        decided_at            timestamptz,
        rejection_reason      text,
        checked_in_at         timestamptz,
        latitude              double precision,
        longitude             double precision,
        accuracy_m            double precision,
        distance_m            double precision,
        position_verified     boolean,
        position_flags        jsonb NOT NULL DEFAULT '[]',
        repeated_at           jsonb NOT NULL DEFAULT '[]',
        confirmed_by          text,
        confirmed_at          timestamptz,
        stock                 jsonb,
        merchandising         jsonb,
        coolers               jsonb NOT NULL DEFAULT '[]',
        competitors           jsonb NOT NULL DEFAULT '[]',
        suggested             jsonb,
        order_id              text,
        order_lines           jsonb,
        suggested_adopted     boolean,
        refusal_reason        text,
        delivery              jsonb,
        checked_out_at        timestamptz,
        successful            boolean,
        missed_at             timestamptz
    );
    CREATE INDEX visits_rep_day ON visits (rep_id, business_date, sequence);
    CREATE INDEX visits_customer ON visits (customer_id, business_date DESC);
    CREATE INDEX visits_open_days ON visits (business_date) WHERE status = 'planned';
    CREATE INDEX visits_pending ON visits (approval_due_at) WHERE approval_status = 'pending';
    CREATE INDEX visits_check_in_position ON visits (latitude, longitude) WHERE latitude IS NOT NULL;
    CREATE INDEX visits_flagged ON visits (business_date) WHERE position_verified IS DISTINCT FROM true
        AND checked_in_at IS NOT NULL;
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d = event.data
        vid = d["visit_id"]
        at = event.envelope.occurred_at

        async def set_(sql: str, *args: object) -> None:
            await conn.execute(f"UPDATE visits SET {sql} WHERE visit_id = $1", vid, *args)

        match event.event_type:
            case "visit.planned":
                await conn.execute(
                    "INSERT INTO visits (visit_id, rep_id, customer_id, business_date, route_id, planned,"
                    " sequence, district_id, area_id, status, planned_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'planned', $10)",
                    vid,
                    d["rep_id"],
                    d["customer_id"],
                    _day(d["business_date"]),
                    d.get("route_id"),
                    d["planned"],
                    d["sequence"],
                    d.get("district_id"),
                    d.get("area_id"),
                    at,
                )
            case "visit.approval_requested":
                await set_(
                    "approval_status = 'pending', approval_reason = $2, requested_by = $3, requested_at = $4,"
                    " approval_due_at = $5",
                    d["reason"],
                    d["requested_by"],
                    _ts(d["requested_at"]),
                    _ts(d["due_at"]),
                )
            case "visit.approved":
                await set_("approval_status = 'approved', approver_id = $2, decided_at = $3", d["approver_id"], at)
            case "visit.approval_rejected":
                await set_(
                    "approval_status = 'rejected', approver_id = $2, decided_at = $3, rejection_reason = $4,"
                    " status = CASE WHEN status = 'planned' THEN 'cancelled' ELSE status END",
                    d["approver_id"],
                    at,
                    d["reason"],
                )
            case "visit.approval_overdue":
                await set_("approval_overdue = true, overdue_supervisor_id = $2", d.get("supervisor_id"))
            case "visit.checked_in":
                await set_(
                    "status = 'checked_in', checked_in_at = $2, latitude = $3, longitude = $4, accuracy_m = $5,"
                    " distance_m = $6, position_verified = $7, position_flags = $8, repeated_at = $9",
                    _ts(d["at"]),
                    d["latitude"],
                    d["longitude"],
                    d.get("accuracy_m"),
                    d.get("distance_m"),
                    d.get("position_verified"),
                    d.get("flags") or [],
                    d.get("repeated_at") or [],
                )
            case "visit.check_in_confirmed":
                await set_("confirmed_by = $2, confirmed_at = $3", d["confirmed_by"], at)
            case "visit.stock_counted":
                await set_("stock = $2", d["lines"])
            case "visit.order_suggested":
                await set_("suggested = $2", d["lines"])
            case "visit.merchandising_audited":
                await set_(
                    "merchandising = $2",
                    {k: d[k] for k in ("required_skus", "present_skus", "price_tags_ok", "display_ok")}
                    | {"missing_skus": [s for s in d["required_skus"] if s not in d["present_skus"]]}
                    | {
                        "standard_items": d.get("standard_items"),
                        "checklist": d.get("checklist"),
                        "standard_met": d.get("standard_met"),
                        "missing_items": d.get("missing_items") or [],
                        "photo_ids": d.get("photo_ids") or [],
                    },
                )
            case "visit.cooler_checked":
                keep: tuple[str, ...] = (
                    "cooler_id",
                    "at_outlet",
                    "best_position",
                    "powered",
                    "light_on",
                    "clean",
                    "working",
                    "required_packs",
                    "misused",
                    "compliant",
                )
                await set_("coolers = coolers || $2::jsonb", [{k: d[k] for k in keep}])
            case "visit.competitor_observed":
                keep = ("brand", "product", "price_fen", "promotion", "stock_age_days")
                await set_("competitors = competitors || $2::jsonb", [{k: d[k] for k in keep}])
            case "visit.order_taken":
                await set_(
                    "order_id = $2, order_lines = $3, suggested_adopted = $4",
                    d["order_id"],
                    d["lines"],
                    d["suggested_adopted"],
                )
            case "visit.order_refused":
                await set_("refusal_reason = $2", d["reason"])
            case "visit.delivery_confirmed":
                await set_("delivery = $2", {"order_id": d["order_id"], "delivered": d["delivered"]})
            case "visit.checked_out":
                await set_(
                    "status = 'checked_out', checked_out_at = $2, successful = $3", _ts(d["at"]), d["successful"]
                )
            case "visit.missed":
                await set_("status = 'missed', missed_at = $2", at)
        return [{"visit_id": vid}]


class RouteBook(Projection):
    name = "route_book"
    inline = True
    code_version = 2
    event_types = frozenset({"route.defined", "route.changed", "route.retired"})
    schema_sql = """
    CREATE TABLE routes (
        route_id     text PRIMARY KEY,
        rep_id       text NOT NULL,
        name         text NOT NULL,
        weekdays     integer[] NOT NULL,
        customer_ids text[] NOT NULL,
        defined_at   timestamptz NOT NULL,
        changed_at   timestamptz NOT NULL,
        cycle_weeks  integer NOT NULL DEFAULT 1,
        cycle_offset integer NOT NULL DEFAULT 0,
        plan_id      text
    );
    CREATE INDEX routes_rep ON routes (rep_id);
    CREATE INDEX routes_customers ON routes USING gin (customer_ids);
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d = event.data
        at = event.envelope.occurred_at
        if event.event_type == "route.retired":
            await conn.execute("DELETE FROM routes WHERE route_id = $1", d["route_id"])
            return [{"route_id": d["route_id"]}]
        await conn.execute(
            "INSERT INTO routes (route_id, rep_id, name, weekdays, customer_ids, defined_at, changed_at,"
            " cycle_weeks, cycle_offset, plan_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9)"
            " ON CONFLICT (route_id) DO UPDATE SET rep_id = EXCLUDED.rep_id, name = EXCLUDED.name,"
            " weekdays = EXCLUDED.weekdays, customer_ids = EXCLUDED.customer_ids, changed_at = EXCLUDED.changed_at,"
            " cycle_weeks = EXCLUDED.cycle_weeks, cycle_offset = EXCLUDED.cycle_offset, plan_id = EXCLUDED.plan_id",
            d["route_id"],
            d["rep_id"],
            d["name"],
            d["weekdays"],
            d["customer_ids"],
            at,
            d.get("cycle_weeks", 1),
            d.get("cycle_offset", 0),
            d.get("plan_id"),
        )
        return [{"route_id": d["route_id"]}]


class ComplaintBook(Projection):
    name = "complaint_book"
    inline = True
    event_types = frozenset(
        {
            "complaint.received",
            "complaint.acknowledged",
            "complaint.routed",
            "complaint.resolved",
            "complaint.closed",
            "complaint.sla_breached",
        }
    )
    schema_sql = """
    CREATE TABLE complaints (
        complaint_id    text PRIMARY KEY,
        customer_id     text NOT NULL,
        rep_id          text,
        district_id     text,
        area_id         text,
        channel         text NOT NULL,
        category        text NOT NULL,
        severity        text NOT NULL,
        description     text NOT NULL,
        received_at     timestamptz NOT NULL,
        acknowledge_by  timestamptz NOT NULL,
        status          text NOT NULL,
        acknowledged_at timestamptz,
        acknowledged_by text,
        within_sla      boolean,
        sla_breached    boolean NOT NULL DEFAULT false,
        department      text,
        resolution      text,
        customer_misuse boolean,
        resolved_at     timestamptz,
        closed_at       timestamptz
    );
    CREATE INDEX complaints_open ON complaints (department, received_at) WHERE status <> 'closed';
    CREATE INDEX complaints_unacknowledged ON complaints (acknowledge_by) WHERE status = 'received';
    CREATE INDEX complaints_customer ON complaints (customer_id, received_at DESC);
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d = event.data
        cid = d["complaint_id"]
        at = event.envelope.occurred_at
        match event.event_type:
            case "complaint.received":
                await conn.execute(
                    "INSERT INTO complaints (complaint_id, customer_id, rep_id, district_id, area_id, channel,"
                    " category, severity, description, received_at, acknowledge_by, status)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'received')",
                    cid,
                    d["customer_id"],
                    d.get("rep_id"),
                    d.get("district_id"),
                    d.get("area_id"),
                    d["channel"],
                    d["category"],
                    d["severity"],
                    d["description"],
                    _ts(d["received_at"]),
                    _ts(d["acknowledge_by"]),
                )
            case "complaint.acknowledged":
                await conn.execute(
                    "UPDATE complaints SET status = 'acknowledged', acknowledged_at = $2, within_sla = $3,"
                    " acknowledged_by = $4 WHERE complaint_id = $1",
                    cid,
                    _ts(d["at"]),
                    d["within_sla"],
                    d.get("by"),
                )
            case "complaint.routed":
                await conn.execute(
                    "UPDATE complaints SET status = 'routed', department = $2 WHERE complaint_id = $1",
                    cid,
                    d["department"],
                )
            case "complaint.resolved":
                await conn.execute(
                    "UPDATE complaints SET status = 'resolved', resolution = $2, customer_misuse = $3,"
                    " resolved_at = $4 WHERE complaint_id = $1",
                    cid,
                    d["resolution"],
                    d["customer_misuse"],
                    at,
                )
            case "complaint.closed":
                await conn.execute(
                    "UPDATE complaints SET status = 'closed', closed_at = $2 WHERE complaint_id = $1", cid, at
                )
            case "complaint.sla_breached":
                await conn.execute("UPDATE complaints SET sla_breached = true WHERE complaint_id = $1", cid)
        return [{"complaint_id": cid}]


class FieldRecords(Projection):
    """Surveys, key-account reports, coaching notes and delivery spot checks."""

    name = "field_records"
    inline = True
    event_types = frozenset(
        {
            "survey.recorded",
            "key_account_report.filed",
            "coaching.recorded",
            "delivery.spot_checked",
        }
    )
    schema_sql = """
    CREATE TABLE surveys (
        survey_id     text PRIMARY KEY,
        customer_id   text NOT NULL,
        period        text NOT NULL,
        scores        jsonb NOT NULL,
        satisfied     boolean NOT NULL,
        rep_id        text,
        district_id   text,
        area_id       text,
        business_date date NOT NULL
    );
    CREATE INDEX surveys_period ON surveys (period);
    CREATE TABLE key_account_reports (
        report_id   text PRIMARY KEY,
        customer_id text NOT NULL,
        visit_id    text,
        summary     text NOT NULL,
        issues      jsonb NOT NULL,
        filed_by    text NOT NULL,
        filed_on    date NOT NULL,
        district_id text,
        area_id     text
    );
    CREATE INDEX key_account_reports_customer ON key_account_reports (customer_id, filed_on DESC);
    CREATE TABLE coaching (
        coaching_id   text PRIMARY KEY,
        supervisor_id text NOT NULL,
        rep_id        text NOT NULL,
        business_date date NOT NULL,
        visit_id      text,
        customer_id   text,
        notes         text NOT NULL,
        strengths     jsonb NOT NULL,
        improvements  jsonb NOT NULL
    );
    CREATE INDEX coaching_rep ON coaching (rep_id, business_date DESC);
    CREATE TABLE spot_checks (
        spot_check_id    text PRIMARY KEY,
        order_id         text NOT NULL,
        customer_id      text NOT NULL,
        checked_by       text NOT NULL,
        business_date    date NOT NULL,
        delivered        boolean NOT NULL,
        on_time          boolean,
        quantities_match boolean NOT NULL,
        notes            text NOT NULL
    );
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d = event.data
        match event.event_type:
            case "survey.recorded":
                await conn.execute(
                    "INSERT INTO surveys VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    d["survey_id"],
                    d["customer_id"],
                    d["period"],
                    d["scores"],
                    d["satisfied"],
                    d.get("rep_id"),
                    d.get("district_id"),
                    d.get("area_id"),
                    _day(d["business_date"]),
                )
                return [{"survey_id": d["survey_id"]}]
            case "key_account_report.filed":
                await conn.execute(
                    "INSERT INTO key_account_reports VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    d["report_id"],
                    d["customer_id"],
                    d.get("visit_id"),
                    d["summary"],
                    d["issues"],
                    d["filed_by"],
                    _day(d["filed_on"]),
                    d.get("district_id"),
                    d.get("area_id"),
                )
                return [{"report_id": d["report_id"]}]
            case "coaching.recorded":
                await conn.execute(
                    "INSERT INTO coaching VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    d["coaching_id"],
                    d["supervisor_id"],
                    d["rep_id"],
                    _day(d["business_date"]),
                    d.get("visit_id"),
                    d.get("customer_id"),
                    d["notes"],
                    d["strengths"],
                    d["improvements"],
                )
                return [{"coaching_id": d["coaching_id"]}]
            case "delivery.spot_checked":
                await conn.execute(
                    "INSERT INTO spot_checks VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    d["spot_check_id"],
                    d["order_id"],
                    d["customer_id"],
                    d["checked_by"],
                    _day(d["business_date"]),
                    d["delivered"],
                    d.get("on_time"),
                    d["quantities_match"],
                    d["notes"],
                )
                return [{"spot_check_id": d["spot_check_id"]}]
        return None
