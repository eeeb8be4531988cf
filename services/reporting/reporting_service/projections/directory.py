"""The local directory: territory, staff, customers and SKUs as the other services describe them.

Customer cards change through many event types whose order matters (assigned, released,
claimed …), so this projection applies its stretch event by event in Python, on rows loaded
once per stretch, and writes each touched table back with one statement.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import asyncpg

from reporting_service.projections.base import Stretch, StretchProjection, keys
from salesplatform.projections import Change
from salesplatform.published import (
    CUSTOMER_CARD_EVENTS,
    CUSTOMER_CREDIT_EVENTS,
    STAFF_EVENTS,
    TERRITORY_EVENTS,
)
from salesplatform.replicas import CARD_PLACEMENT, assigned_staff, staff_table
from salesplatform.replicas import STAFF_COLUMNS as COPIED_STAFF_COLUMNS

SCHEMA = (
    """
CREATE TABLE divisions (division_id text PRIMARY KEY, name text);
CREATE TABLE areas (area_id text PRIMARY KEY, name text, division_id text);
CREATE TABLE districts (district_id text PRIMARY KEY, name text, area_id text, division_id text);

"""
    + staff_table("active        boolean NOT NULL")
    + f"""
CREATE TABLE customers (
    customer_id        text PRIMARY KEY,
    name               text,
    {CARD_PLACEMENT},
    nature             text,
    ownership          text,
    location_type      text,
    grade              text,
    credit_rating      text,
    credit_limit_fen   bigint,
    payment_terms_days integer,
    status             text,
    source             text,
    registered_on      date,
    approved_on        date,
    survivor_id        text,
    erased             boolean NOT NULL
);

-- The lifecycle of each card, for counts "as of" a day.
CREATE TABLE customer_statuses (
    customer_id  text NOT NULL,
    position     bigint NOT NULL,
    effective_on date NOT NULL,
    status       text NOT NULL,
    PRIMARY KEY (customer_id, position)
);

-- The classification of each card as it changed (grade, channel, credit rating), for reports
-- that count a sale by the classification in force on its day.
CREATE TABLE customer_classes (
    customer_id   text NOT NULL,
    position      bigint NOT NULL,
    effective_on  date NOT NULL,
    grade         text,
    channel       text,
    credit_rating text,
    PRIMARY KEY (customer_id, position)
);

CREATE TABLE skus (sku text PRIMARY KEY, name text, brand text, product_group text, package text);
"""
)

CUSTOMER_COLUMNS = (
    "customer_id",
    "name",
    "customer_code",
    "district_id",
    "area_id",
    "division_id",
    "rep_id",
    "channel",
    "nature",
    "ownership",
    "location_type",
    "grade",
    "credit_rating",
    "credit_limit_fen",
    "payment_terms_days",
    "status",
    "source",
    "registered_on",
    "approved_on",
    "survivor_id",
    "erased",
)
CUSTOMER_TYPES = {
    "customer_id": "text",
    "name": "text",
    "customer_code": "text",
    "district_id": "text",
    "area_id": "text",
    "division_id": "text",
    "rep_id": "text",
    "channel": "text",
    "nature": "text",
    "ownership": "text",
    "location_type": "text",
    "grade": "text",
    "credit_rating": "text",
    "credit_limit_fen": "bigint",
    "payment_terms_days": "integer",
    "status": "text",
    "source": "text",
    "registered_on": "date",
    "approved_on": "date",
    "survivor_id": "text",
    "erased": "boolean",
}
# What a sale is classified by (composition, credit analysis): kept as of each change.
CLASS_COLUMNS = ("grade", "channel", "credit_rating")
STAFF_COLUMNS = (*COPIED_STAFF_COLUMNS, "active")
STAFF_TYPES = dict.fromkeys(STAFF_COLUMNS, "text") | {"active": "boolean"}

# Fields a `customer.profile_updated` may change that the reports use.
_PROFILE_FIELDS = {
    "name",
    "district_id",
    "area_id",
    "division_id",
    "channel",
    "nature",
    "ownership",
    "location_type",
    "grade",
}

CUSTOMER_EVENT_TYPES = CUSTOMER_CARD_EVENTS | CUSTOMER_CREDIT_EVENTS


def _upsert(table: str, key: str, columns: tuple[str, ...], types: dict[str, str]) -> str:
    cols = ", ".join(columns)
    arrays = ", ".join(f"${i + 1}::{types[c]}[]" for i, c in enumerate(columns))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    return f"INSERT INTO {table} ({cols}) SELECT * FROM unnest({arrays}) ON CONFLICT ({key}) DO UPDATE SET {updates}"


UPSERT_CUSTOMERS = _upsert("customers", "customer_id", CUSTOMER_COLUMNS, CUSTOMER_TYPES)
UPSERT_STAFF = _upsert("staff", "staff_id", STAFF_COLUMNS, STAFF_TYPES)


def _plain_upsert(table: str, columns: tuple[str, ...]) -> str:
    params = ", ".join(f"${i + 1}" for i in range(len(columns)))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({params}) ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}"


_PLAIN_UPSERTS = {
    "divisions": _plain_upsert("divisions", ("division_id", "name")),
    "areas": _plain_upsert("areas", ("area_id", "name", "division_id")),
    "districts": _plain_upsert("districts", ("district_id", "name", "area_id", "division_id")),
    "skus": _plain_upsert("skus", ("sku", "name", "brand", "product_group", "package")),
}


class DirectoryProjection(StretchProjection):
    name = "directory"
    code_version = 2
    rebuild_weight = 0.3  # share of a one-pass rebuild's work (salesplatform.projections.rebuild)
    schema_sql = SCHEMA
    event_types = TERRITORY_EVENTS | STAFF_EVENTS | CUSTOMER_EVENT_TYPES | {"sku.defined"}

    def __init__(self, timezone: str = "Asia/Shanghai") -> None:
        super().__init__(timezone)
        self._zone = ZoneInfo(self.timezone)

    def _day(self, at: datetime) -> date:
        return at.astimezone(self._zone).date()

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
        if not rows:
            return []
        customer_ids = {r["data"].get("customer_id") for r in rows if r["event_type"] in CUSTOMER_EVENT_TYPES}
        staff_ids = {r["data"].get("staff_id") for r in rows if r["event_type"] in STAFF_EVENTS}
        customers = (
            {
                r["customer_id"]: dict(r)
                for r in await conn.fetch(
                    f"SELECT {', '.join(CUSTOMER_COLUMNS)} FROM customers WHERE customer_id = ANY($1::text[])",
                    [c for c in customer_ids if c],
                )
            }
            if customer_ids
            else {}
        )
        staff = (
            {
                r["staff_id"]: dict(r)
                for r in await conn.fetch(
                    f"SELECT {', '.join(STAFF_COLUMNS)} FROM staff WHERE staff_id = ANY($1::text[])",
                    [s for s in staff_ids if s],
                )
            }
            if staff_ids
            else {}
        )
        touched_customers: set[str] = set()
        touched_staff: set[str] = set()
        statuses: list[tuple[str, int, date, str]] = []
        classes: list[tuple[str, int, date, Any, Any, Any]] = []
        divisions: dict[str, tuple[str, Any]] = {}
        areas: dict[str, tuple[str, Any, Any]] = {}
        districts: dict[str, tuple[str, Any, Any, Any]] = {}
        skus: dict[str, tuple[str, Any, Any, Any, Any]] = {}

        for r in rows:
            t, d = r["event_type"], r["data"]
            if t in CUSTOMER_EVENT_TYPES:
                cid = d.get("customer_id")
                if not cid:
                    raise ValueError(f"{t} without customer_id")
                card = customers.get(cid)
                if card is None:
                    card = customers[cid] = _blank_card(cid)
                before = tuple(card[c] for c in CLASS_COLUMNS)
                status = _CARD_CHANGES[t](card, d)
                after = tuple(card[c] for c in CLASS_COLUMNS)
                if after != before or t == "customer.registered":
                    classes.append((cid, r["position"], self._day(r["occurred_at"]), *after))
                if status is not None:
                    day = self._day(r["occurred_at"])
                    if t == "customer.registered":
                        card["registered_on"] = day
                    elif t == "customer.approved" and card["approved_on"] is None:
                        card["approved_on"] = day
                    statuses.append((cid, r["position"], day, status))
                touched_customers.add(cid)
            elif t in STAFF_EVENTS:
                sid = d["staff_id"]
                person = staff.get(sid) or dict.fromkeys(STAFF_COLUMNS) | {"staff_id": sid, "active": True}
                if t == "staff.assigned":
                    person.update(assigned_staff(d), active=True)
                else:
                    person["active"] = False
                staff[sid] = person
                touched_staff.add(sid)
            elif t == "territory.division_defined":
                divisions[d["division_id"]] = (d["division_id"], d.get("name"))
            elif t == "territory.area_defined":
                areas[d["area_id"]] = (d["area_id"], d.get("name"), d.get("division_id"))
            elif t == "territory.district_defined":
                districts[d["district_id"]] = (
                    d["district_id"],
                    d.get("name"),
                    d.get("area_id"),
                    d.get("division_id"),
                )
            elif t == "sku.defined":
                skus[d["sku"]] = (d["sku"], d.get("name"), d.get("brand"), d.get("product_group"), d.get("package"))

        if touched_customers:
            cards = [customers[c] for c in sorted(touched_customers)]
            await conn.execute(UPSERT_CUSTOMERS, *([card[c] for card in cards] for c in CUSTOMER_COLUMNS))
        if statuses:
            await conn.executemany(
                "INSERT INTO customer_statuses VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", statuses
            )
        if classes:
            await conn.executemany(
                "INSERT INTO customer_classes VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING", classes
            )
        if touched_staff:
            people = [staff[s] for s in sorted(touched_staff)]
            await conn.execute(UPSERT_STAFF, *([p[c] for p in people] for c in STAFF_COLUMNS))
        for table, values in (
            ("divisions", divisions),
            ("areas", areas),
            ("districts", districts),
            ("skus", skus),
        ):
            if values:
                await conn.executemany(_PLAIN_UPSERTS[table], list(values.values()))
        if not changes:
            return []
        out: list[Change] = []
        for cid in sorted(touched_customers):
            out.extend(keys({"report": "customer_base", "customer_id": cid}, {"report": "credit", "customer_id": cid}))
        return out


def _blank_card(customer_id: str) -> dict[str, Any]:
    card: dict[str, Any] = dict.fromkeys(CUSTOMER_COLUMNS)
    card.update(customer_id=customer_id, erased=False)
    return card


# Each card change updates the card and returns the new lifecycle status, if it set one.
def _registered(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    for f in (
        "name",
        "district_id",
        "area_id",
        "division_id",
        "rep_id",
        "channel",
        "nature",
        "ownership",
        "location_type",
        "source",
    ):
        if f in d:
            card[f] = d[f]
    card["status"] = d.get("status") or "pending"
    return cast("str | None", card["status"])


def _approved(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    card["customer_code"] = d.get("customer_code")
    card["status"] = d.get("status") or "active"
    return cast("str | None", card["status"])


def _rejected(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    card["status"] = "rejected"
    return "rejected"


def _classified(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    for f in ("nature", "ownership", "channel", "location_type", "grade"):
        if f in d:
            card[f] = d[f]
    return None


def _credit(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    card["credit_rating"] = d.get("credit_rating")
    card["credit_limit_fen"] = d.get("credit_limit_fen")
    card["payment_terms_days"] = d.get("payment_terms_days")
    return None


def _assigned(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    card["rep_id"] = d.get("rep_id")
    for f in ("district_id", "area_id", "division_id"):
        if d.get(f) is not None:
            card[f] = d[f]
    return None


def _status_changed(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    card["status"] = d["status"]
    return cast("str | None", card["status"])


def _released(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    card["rep_id"] = None
    return None


def _claimed(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    card["rep_id"] = d.get("rep_id")
    return None


def _merged(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    card["status"] = "merged"
    card["survivor_id"] = d.get("survivor_id")
    return "merged"


def _profile_updated(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    for f, value in (d.get("changes") or {}).items():
        if f in _PROFILE_FIELDS:
            card[f] = value
    return None


def _erased(card: dict[str, Any], d: dict[str, Any]) -> str | None:
    card["name"] = None
    card["erased"] = True
    return None


_CARD_CHANGES: dict[str, Callable[[dict[str, Any], dict[str, Any]], str | None]] = {
    "customer.registered": _registered,
    "customer.approved": _approved,
    "customer.rejected": _rejected,
    "customer.classified": _classified,
    "customer.credit_limit_set": _credit,
    "customer.assigned": _assigned,
    "customer.status_changed": _status_changed,
    "customer.released": _released,
    "customer.claimed": _claimed,
    "customer.merged": _merged,
    "customer.profile_updated": _profile_updated,
    "customer.personal_data_erased": _erased,
}
