"""Test kit of the visit service: actors, a controllable clock, and a harness around a real
Runtime that feeds the local directory the way the foreign-event consumer does
(contract-shaped envelopes copied into the log) and drives commands and queries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from salesplatform.auth import mint
from salesplatform.clock import FixedClock
from salesplatform.commands import Outcome
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY
from salesplatform.events import Actor, Envelope, Role
from salesplatform.service import Runtime
from salesplatform.store import copy_foreign, log_head

SIGNING_KEY = TEST_SIGNING_KEY
# Monday 2 November 2026, 09:00 in Shanghai.
MONDAY_9AM = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)

REP1 = Actor(id="rep-1", role=Role.rep, district="d1", area="a1")
REP2 = Actor(id="rep-2", role=Role.rep, district="d1", area="a1")
REP3 = Actor(id="rep-3", role=Role.rep, district="d2", area="a1")
SUP1 = Actor(id="sup-1", role=Role.supervisor, district="d1", area="a1")
SUP2 = Actor(id="sup-2", role=Role.supervisor, district="d2", area="a1")
AM1 = Actor(id="am-1", role=Role.area_manager, area="a1")
AM2 = Actor(id="am-2", role=Role.area_manager, area="a2")
SM = Actor(id="sm-1", role=Role.sales_manager)
CLERK = Actor(id="clerk-1", role=Role.clerk)
SYSTEM = Actor(id="hotline", role=Role.system)
SOURCE_ACTOR = Actor(id="source", role=Role.system)


def bearer(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(actor, SIGNING_KEY)}"}


class Harness:
    """One running visit service with helpers to feed its directory and drive it."""

    def __init__(self, rt: Runtime, clock: FixedClock, http: httpx.AsyncClient) -> None:
        self.rt = rt
        self.clock = clock
        self.http = http
        self._versions: dict[str, int] = {}

    # -- foreign events -----------------------------------------------------------------------

    def envelope(self, event_type: str, stream_id: str, data: dict[str, Any], version: int | None = None) -> Envelope:
        """A contract-shaped envelope as the producing service would publish it; stream versions
        count up per stream unless given."""
        if version is None:
            version = self._versions.get(stream_id, 0) + 1
        self._versions[stream_id] = max(version, self._versions.get(stream_id, 0))
        now = self.clock.now()
        return Envelope(
            event_id=uuid.uuid4(),
            event_type=event_type,
            schema_version=1,
            stream_id=stream_id,
            stream_version=version,
            occurred_at=now,
            recorded_at=now,
            actor=SOURCE_ACTOR,
            data=data,
        )

    async def feed(self, service: str, *envelopes: Envelope) -> None:
        """What the foreign-event consumer does with messages from NATS, then wait until the
        catch-up projections have applied them."""
        async with self.rt.pool.acquire() as conn:
            async with conn.transaction():
                await copy_foreign(conn, self.rt.topology.of(service).event_stream, list(envelopes))
        await self.settle()

    async def settle(self) -> None:
        """Run the catch-up projections and the reactors until every one has reached the head
        of the log."""
        async with self.rt.pool.acquire() as conn:
            head = await log_head(conn)
        for _ in range(200):
            await self.rt.runner.run_once()
            await self.rt.reactors.run_once()
            async with self.rt.pool.acquire() as conn:
                behind = await conn.fetchval(
                    "SELECT (SELECT count(*) FROM projection_generations g JOIN projections p"
                    " ON p.name = g.name AND p.generation = g.generation"
                    " WHERE (g.tx_id::text::bigint, g.position) < ($1::bigint, $2::bigint)"
                    " AND p.name IN ('customer_directory', 'catalogue'))"
                    " + (SELECT count(*) FROM reactor_checkpoints"
                    " WHERE (tx_id::text::bigint, position) < ($1::bigint, $2::bigint))",
                    head.tx_id,
                    head.position,
                )
            if behind == 0:
                return
        raise AssertionError("projections and reactors did not catch up")

    def customer(self, event_type: str, customer_id: str, version: int | None = None, **data: Any) -> Envelope:
        return self.envelope(event_type, f"customer-{customer_id}", {"customer_id": customer_id, **data}, version)

    def registered(
        self,
        customer_id: str,
        rep_id: str,
        district_id: str,
        area_id: str,
        channel: str = "retail",
        name: str | None = None,
        version: int | None = None,
    ) -> Envelope:
        return self.customer(
            "customer.registered",
            customer_id,
            version,
            name=name or f"Outlet {customer_id}",
            address="1 Market Street",
            phone="021-000000",
            district_id=district_id,
            area_id=area_id,
            division_id="div-1",
            rep_id=rep_id,
            channel=channel,
            nature="company",
            location_type="residential",
            source="rep_visit",
            status="pending",
        )

    def classified(self, customer_id: str, grade: str | None, channel: str = "retail") -> Envelope:
        return self.customer(
            "customer.classified",
            customer_id,
            nature="company",
            ownership="private",
            channel=channel,
            location_type="residential",
            grade=grade,
        )

    def staff(
        self, staff_id: str, role: str, district_id: str | None, area_id: str | None, supervisor_id: str | None = None
    ) -> Envelope:
        return self.envelope(
            "staff.assigned",
            f"staff-{staff_id}",
            {
                "staff_id": staff_id,
                "name": staff_id.title(),
                "role": role,
                "district_id": district_id,
                "area_id": area_id,
                "supervisor_id": supervisor_id,
            },
        )

    def sku(self, sku: str, price: int = 300) -> Envelope:
        return self.envelope(
            "sku.defined",
            f"sku-{sku}",
            {
                "sku": sku,
                "name": sku.title(),
                "brand": "Ours",
                "product_group": "soft_drinks",
                "package": "500ml",
                "list_price_fen": price,
                "floor_price_fen": price - 50,
            },
        )

    def order_placed(
        self, order_id: str, customer_id: str, lines: dict[str, int], placed_at: datetime, visit_id: str | None = None
    ) -> Envelope:
        return self.envelope(
            "order.placed",
            f"order-{order_id}",
            {
                "order_id": order_id,
                "customer_id": customer_id,
                "rep_id": "rep-1",
                "district_id": "d1",
                "area_id": "a1",
                "source": "visit" if visit_id else "phone",
                "visit_id": visit_id,
                "lines": [
                    {
                        "sku": s,
                        "product_group": "soft_drinks",
                        "quantity": q,
                        "unit_price_fen": 300,
                        "amount_fen": 300 * q,
                        "promotion_id": None,
                        "gift_quantity": 0,
                    }
                    for s, q in lines.items()
                ],
                "amount_fen": 300 * sum(lines.values()),
                "business_date": placed_at.date().isoformat(),
                "placed_at": placed_at.isoformat(),
            },
        )

    async def seed(self) -> None:
        """Districts d1, d2 (area a1) and d3 (area a2); reps rep-1, rep-2 (d1, supervisor
        sup-1) and rep-3 (d2, sup-2); customers c1 (B), c2 (A), c3 (C, wholesale) of rep-1,
        c4 of rep-3, c5 (A) of rep-2; four SKUs; cola and water required in retail."""
        territory = [
            self.envelope(
                "territory.district_defined",
                f"territory-{d}",
                {"district_id": d, "name": d.upper(), "area_id": a, "division_id": "div-1"},
            )
            for d, a in (("d1", "a1"), ("d2", "a1"), ("d3", "a2"))
        ]
        staff = [
            self.staff("sup-1", "supervisor", "d1", "a1"),
            self.staff("sup-2", "supervisor", "d2", "a1"),
            self.staff("rep-1", "rep", "d1", "a1", "sup-1"),
            self.staff("rep-2", "rep", "d1", "a1", "sup-1"),
            self.staff("rep-3", "rep", "d2", "a1", "sup-2"),
        ]
        customers = []
        for cid, rep, district, channel, grade in (
            ("c1", "rep-1", "d1", "retail", "B"),
            ("c2", "rep-1", "d1", "retail", "A"),
            ("c3", "rep-1", "d1", "wholesale", "C"),
            ("c4", "rep-3", "d2", "retail", "B"),
            ("c5", "rep-2", "d1", "retail", "A"),
        ):
            customers += [
                self.registered(cid, rep, district, "a1", channel),
                self.customer("customer.approved", cid, customer_code=f"K-{cid}", status="active", approved_by="sup-1"),
                self.classified(cid, grade, channel),
            ]
        await self.feed("customer", *territory, *staff, *customers)
        await self.feed(
            "orders",
            *(self.sku(s) for s in ("cola", "sprite", "water", "juice")),
            self.envelope(
                "required_skus.set", "required_skus-retail", {"channel": "retail", "skus": ["cola", "water"]}
            ),
        )

    # -- commands and queries ------------------------------------------------------------------

    async def cmd(self, actor: Actor, name: str, payload: dict[str, Any], key: str | None = None) -> Outcome:
        return await self.rt.run_command(name, payload, actor, idempotency_key=key)

    async def ok(self, actor: Actor, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        outcome = await self.cmd(actor, name, payload)
        assert outcome.ok, outcome.to_dict()
        return outcome.result or {}

    async def post(self, actor: Actor, name: str, payload: dict[str, Any]) -> httpx.Response:
        return await self.http.post(f"/commands/{name}", json=payload, headers=bearer(actor))

    async def get(self, actor: Actor, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=bearer(actor))

    async def events(self, event_type: str | None = None, own: bool = True) -> list[dict[str, Any]]:
        async with self.rt.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT event_type, stream_id, data, causation_id, actor FROM events"
                " WHERE ($1::text IS NULL OR event_type = $1) AND (NOT $2 OR origin IS NULL) ORDER BY position",
                event_type,
                own,
            )
        return [dict(r) for r in rows]

    async def event_count(self) -> int:
        async with self.rt.pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM events")
