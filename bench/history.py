"""A synthetic sales history: contract-shaped events, as the reporting service keeps them.

Deterministic (seeded) and shaped like a sales department's year: a territory tree, reps,
customers registered, approved and classified, SKUs, then business days of visits (planned,
checked in, order taken or refused, checked out) and orders (placed, confirmed, delivered).
Every event's data follows the cross-service contracts; `origin` is the source stream, as the
foreign-event consumer stores copies of other services' events.

Rows come out ready for `copy_records_to_table("events", columns=EVENT_COLUMNS)`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

EVENT_COLUMNS = (
    "stream_id",
    "stream_version",
    "event_id",
    "event_type",
    "schema_version",
    "occurred_at",
    "recorded_at",
    "correlation_id",
    "causation_id",
    "actor",
    "data",
    "origin",
)
Row = tuple[str, int, uuid.UUID, str, int, datetime, datetime, str | None, str | None, str, str, str | None]

CHANNELS = ("wholesale", "retail", "agent", "franchise", "chain", "specialty")
NATURES = ("government", "key_company", "company", "individual", "trading_partner")
OWNERSHIPS = ("state", "collective", "private", "joint_stock", "joint_venture")
LOCATIONS = ("business_centre", "transport_hub", "residential", "other")
GRADES = ("A", "B", "C")
PRODUCT_GROUPS = ("beverage", "snack", "dairy", "household")
# The four card groups (客户卡) of a registration, with nothing filled in beyond the base data.
EMPTY_CARD_GROUPS: dict[str, dict[str, Any]] = {
    "base": {
        "founded_on": None,
        "relationship_since": None,
        "organisation_form": None,
        "industry": None,
        "assets_fen": None,
    },
    "characteristics": {
        "service_area": None,
        "sales_capacity": None,
        "growth_potential": None,
        "business_policy": None,
        "staff_count": None,
        "annual_sales_fen": None,
        "management_style": None,
    },
    "business_status": {
        "sales_history": None,
        "staff_quality": None,
        "competitor_relations": None,
        "cooperation_attitude": None,
    },
    "trading_status": {
        "current_problems": None,
        "strengths": None,
        "credit_standing": None,
        "trade_terms": None,
        "credit_incidents": [],
    },
}
# Company time zone is UTC+8 (Asia/Shanghai): a business day runs 00:00–24:00 local.
COMPANY_UTC_OFFSET = timedelta(hours=8)


@dataclass
class Territory:
    divisions: list[str] = field(default_factory=list)
    areas: dict[str, str] = field(default_factory=dict)  # area -> division
    districts: dict[str, str] = field(default_factory=dict)  # district -> area
    reps: dict[str, str] = field(default_factory=dict)  # rep -> district
    supervisors: dict[str, str] = field(default_factory=dict)  # district -> supervisor


class History:
    """Builds the history event by event; `rows(n)` yields exactly `n` rows.

    Sources: customer events (CUSTOMER), visit events (VISIT), order events (ORDERS). About
    one event in ten is a customer or catalogue event, the rest visits and orders.
    """

    def __init__(
        self,
        *,
        seed: int = 7,
        start: date = date(2026, 1, 5),
        origins: dict[str, str | None] | None = None,
        customers_per_rep: int = 40,
        id_prefix: str = "",
    ) -> None:
        self.rng = random.Random(seed)
        self.day = start
        self.versions: dict[str, int] = {}
        self.origins = origins or {"customer": "CUSTOMER", "visit": "VISIT", "orders": "ORDERS"}
        self.customers_per_rep = customers_per_rep
        self.id_prefix = id_prefix
        self.territory = Territory()
        self.customers: list[tuple[str, str]] = []  # (customer_id, rep_id)
        self.customer_place: dict[str, tuple[str, str, str]] = {}  # customer -> (district, area, division)
        self.skus: list[tuple[str, str, int]] = []  # (sku, product_group, list price)
        self._counter = 0

    # -- ids and envelopes --

    def _id(self, kind: str) -> str:
        self._counter += 1
        return f"{self.id_prefix}{kind}{self._counter:09d}"

    def _at(self, hour: float) -> datetime:
        """A moment of the current business day, in UTC."""
        local = datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC) + timedelta(hours=hour)
        return local - COMPANY_UTC_OFFSET

    def _event(
        self, source: str, stream_id: str, event_type: str, data: dict[str, Any], at: datetime, actor: dict[str, Any]
    ) -> Row:
        version = self.versions.get(stream_id, 0) + 1
        self.versions[stream_id] = version
        return (
            stream_id,
            version,
            uuid.UUID(int=self.rng.getrandbits(128), version=4),
            event_type,
            1,
            at,
            at,
            None,
            None,
            orjson.dumps(actor).decode(),
            orjson.dumps(data).decode(),
            self.origins[source],
        )

    @staticmethod
    def _system() -> dict[str, Any]:
        return {"id": "system", "role": "system", "district": None, "area": None}

    def _rep_actor(self, rep: str) -> dict[str, Any]:
        district = self.territory.reps[rep]
        return {"id": rep, "role": "rep", "district": district, "area": self.territory.districts[district]}

    # -- setting up the department --

    def territory_events(self, divisions: int = 2, areas: int = 3, districts: int = 4, reps: int = 5) -> Iterator[Row]:
        manager = {"id": "m1", "role": "sales_manager", "district": None, "area": None}
        at = self._at(8)
        for d in range(divisions):
            division = f"div{d + 1}"
            self.territory.divisions.append(division)
            yield self._event(
                "customer",
                f"territory-{division}",
                "territory.division_defined",
                {"division_id": division, "name": f"Division {d + 1}"},
                at,
                manager,
            )
            for a in range(areas):
                area = f"{division}-a{a + 1}"
                self.territory.areas[area] = division
                yield self._event(
                    "customer",
                    f"territory-{area}",
                    "territory.area_defined",
                    {"area_id": area, "name": f"Area {area}", "division_id": division},
                    at,
                    manager,
                )
                for k in range(districts):
                    district = f"{area}-d{k + 1}"
                    self.territory.districts[district] = area
                    yield self._event(
                        "customer",
                        f"territory-{district}",
                        "territory.district_defined",
                        {
                            "district_id": district,
                            "name": f"District {district}",
                            "area_id": area,
                            "division_id": division,
                        },
                        at,
                        manager,
                    )
                    supervisor = f"sup-{district}"
                    self.territory.supervisors[district] = supervisor
                    yield self._event(
                        "customer",
                        f"staff-{supervisor}",
                        "staff.assigned",
                        {
                            "staff_id": supervisor,
                            "name": f"Supervisor {district}",
                            "role": "supervisor",
                            "district_id": district,
                            "area_id": area,
                            "supervisor_id": None,
                        },
                        at,
                        manager,
                    )
                    for r in range(reps):
                        rep = f"rep-{district}-{r + 1}"
                        self.territory.reps[rep] = district
                        yield self._event(
                            "customer",
                            f"staff-{rep}",
                            "staff.assigned",
                            {
                                "staff_id": rep,
                                "name": f"Rep {rep}",
                                "role": "rep",
                                "district_id": district,
                                "area_id": area,
                                "supervisor_id": supervisor,
                            },
                            at,
                            manager,
                        )

    def catalogue_events(self, count: int = 40) -> Iterator[Row]:
        manager = {"id": "m1", "role": "sales_manager", "district": None, "area": None}
        at = self._at(8)
        for i in range(count):
            sku = f"SKU{i + 1:04d}"
            group = PRODUCT_GROUPS[i % len(PRODUCT_GROUPS)]
            price = 500 + 100 * (i % 30)
            self.skus.append((sku, group, price))
            yield self._event(
                "orders",
                f"sku-{sku}",
                "sku.defined",
                {
                    "sku": sku,
                    "name": f"Product {i + 1}",
                    "brand": f"Brand {i % 5 + 1}",
                    "product_group": group,
                    "package": "24x330ml",
                    "list_price_fen": price,
                    "floor_price_fen": price * 9 // 10,
                },
                at,
                manager,
            )
        for channel in CHANNELS:
            yield self._event(
                "orders",
                f"required_skus-{channel}",
                "required_skus.set",
                {"channel": channel, "skus": [s for s, _, _ in self.skus[:6]]},
                at,
                manager,
            )

    def register_customer(self, rep: str) -> Iterator[Row]:
        district = self.territory.reps[rep]
        area = self.territory.districts[district]
        division = self.territory.areas[area]
        customer = self._id("cust-")
        stream = f"customer-{customer}"
        at = self._at(self.rng.uniform(9, 17))
        channel = self.rng.choice(CHANNELS)
        nature = self.rng.choice(NATURES)
        location = self.rng.choice(LOCATIONS)
        yield self._event(
            "customer",
            stream,
            "customer.registered",
            {
                "customer_id": customer,
                "name": f"Outlet {customer}",
                "address": f"{self.rng.randint(1, 999)} Road",
                "phone": f"138{self.rng.randint(0, 99_999_999):08d}",
                "district_id": district,
                "area_id": area,
                "division_id": division,
                "rep_id": rep,
                "channel": channel,
                "nature": nature,
                "location_type": location,
                "ownership": None,
                "source": "rep_visit",
                "status": "pending",
                "verified": True,
                **EMPTY_CARD_GROUPS,
                "personal": None,
                "personal_fields": [],
            },
            at,
            self._rep_actor(rep),
        )
        supervisor = {
            "id": self.territory.supervisors[district],
            "role": "supervisor",
            "district": district,
            "area": area,
        }
        yield self._event(
            "customer",
            stream,
            "customer.approved",
            {
                "customer_id": customer,
                "customer_code": f"K{self._counter:08d}",
                "status": "active",
                "approved_by": supervisor["id"],
            },
            at + timedelta(hours=1),
            supervisor,
        )
        yield self._event(
            "customer",
            stream,
            "customer.classified",
            {
                "customer_id": customer,
                "nature": nature,
                "ownership": self.rng.choice(OWNERSHIPS),
                "channel": channel,
                "location_type": location,
                "grade": self.rng.choice(GRADES),
                "basis": "manual",
                "figures": None,
                "reason": "first classification",
            },
            at + timedelta(hours=1),
            supervisor,
        )
        manager = {"id": "m1", "role": "sales_manager", "district": None, "area": None}
        yield self._event(
            "customer",
            stream,
            "customer.credit_limit_set",
            {
                "customer_id": customer,
                "credit_rating": self.rng.choice(("AAA", "AA", "A", "B")),
                "credit_limit_fen": self.rng.choice((5_000_000, 10_000_000, 50_000_000)),
                "payment_terms_days": 30,
                "reason": None,
            },
            at + timedelta(hours=2),
            manager,
        )
        self.customers.append((customer, rep))
        self.customer_place[customer] = (district, area, division)

    def _order_lines(self) -> list[dict[str, Any]]:
        lines = []
        for sku, group, price in self.rng.sample(self.skus, self.rng.randint(1, 4)):
            quantity = self.rng.randint(1, 20)
            lines.append(
                {
                    "sku": sku,
                    "product_group": group,
                    "quantity": quantity,
                    "unit_price_fen": price,
                    "amount_fen": quantity * price,
                    "promotion_id": None,
                    "gift_quantity": 0,
                }
            )
        return lines

    def _visit(self, customer: str, rep: str, sequence: int) -> Iterator[Row]:
        visit = self._id("visit-")
        stream = f"visit-{visit}"
        business_date = self.day.isoformat()
        actor = self._rep_actor(rep)
        base = {"visit_id": visit, "rep_id": rep, "customer_id": customer, "business_date": business_date}
        start = 9 + sequence * 0.4
        yield self._event(
            "visit",
            stream,
            "visit.planned",
            {**base, "route_id": None, "planned": True, "sequence": sequence},
            self._at(7),
            actor,
        )
        yield self._event(
            "visit",
            stream,
            "visit.checked_in",
            {**base, "at": self._at(start).isoformat(), "latitude": 31.23, "longitude": 121.47},
            self._at(start),
            actor,
        )
        successful = self.rng.random() < 0.85
        if successful:
            order = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            lines = self._order_lines()
            yield self._event(
                "visit",
                stream,
                "visit.order_taken",
                {
                    **base,
                    "order_id": order,
                    "lines": [{"sku": ln["sku"], "quantity": ln["quantity"], "unit_price_fen": None} for ln in lines],
                    "suggested_adopted": self.rng.random() < 0.7,
                },
                self._at(start + 0.2),
                actor,
            )
            yield from self._order(order, customer, rep, visit, lines, self._at(start + 0.25))
        else:
            yield self._event(
                "visit", stream, "visit.order_refused", {**base, "reason": "enough stock"}, self._at(start + 0.2), actor
            )
        yield self._event(
            "visit",
            stream,
            "visit.checked_out",
            {**base, "at": self._at(start + 0.3).isoformat(), "successful": successful},
            self._at(start + 0.3),
            actor,
        )

    def _order(
        self, order: str, customer: str, rep: str, visit: str | None, lines: list[dict[str, Any]], at: datetime
    ) -> Iterator[Row]:
        district, area, _ = self.customer_place[customer]
        stream = f"order-{order}"
        system = self._system()
        yield self._event(
            "orders",
            stream,
            "order.placed",
            {
                "order_id": order,
                "customer_id": customer,
                "rep_id": rep,
                "district_id": district,
                "area_id": area,
                "source": "visit" if visit else "phone",
                "visit_id": visit,
                "lines": lines,
                "amount_fen": sum(ln["amount_fen"] for ln in lines),
                "business_date": self.day.isoformat(),
                "placed_at": at.isoformat(),
            },
            at,
            system,
        )
        yield self._event(
            "orders",
            stream,
            "order.confirmed",
            {
                "order_id": order,
                "confirmed_at": at.isoformat(),
                "deliver_by": (at + timedelta(hours=24)).isoformat(),
            },
            at,
            system,
        )
        delivered = at + timedelta(hours=self.rng.uniform(4, 30))
        yield self._event(
            "orders",
            stream,
            "order.delivered",
            {
                "order_id": order,
                "customer_id": customer,
                "delivered_at": delivered.isoformat(),
                "on_time": delivered - at <= timedelta(hours=24),
            },
            delivered,
            system,
        )

    # -- the whole history --

    def events(self) -> Iterator[Row]:
        """Endless: set-up, then business days of visits and orders; new outlets now and then."""
        yield from self.territory_events()
        yield from self.catalogue_events()
        for rep in list(self.territory.reps):
            for _ in range(self.customers_per_rep // 4):
                yield from self.register_customer(rep)
        reps = list(self.territory.reps)
        while True:
            self.day += timedelta(days=1)
            if self.day.isoweekday() == 7:
                continue  # no route on Sundays
            for rep in reps:
                if self.rng.random() < 0.3:
                    yield from self.register_customer(rep)
            by_rep: dict[str, list[str]] = {}
            for customer, rep in self.customers:
                by_rep.setdefault(rep, []).append(customer)
            for rep, owned in by_rep.items():
                route = self.rng.sample(owned, min(len(owned), 8))
                for sequence, customer in enumerate(route, 1):
                    yield from self._visit(customer, rep, sequence)

    def rows(self, count: int) -> Iterator[Row]:
        """Exactly `count` rows (the last streams may be cut short, which is still a valid log)."""
        for n, row in enumerate(self.events()):
            if n >= count:
                return
            yield row


def chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def envelope_of(row: Row) -> dict[str, Any]:
    """A history row as the JSON envelope a service publishes (the relay's message body)."""
    (
        stream_id,
        version,
        event_id,
        event_type,
        schema_version,
        occurred_at,
        recorded_at,
        correlation_id,
        causation_id,
        actor,
        data,
        _origin,
    ) = row
    return {
        "event_id": str(event_id),
        "event_type": event_type,
        "schema_version": schema_version,
        "stream_id": stream_id,
        "stream_version": version,
        "occurred_at": occurred_at.isoformat(),
        "recorded_at": recorded_at.isoformat(),
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "actor": orjson.loads(actor),
        "data": orjson.loads(data),
    }


def department(customers: int, seed: int = 11) -> tuple[History, list[Row]]:
    """Territory, staff, catalogue and `customers` approved customers with credit limits: what
    a service needs to know before it takes orders. Returns the history (its customers, reps and
    SKUs) and the rows."""
    history = History(seed=seed, customers_per_rep=0)
    rows = list(history.territory_events())
    rows += list(history.catalogue_events())
    reps = list(history.territory.reps)
    for n in range(customers):
        rows += list(history.register_customer(reps[n % len(reps)]))
    return history, rows
