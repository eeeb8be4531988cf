"""Test kit of the reporting service: contract-shaped envelopes of the other services' events,
fed into the local log as the NATS consumer does, and a harness around a real Runtime."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson

from reporting_service.adapters.rows import ROWS
from salesplatform.auth import mint
from salesplatform.clock import FixedClock
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY
from salesplatform.events import Actor, Envelope, Role
from salesplatform.service import Runtime
from salesplatform.store import copy_foreign

SIGNING_KEY = TEST_SIGNING_KEY
SHANGHAI = timezone(timedelta(hours=8))
SYSTEM = Actor(id="system", role=Role.system)

MANAGER = Actor(id="m1", role=Role.sales_manager)
OPERATOR = Actor(id="ops1", role=Role.operator)
GENERAL = Actor(id="g1", role=Role.general_manager)
CLERK = Actor(id="k1", role=Role.clerk)
INSPECTOR = Actor(id="i1", role=Role.inspector)
AREA_A1 = Actor(id="am1", role=Role.area_manager, area="a1")
AREA_A2 = Actor(id="am2", role=Role.area_manager, area="a2")
SUP_D1 = Actor(id="sup1", role=Role.supervisor, district="d1", area="a1")
SUP_D2 = Actor(id="sup2", role=Role.supervisor, district="d2", area="a1")
REP_R1 = Actor(id="r1", role=Role.rep, district="d1", area="a1")
REP_R2 = Actor(id="r2", role=Role.rep, district="d1", area="a1")
REP_R4 = Actor(id="r4", role=Role.rep, district="d3", area="a2")

ORIGINS = {"customer": "CUSTOMER", "visit": "VISIT", "orders": "ORDERS"}


def local(day: str, hour: int = 9, minute: int = 0) -> datetime:
    """A moment of a business day in the company time zone, as UTC."""
    d = date.fromisoformat(day)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@dataclass
class Log:
    """Builds envelopes with gapless stream versions, as the producing services would."""

    versions: dict[str, int] = field(default_factory=dict)

    def event(
        self,
        source: str,
        stream_id: str,
        event_type: str,
        data: dict[str, Any],
        at: datetime,
        actor: Actor = SYSTEM,
    ) -> tuple[str, Envelope]:
        version = self.versions.get(stream_id, 0) + 1
        self.versions[stream_id] = version
        envelope = Envelope(
            event_id=uuid.uuid4(),
            event_type=event_type,
            schema_version=1,
            stream_id=stream_id,
            stream_version=version,
            occurred_at=at,
            recorded_at=at,
            actor=actor,
            data=data,
        )
        return ORIGINS[source], envelope


Fed = tuple[str, Envelope]


async def copy(rt: Runtime, events: Iterable[Fed]) -> int:
    """Copy envelopes into the local log in one transaction, exactly as the consumer does."""
    by_origin: dict[str, list[Envelope]] = {}
    for origin, envelope in events:
        by_origin.setdefault(origin, []).append(envelope)
    stored = 0
    async with rt.pool.acquire() as conn, conn.transaction():
        for origin, envelopes in by_origin.items():
            stored += len(await copy_foreign(conn, origin, envelopes))
    return stored


async def settle(rt: Runtime, timeout: float = 15.0) -> None:
    """Run the catch-up projections until each has applied the whole log."""
    names = [p.name for p in rt.definition.projections]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        while await rt.runner.run_once():
            pass
        async with rt.pool.acquire() as conn:
            behind = await conn.fetchval(
                """
                SELECT count(*) FROM projections p
                JOIN projection_generations g ON g.name = p.name AND g.generation = p.generation
                WHERE p.name = ANY($1::text[]) AND EXISTS (
                    SELECT 1 FROM events e WHERE (e.tx_id, e.position) > (g.tx_id, g.position))
                """,
                names,
            )
        if not behind:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("projections did not catch up")
        await asyncio.sleep(0.02)


@dataclass
class Harness:
    rt: Runtime
    clock: FixedClock
    client: httpx.AsyncClient

    async def feed(self, events: Iterable[Fed]) -> int:
        stored = await copy(self.rt, events)
        await settle(self.rt)
        return stored

    async def get(self, path: str, actor: Actor, **params: Any) -> httpx.Response:
        params = {k.rstrip("_"): v for k, v in params.items() if v is not None}
        return await self.client.get(path, params=params, headers=auth(actor))

    async def report(self, path: str, actor: Actor, **params: Any) -> list[dict[str, Any]]:
        response = await self.get(path, actor, **params)
        assert response.status_code == 200, response.text
        return response.json()["items"]

    async def command(self, name: str, payload: dict[str, Any], actor: Actor) -> httpx.Response:
        return await self.client.post(f"/commands/{name}", json=payload, headers=auth(actor))


def auth(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(actor, SIGNING_KEY)}"}


def by(items: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    """Index report rows by one key (or a tuple of keys)."""
    if len(keys) == 1:
        return {i[keys[0]]: i for i in items}
    return {tuple(i[k] for k in keys): i for i in items}


# -- the month ------------------------------------------------------------------------------


class Month:
    """November 2026 of a small sales organisation, event by event (README of the tests:
    test_scenario.py works out every expected figure by hand from this story)."""

    def __init__(self) -> None:
        self.log = Log()
        self.visits = 0

    def ev(
        self, source: str, stream: str, event_type: str, data: dict[str, Any], at: datetime, actor: Actor = SYSTEM
    ) -> Fed:
        return self.log.event(source, stream, event_type, data, at, actor)

    # organisation

    def organisation(self) -> list[Fed]:
        at = local("2026-01-05", 8)
        out = [
            self.ev(
                "customer", "territory-v1", "territory.division_defined", {"division_id": "v1", "name": "South"}, at
            )
        ]
        for area, name in (("a1", "East"), ("a2", "West")):
            out.append(
                self.ev(
                    "customer",
                    f"territory-{area}",
                    "territory.area_defined",
                    {"area_id": area, "name": name, "division_id": "v1"},
                    at,
                )
            )
        for district, area in (("d1", "a1"), ("d2", "a1"), ("d3", "a2")):
            out.append(
                self.ev(
                    "customer",
                    f"territory-{district}",
                    "territory.district_defined",
                    {"district_id": district, "name": f"District {district}", "area_id": area, "division_id": "v1"},
                    at,
                )
            )
        for staff, role, district, area in (
            ("sup1", "supervisor", "d1", "a1"),
            ("r1", "rep", "d1", "a1"),
            ("r2", "rep", "d1", "a1"),
            ("r3", "rep", "d2", "a1"),
            ("r4", "rep", "d3", "a2"),
        ):
            out.append(
                self.ev(
                    "customer",
                    f"staff-{staff}",
                    "staff.assigned",
                    {
                        "staff_id": staff,
                        "name": f"Staff {staff}",
                        "role": role,
                        "district_id": district,
                        "area_id": area,
                        "supervisor_id": None if role == "supervisor" else "sup1",
                    },
                    at,
                )
            )
        for sku, group, price in (("s1", "beverage", 100), ("s2", "beverage", 250), ("s3", "snack", 400)):
            out.append(
                self.ev(
                    "orders",
                    f"sku-{sku}",
                    "sku.defined",
                    {
                        "sku": sku,
                        "name": f"Product {sku}",
                        "brand": "B",
                        "product_group": group,
                        "package": "box",
                        "list_price_fen": price,
                        "floor_price_fen": price,
                    },
                    at,
                )
            )
        return out

    def customer(
        self,
        cid: str,
        rep: str,
        district: str,
        area: str,
        *,
        grade: str | None,
        channel: str,
        approved: str | None,
        rating: str | None = None,
        limit: int | None = None,
        registered: str | None = None,
    ) -> list[Fed]:
        stream = f"customer-{cid}"
        reg_at = local(registered or approved or "2026-06-01", 9)
        out = [
            self.ev(
                "customer",
                stream,
                "customer.registered",
                {
                    "customer_id": cid,
                    "name": f"Outlet {cid}",
                    "address": "1 Road",
                    "phone": "138",
                    "district_id": district,
                    "area_id": area,
                    "division_id": "v1",
                    "rep_id": rep,
                    "channel": channel,
                    "nature": "company",
                    "location_type": "residential",
                    "source": "rep_visit",
                    "status": "pending",
                },
                reg_at,
            )
        ]
        if approved:
            at = local(approved, 11)
            out.append(
                self.ev(
                    "customer",
                    stream,
                    "customer.approved",
                    {"customer_id": cid, "customer_code": f"K-{cid}", "status": "active", "approved_by": "sup1"},
                    at,
                )
            )
            out.append(
                self.ev(
                    "customer",
                    stream,
                    "customer.classified",
                    {
                        "customer_id": cid,
                        "nature": "company",
                        "ownership": "private",
                        "channel": channel,
                        "location_type": "residential",
                        "grade": grade,
                    },
                    at,
                )
            )
        if rating:
            out.append(
                self.ev(
                    "customer",
                    stream,
                    "customer.credit_limit_set",
                    {"customer_id": cid, "credit_rating": rating, "credit_limit_fen": limit, "payment_terms_days": 30},
                    local(approved or "2026-06-01", 12),
                )
            )
        return out

    def customers(self) -> list[Fed]:
        out = []
        out += self.customer(
            "c1", "r1", "d1", "a1", grade="A", channel="retail", approved="2026-06-01", rating="AA", limit=100_000
        )
        out += self.customer(
            "c2", "r1", "d1", "a1", grade="B", channel="wholesale", approved="2026-06-01", rating="A", limit=50_000
        )
        out += self.customer(
            "c3", "r2", "d1", "a1", grade="C", channel="retail", approved="2026-06-01", rating="B", limit=2_000
        )
        out += self.customer(
            "c4", "r3", "d2", "a1", grade="A", channel="chain", approved="2026-06-01", rating="AA", limit=200_000
        )
        out += self.customer("c5", "r4", "d3", "a2", grade="B", channel="retail", approved="2026-06-01")
        out += self.customer(
            "c6", "r4", "d3", "a2", grade=None, channel="retail", approved=None, registered="2026-11-05"
        )
        out += self.customer("c7", "r3", "d2", "a1", grade="C", channel="retail", approved="2026-08-01")
        out += self.customer("c8", "r3", "d2", "a1", grade="C", channel="retail", approved="2026-06-01")
        out.append(
            self.ev(
                "customer",
                "customer-c8",
                "customer.status_changed",
                {"customer_id": "c8", "status": "lost", "reason": "closed down"},
                local("2026-10-15"),
            )
        )
        out += self.customer("c9", "r2", "d1", "a1", grade="C", channel="retail", approved="2026-11-20")
        return out

    # visits

    def visit(
        self,
        rep: str,
        customer: str,
        day: str,
        *,
        planned: bool = True,
        done: bool = True,
        order: str | None = None,
        suggested: bool = False,
        adopted: bool = False,
        audit: tuple[list[str], list[str], bool, bool] | None = None,
        cooler: tuple[bool, bool] | None = None,
        position: tuple[bool | None, bool] | None = None,
    ) -> list[Fed]:
        """`position`: (position_verified, confirmed by a supervisor) on the check-in; None: a
        check-in from before positions were judged."""
        self.visits += 1
        vid = f"v{self.visits}"
        stream = f"visit-{vid}"
        base = {"visit_id": vid, "rep_id": rep, "customer_id": customer, "business_date": day}
        at = local(day, 10)
        out = [
            self.ev(
                "visit",
                stream,
                "visit.planned",
                {**base, "route_id": None, "planned": planned, "sequence": 1},
                local(day, 7),
            )
        ]
        if not done:
            out.append(self.ev("visit", stream, "visit.missed", base, local(day, 23, 59)))
            return out
        judged = {}
        if position is not None:
            judged = {"accuracy_m": 10.0, "position_verified": position[0], "flags": [] if position[0] else ["x"]}
        out.append(
            self.ev(
                "visit",
                stream,
                "visit.checked_in",
                {**base, "at": at.isoformat(), "latitude": 31.2, "longitude": 121.4, **judged},
                at,
            )
        )
        if position is not None and position[1]:
            out.append(
                self.ev(
                    "visit",
                    stream,
                    "visit.check_in_confirmed",
                    {
                        **base,
                        "latitude": 31.2,
                        "longitude": 121.4,
                        "confirmed_by": "s1",
                        "previously_verified": position[0],
                    },
                    at,
                )
            )
        if audit:
            required, present, tags, display = audit
            out.append(
                self.ev(
                    "visit",
                    stream,
                    "visit.merchandising_audited",
                    {
                        **base,
                        "required_skus": required,
                        "present_skus": present,
                        "price_tags_ok": tags,
                        "display_ok": display,
                    },
                    at,
                )
            )
        if cooler:
            compliant, misused = cooler
            out.append(
                self.ev(
                    "visit",
                    stream,
                    "visit.cooler_checked",
                    {
                        **base,
                        "cooler_id": "k1",
                        "at_outlet": True,
                        "best_position": True,
                        "powered": True,
                        "light_on": True,
                        "clean": compliant,
                        "working": True,
                        "required_packs": compliant,
                        "misused": misused,
                        "compliant": compliant,
                    },
                    at,
                )
            )
        if suggested:
            out.append(
                self.ev(
                    "visit", stream, "visit.order_suggested", {**base, "lines": [{"sku": "s1", "quantity": 10}]}, at
                )
            )
        if order:
            out.append(
                self.ev(
                    "visit",
                    stream,
                    "visit.order_taken",
                    {
                        **base,
                        "order_id": order,
                        "lines": [{"sku": "s1", "quantity": 1, "unit_price_fen": None}],
                        "suggested_adopted": adopted,
                    },
                    at,
                )
            )
        else:
            out.append(self.ev("visit", stream, "visit.order_refused", {**base, "reason": "enough stock"}, at))
        out.append(
            self.ev(
                "visit",
                stream,
                "visit.checked_out",
                {**base, "at": at.isoformat(), "successful": order is not None},
                at,
            )
        )
        return out

    def visits_of_month(self) -> list[Fed]:
        out = []
        out += self.visit(
            "r1",
            "c1",
            "2026-11-02",
            order="o1",
            suggested=True,
            adopted=True,
            audit=(["s1", "s2", "s3"], ["s1", "s2"], True, True),
            cooler=(True, False),
            position=(True, False),
        )
        out += self.visit(
            "r1",
            "c2",
            "2026-11-03",
            order="o2",
            suggested=True,
            adopted=False,
            audit=(["s1", "s2"], ["s1", "s2", "s3"], False, True),
            position=(False, False),
        )
        out += self.visit("r1", "c1", "2026-11-09", cooler=(False, True), position=(False, True))
        out += self.visit("r1", "c2", "2026-11-10", done=False)
        out += self.visit("r1", "c1", "2026-11-16", planned=False, order="o6")
        out += self.visit("r2", "c3", "2026-11-03", order="o3", position=(None, False))
        out += self.visit("r2", "c3", "2026-11-17", order="o9")
        out += self.visit("r3", "c4", "2026-11-09", order="o4")
        out += self.visit("r3", "c4", "2026-11-20", order="o7")
        out += self.visit("r4", "c5", "2026-11-10", order="o5")
        return out

    # orders

    def order(
        self,
        oid: str,
        customer: str,
        rep: str,
        district: str,
        area: str,
        day: str,
        lines: list[tuple[str, str, int, int]],
        *,
        promotion: str | None = None,
        gifts: int = 0,
        delivered_at: datetime | None = None,
        on_time: bool = True,
        cancelled: str | None = None,
    ) -> list[Fed]:
        stream = f"order-{oid}"
        placed_at = local(day, 10, 30)
        order_lines = [
            {
                "sku": sku,
                "product_group": group,
                "quantity": q,
                "unit_price_fen": price,
                "amount_fen": q * price,
                "promotion_id": promotion,
                "gift_quantity": gifts,
            }
            for sku, group, q, price in lines
        ]
        out = [
            self.ev(
                "orders",
                stream,
                "order.placed",
                {
                    "order_id": oid,
                    "customer_id": customer,
                    "rep_id": rep,
                    "district_id": district,
                    "area_id": area,
                    "source": "visit",
                    "visit_id": None,
                    "lines": order_lines,
                    "amount_fen": sum(ln["amount_fen"] for ln in order_lines),
                    "business_date": day,
                    "placed_at": placed_at.isoformat(),
                },
                placed_at,
            )
        ]
        out.append(
            self.ev(
                "orders",
                stream,
                "order.confirmed",
                {
                    "order_id": oid,
                    "confirmed_at": placed_at.isoformat(),
                    "deliver_by": (placed_at + timedelta(hours=24)).isoformat(),
                },
                placed_at,
            )
        )
        if delivered_at:
            out.append(
                self.ev("orders", stream, "order.dispatched", {"order_id": oid}, delivered_at - timedelta(hours=2))
            )
            out.append(
                self.ev(
                    "orders",
                    stream,
                    "order.delivered",
                    {
                        "order_id": oid,
                        "customer_id": customer,
                        "delivered_at": delivered_at.isoformat(),
                        "on_time": on_time,
                    },
                    delivered_at,
                )
            )
        if cancelled:
            out.append(
                self.ev(
                    "orders", stream, "order.cancelled", {"order_id": oid, "reason": "customer"}, local(cancelled, 12)
                )
            )
        return out

    def orders_of_month(self) -> list[Fed]:
        s1, s2, s3 = ("s1", "beverage"), ("s2", "beverage"), ("s3", "snack")
        out = []
        out += self.order(
            "o1",
            "c1",
            "r1",
            "d1",
            "a1",
            "2026-11-02",
            [(*s1, 10, 100), (*s2, 4, 250)],
            delivered_at=local("2026-11-02", 15),
        )
        out += self.order(
            "o2", "c2", "r1", "d1", "a1", "2026-11-03", [(*s3, 5, 400)], delivered_at=local("2026-11-04", 10)
        )
        # The late delivery: placed on the 3rd, delivered on the 5th.
        out += self.order(
            "o3",
            "c3",
            "r2",
            "d1",
            "a1",
            "2026-11-03",
            [(*s1, 20, 100), (*s3, 2, 400)],
            delivered_at=local("2026-11-05", 9),
            on_time=False,
        )
        out += self.order(
            "o4",
            "c4",
            "r3",
            "d2",
            "a1",
            "2026-11-09",
            [(*s2, 8, 250)],
            promotion="p1",
            gifts=1,
            delivered_at=local("2026-11-09", 16),
        )
        out += self.order(
            "o5",
            "c5",
            "r4",
            "d3",
            "a2",
            "2026-11-10",
            [(*s1, 5, 100), (*s2, 2, 250)],
            delivered_at=local("2026-11-10", 16),
        )
        out += self.order(
            "o6", "c1", "r1", "d1", "a1", "2026-11-16", [(*s3, 10, 400)], delivered_at=local("2026-11-16", 17)
        )
        out += self.order("o7", "c4", "r3", "d2", "a1", "2026-11-20", [(*s1, 30, 100)])
        out += self.order("o8", "c2", "r1", "d1", "a1", "2026-11-23", [(*s2, 4, 250)], cancelled="2026-11-23")
        # Delivered at 01:30 on the 18th in Shanghai, which is still the 17th in UTC.
        out += self.order(
            "o9",
            "c3",
            "r2",
            "d1",
            "a1",
            "2026-11-17",
            [(*s1, 1, 100)],
            delivered_at=datetime(2026, 11, 17, 17, 30, tzinfo=UTC),
        )
        out.append(
            self.ev(
                "orders",
                "promotion-p1",
                "promotion.planned",
                {
                    "promotion_id": "p1",
                    "name": "Winter cola",
                    "starts_on": "2026-11-09",
                    "ends_on": "2026-11-15",
                    "skus": ["s2"],
                    "channels": [],
                    "discount_percent": None,
                    "gift_rule": {"buy": 8, "gift": 1},
                    "budget_fen": 5000,
                },
                local("2026-11-01"),
            )
        )
        out.append(
            self.ev(
                "orders",
                "promotion-p1",
                "promotion.cost_incurred",
                {"promotion_id": "p1", "order_id": "o4", "cost_fen": 300},
                local("2026-11-09", 16),
            )
        )
        # An order that took the promotion and was then rejected gives its cost back.
        out.append(
            self.ev(
                "orders",
                "promotion-p1",
                "promotion.cost_incurred",
                {"promotion_id": "p1", "order_id": "o10", "cost_fen": 200},
                local("2026-11-10", 9),
            )
        )
        out.append(
            self.ev(
                "orders",
                "promotion-p1",
                "promotion.cost_released",
                {"promotion_id": "p1", "order_id": "o10", "cost_fen": 200},
                local("2026-11-10", 12),
            )
        )
        return out

    def ret(
        self,
        rid: str,
        order: str,
        customer: str,
        lines: list[tuple[str, int, int]],
        reason: str,
        requested: str,
        *,
        outcome: str,
        decided: str,
        resolution: str | None = None,
        amount: int = 0,
        scope: str = "part",
    ) -> list[Fed]:
        stream = f"return-{rid}"
        out = [
            self.ev(
                "orders",
                stream,
                "return.requested",
                {
                    "return_id": rid,
                    "order_id": order,
                    "customer_id": customer,
                    "lines": [{"sku": sku, "quantity": q, "amount_fen": a} for sku, q, a in lines],
                    "scope": scope,
                    "reason": reason,
                    "detail": "-",
                },
                local(requested, 14),
            )
        ]
        if reason in ("quality_defect", "selection_error"):
            out.append(
                self.ev(
                    "orders",
                    stream,
                    "return.inspected",
                    {"return_id": rid, "inspector_id": "i1", "confirmed": outcome == "approved", "notes": ""},
                    local(decided, 9),
                )
            )
        if outcome == "approved":
            out.append(
                self.ev(
                    "orders", stream, "return.approved", {"return_id": rid, "approver_id": "m1"}, local(decided, 11)
                )
            )
            if resolution:
                out.append(
                    self.ev(
                        "orders",
                        stream,
                        "return.resolved",
                        {"return_id": rid, "resolution": resolution, "amount_fen": amount},
                        local(decided, 15),
                    )
                )
        else:
            out.append(
                self.ev("orders", stream, "return.rejected", {"return_id": rid, "reason": "used"}, local(decided, 11))
            )
        return out

    def returns_of_month(self) -> list[Fed]:
        out = []
        out += self.ret(
            "ret1",
            "o1",
            "c1",
            [("s1", 2, 200)],
            "quality_defect",
            "2026-11-05",
            outcome="approved",
            decided="2026-11-06",
            resolution="exchange",
        )
        out += self.ret(
            "ret2",
            "o3",
            "c3",
            [("s3", 2, 800)],
            "wrong_shipment",
            "2026-11-06",
            outcome="approved",
            decided="2026-11-07",
            resolution="refund",
            amount=800,
        )
        out += self.ret(
            "ret3",
            "o5",
            "c5",
            [("s2", 1, 250)],
            "selection_error",
            "2026-11-11",
            outcome="rejected",
            decided="2026-11-12",
        )
        out += self.ret(
            "ret4",
            "o4",
            "c4",
            [("s2", 1, 250)],
            "transit_damage",
            "2026-11-11",
            outcome="approved",
            decided="2026-11-12",
            resolution="compensation",
            amount=250,
        )
        return out

    # receivables

    def receivables(self) -> list[Fed]:
        out = []
        for iid, order, customer, amount, issued, due in (
            ("i0", "o-old-1", "c2", 5000, "2026-07-01", "2026-07-31"),
            ("i1", "o1", "c1", 2000, "2026-11-02", "2026-12-02"),
            ("i4", "o-old-2", "c3", 3000, "2026-09-15", "2026-10-15"),
            ("i5", "o-old-3", "c4", 10000, "2026-09-01", "2026-10-01"),
            ("i6", "o-old-4", "c5", 1000, "2026-08-20", "2026-09-01"),
            ("i7", "o-old-5", "c1", 500, "2026-10-25", "2026-11-10"),
        ):
            out.append(
                self.ev(
                    "orders",
                    f"invoice-{iid}",
                    "invoice.issued",
                    {
                        "invoice_id": iid,
                        "order_id": order,
                        "customer_id": customer,
                        "amount_fen": amount,
                        "issued_on": issued,
                        "due_on": due,
                    },
                    local(issued),
                )
            )
        out.append(
            self.ev(
                "orders",
                "payment-p1",
                "payment.received",
                {
                    "payment_id": "pay1",
                    "customer_id": "c2",
                    "amount_fen": 1000,
                    "received_on": "2026-08-15",
                    "allocations": [{"invoice_id": "i0", "amount_fen": 1000}],
                },
                local("2026-08-15"),
            )
        )
        out.append(
            self.ev(
                "orders",
                "payment-p2",
                "payment.received",
                {
                    "payment_id": "pay2",
                    "customer_id": "c4",
                    "amount_fen": 10000,
                    "received_on": "2026-11-25",
                    "allocations": [{"invoice_id": "i5", "amount_fen": 10000}],
                },
                local("2026-11-25"),
            )
        )
        return out

    # service quality

    def complaints_and_surveys(self) -> list[Fed]:
        out = []

        def received(cid: str, customer: str, category: str, rep: str | None, at: datetime) -> Fed:
            return self.ev(
                "visit",
                f"complaint-{cid}",
                "complaint.received",
                {
                    "complaint_id": cid,
                    "customer_id": customer,
                    "channel": "phone",
                    "category": category,
                    "severity": "normal",
                    "received_at": at.isoformat(),
                    "rep_id": rep,
                },
                at,
            )

        at1 = local("2026-11-04", 10)
        out.append(received("cp1", "c1", "quality", None, at1))
        out.append(
            self.ev(
                "visit",
                "complaint-cp1",
                "complaint.acknowledged",
                {"complaint_id": "cp1", "at": (at1 + timedelta(hours=5)).isoformat(), "within_sla": True},
                at1 + timedelta(hours=5),
            )
        )
        out.append(
            self.ev(
                "visit", "complaint-cp1", "complaint.routed", {"complaint_id": "cp1", "department": "production"}, at1
            )
        )
        out.append(
            self.ev(
                "visit",
                "complaint-cp1",
                "complaint.resolved",
                {"complaint_id": "cp1", "resolution": "replaced", "customer_misuse": False},
                local("2026-11-08"),
            )
        )
        out.append(
            self.ev(
                "visit",
                "complaint-cp1",
                "complaint.closed",
                {"complaint_id": "cp1", "customer_confirmed": True},
                local("2026-11-09"),
            )
        )
        at2 = local("2026-11-06", 9)
        out.append(received("cp2", "c3", "logistics", "r2", at2))
        out.append(
            self.ev(
                "visit",
                "complaint-cp2",
                "complaint.sla_breached",
                {"complaint_id": "cp2", "customer_id": "c3"},
                at2 + timedelta(hours=48),
            )
        )
        out.append(
            self.ev(
                "visit",
                "complaint-cp2",
                "complaint.acknowledged",
                {"complaint_id": "cp2", "at": (at2 + timedelta(hours=50)).isoformat(), "within_sla": False},
                at2 + timedelta(hours=50),
            )
        )
        out.append(received("cp3", "c4", "service", "r3", local("2026-11-20", 15)))

        def survey(sid: str, customer: str, period: str, satisfied: bool, rep: str, day: str) -> Fed:
            return self.ev(
                "visit",
                f"survey-{sid}",
                "survey.recorded",
                {
                    "survey_id": sid,
                    "customer_id": customer,
                    "period": period,
                    "scores": {"quality": 5 if satisfied else 2},
                    "satisfied": satisfied,
                    "rep_id": rep,
                },
                local(day),
            )

        out.append(survey("sv1", "c1", "2025H1", True, "r1", "2025-06-20"))
        out.append(survey("sv2", "c1", "2026H2", True, "r1", "2026-11-20"))
        out.append(survey("sv3", "c2", "2026H2", True, "r1", "2026-11-20"))
        out.append(survey("sv4", "c4", "2026H2", True, "r3", "2026-11-21"))
        out.append(survey("sv5", "c5", "2026H2", False, "r4", "2026-11-21"))
        return out

    def everything(self) -> list[Fed]:
        return (
            self.organisation()
            + self.customers()
            + self.visits_of_month()
            + self.orders_of_month()
            + self.returns_of_month()
            + self.receivables()
            + self.complaints_and_surveys()
        )


async def documented_rows(h: Harness, path: str, actor: Actor, **params: Any) -> list[dict[str, Any]]:
    """A report's rows, each checked strictly against the row model its route documents: every
    column it declares, of its type, and no other (adapters/rows.py)."""
    response = await h.get(path, actor, **params)
    assert response.status_code == 200, response.text
    page = response.json()
    model = ROWS[page["report"]]
    for item in page["items"]:
        model.model_validate_json(orjson.dumps(item), strict=True)
    return page["items"]
