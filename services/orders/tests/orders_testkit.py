"""Helpers and actors shared by the orders tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY
from salesplatform.events import Actor, Envelope, Role, service_actor
from salesplatform.service import Runtime
from salesplatform.store import copy_foreign

SIGNING_KEY = TEST_SIGNING_KEY
# 10:00 in Shanghai on a Monday.
START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)

REP = Actor(id="r1", role=Role.rep, district="d1", area="a1")
OTHER_REP = Actor(id="r2", role=Role.rep, district="d1", area="a1")
SUPERVISOR = Actor(id="s1", role=Role.supervisor, district="d1", area="a1")
AREA_MANAGER = Actor(id="am1", role=Role.area_manager, area="a1")
OTHER_AREA_MANAGER = Actor(id="am2", role=Role.area_manager, area="a2")
SALES_MANAGER = Actor(id="sm1", role=Role.sales_manager)
GENERAL_MANAGER = Actor(id="gm1", role=Role.general_manager)
INSPECTOR = Actor(id="i1", role=Role.inspector)
CLERK = Actor(id="k1", role=Role.clerk)
SYSTEM = Actor(id="erp", role=Role.system)
CUSTOMER_SERVICE = service_actor("customer")


def customer_events(
    customer_id: str,
    *,
    rep_id: str = "r1",
    district_id: str = "d1",
    area_id: str = "a1",
    channel: str = "retail",
    credit_limit_fen: int | None = 100_000_000,
    payment_terms_days: int = 30,
    at: datetime = START,
) -> list[Envelope]:
    """What the customer service publishes for a customer that is registered, approved and
    given credit (the contract's shapes)."""

    def envelope(version: int, event_type: str, data: dict[str, Any]) -> Envelope:
        return Envelope(
            event_id=uuid.uuid4(),
            event_type=event_type,
            schema_version=1,
            stream_id=f"customer-{customer_id}",
            stream_version=version,
            occurred_at=at,
            recorded_at=at,
            actor=CUSTOMER_SERVICE,
            data={"customer_id": customer_id, **data},
        )

    out = [
        envelope(
            1,
            "customer.registered",
            {
                "name": f"Outlet {customer_id}",
                "address": "1 Road",
                "phone": "123",
                "district_id": district_id,
                "area_id": area_id,
                "division_id": "v1",
                "rep_id": rep_id,
                "channel": channel,
                "nature": "company",
                "location_type": "residential",
                "source": "rep_visit",
                "status": "pending",
            },
        ),
        envelope(
            2, "customer.approved", {"customer_code": f"K-{customer_id}", "status": "active", "approved_by": "s1"}
        ),
    ]
    if credit_limit_fen is not None:
        out.append(
            envelope(
                3,
                "customer.credit_limit_set",
                {
                    "credit_rating": "A",
                    "credit_limit_fen": credit_limit_fen,
                    "payment_terms_days": payment_terms_days,
                },
            )
        )
    return out


async def feed_customers(rt: Runtime, envelopes: list[Envelope]) -> None:
    async with rt.pool.acquire() as conn:
        async with conn.transaction():
            await copy_foreign(conn, "CUSTOMER", envelopes)
    await rt.runner.run_once()
    await rt.reactors.run_once()


async def add_customer(rt: Runtime, customer_id: str, **kw: Any) -> None:
    await feed_customers(rt, customer_events(customer_id, **kw))


SKUS = {"COLA": (300, 250, "soda"), "TEA": (400, 320, "tea"), "WATER": (150, 120, "water")}


async def define_skus(rt: Runtime) -> None:
    for sku, (list_fen, floor_fen, group) in SKUS.items():
        out = await rt.run_command(
            "define_sku",
            {
                "sku": sku,
                "name": sku.title(),
                "brand": "Brand",
                "product_group": group,
                "package": "case",
                "list_price_fen": list_fen,
                "floor_price_fen": floor_fen,
            },
            SALES_MANAGER,
        )
        assert out.ok, out.error


async def ok(rt: Runtime, name: str, payload: dict[str, Any], actor: Actor, **kw: Any) -> dict[str, Any]:
    outcome = await rt.run_command(name, payload, actor, **kw)
    assert outcome.ok, (name, outcome.error.to_dict() if outcome.error else None)
    return outcome.result


async def refused(rt: Runtime, name: str, payload: dict[str, Any], actor: Actor) -> tuple[int, str]:
    outcome = await rt.run_command(name, payload, actor)
    assert not outcome.ok, (name, "was accepted", outcome.result)
    return outcome.status, outcome.error.code


async def event_count(rt: Runtime) -> int:
    async with rt.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM events WHERE origin IS NULL")
