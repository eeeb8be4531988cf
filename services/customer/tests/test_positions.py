"""Outlet positions: on the card and in the published events; an individual customer's home
position sealed like the rest of their personal data (and gone with an erasure); a check-in a
supervisor confirmed (the visit service's event) corrects the card once, also on a replay."""

from __future__ import annotations

import uuid
from datetime import timedelta

from salesplatform.events import Actor, Envelope, Role
from salesplatform.store import copy_foreign

INDIVIDUAL = {
    "name": "刘芳",
    "address": "上海市徐汇区漕溪北路8弄3号",
    "phone": "13700001111",
    "nature": "individual",
    "ownership": None,
}
SHOP = {"latitude": 31.2243, "longitude": 121.5448}
HOME = {"latitude": 31.1897, "longitude": 121.4361}


async def events_of(rt, customer_id: str, event_type: str) -> list[dict]:
    async with rt.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT data, causation_id FROM events WHERE stream_id = $1 AND event_type = $2 ORDER BY stream_version",
            f"customer-{customer_id}",
            event_type,
        )
    return [dict(r["data"]) | {"causation_id": r["causation_id"]} for r in rows]


async def test_an_outlets_position_is_on_the_card_and_in_its_events(rt, api, archive, org, outlet) -> None:
    shop = (await api.ok(org.r1, "register_customer", outlet(position=SHOP)))["customer_id"]
    [registered] = await events_of(rt, shop, "customer.registered")
    assert registered["position"] == SHOP and "position" not in registered["personal_fields"]
    assert (await api.get(org.r1, f"/customers/{shop}")).json()["position"] == SHOP

    moved = {"latitude": 31.2250, "longitude": 121.5460}
    r = await api.ok(org.r1, "set_position", {"customer_id": shop, **moved, "reason": "门面搬到隔壁"})
    assert r["sealed"] is False
    [event] = await events_of(rt, shop, "customer.position_set")
    assert event["position"] == moved and event["source"] == "card" and event["personal"] is None
    assert (await api.get(org.s1, f"/customers/{shop}")).json()["position"] == moved

    # Bad coordinates change nothing; another rep's customer is out of line.
    bad = await api.command(org.r1, "set_position", {"customer_id": shop, "latitude": 95, "longitude": 0})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "latitude"
    other = await api.command(org.r2, "set_position", {"customer_id": shop, **SHOP})
    assert other.status_code == 403
    assert len(await events_of(rt, shop, "customer.position_set")) == 1
    assert (await api.get(org.s1, f"/customers/{shop}")).json()["position"] == moved


async def test_an_individuals_home_position_is_sealed_and_erased_with_the_person(rt, api, archive, org, outlet) -> None:
    person = (await api.ok(org.r1, "register_customer", outlet(**INDIVIDUAL, position=HOME)))["customer_id"]
    await api.ok(org.r1, "set_position", {"customer_id": person, "latitude": 31.1898, "longitude": 121.4362})
    [registered] = await events_of(rt, person, "customer.registered")
    [changed] = await events_of(rt, person, "customer.position_set")
    assert registered["position"] is None and "position" in registered["personal_fields"]
    assert changed["position"] is None and changed["personal_fields"] == ["position"] and changed["personal"]
    async with rt.pool.acquire() as conn:
        log_text = "\n".join(r[0] for r in await conn.fetch("SELECT data::text FROM events"))
    assert "31.189" not in log_text and "121.436" not in log_text
    card = (await api.get(org.r1, f"/customers/{person}")).json()
    assert card["position"] == {"latitude": 31.1898, "longitude": 121.4362}

    await api.ok(org.clerk, "erase_personal_data", {"customer_id": person})
    assert (await api.get(org.sm, f"/customers/{person}")).json()["position"] is None
    await rt.rebuild("customer_directory")
    assert (await api.get(org.sm, f"/customers/{person}")).json()["position"] is None


def confirmation(customer_id: str, at, latitude: float, longitude: float) -> Envelope:
    visit_id = str(uuid.uuid4())
    return Envelope(
        event_id=uuid.uuid4(),
        event_type="visit.check_in_confirmed",
        schema_version=1,
        stream_id=f"visit-{visit_id}",
        stream_version=4,
        occurred_at=at,
        recorded_at=at,
        actor=Actor(id="s1", role=Role.supervisor, district="D1"),
        data={
            "visit_id": visit_id,
            "rep_id": "r1",
            "customer_id": customer_id,
            "business_date": at.date().isoformat(),
            "latitude": latitude,
            "longitude": longitude,
            "accuracy_m": 8.0,
            "confirmed_by": "s1",
            "previously_verified": False,
        },
    )


async def test_a_confirmed_check_in_corrects_the_outlets_position_once(rt, api, archive, org, clock) -> None:
    shop = await archive.approved(org.r1, position=SHOP)
    first = confirmation(shop, clock.now(), 31.2261, 121.5466)
    clock.advance(timedelta(hours=1))
    second = confirmation(shop, clock.now(), 31.2262, 121.5467)
    async with rt.pool.acquire() as conn:
        async with conn.transaction():
            await copy_foreign(conn, rt.topology.of("visit").event_stream, [first])
    await rt.runner.run_once()
    await rt.reactors.run_once()
    card = (await api.get(org.r1, f"/customers/{shop}")).json()
    assert card["position"] == {"latitude": 31.2261, "longitude": 121.5466}
    [corrected] = await events_of(rt, shop, "customer.position_set")
    assert corrected["source"] == "check_in" and corrected["visit_id"] == first.data["visit_id"]
    assert corrected["accuracy_m"] == 8.0 and corrected["causation_id"] == str(first.event_id)

    async with rt.pool.acquire() as conn:
        async with conn.transaction():
            await copy_foreign(conn, rt.topology.of("visit").event_stream, [second])
    await rt.runner.run_once()
    await rt.reactors.run_once()
    assert len(await events_of(rt, shop, "customer.position_set")) == 2
    # Reacting again from the start of the log (a crash before the checkpoint) corrects nothing again.
    async with rt.pool.acquire() as conn:
        await conn.execute(
            "UPDATE reactor_checkpoints SET tx_id = '0', position = 0 WHERE name = 'position_corrections'"
        )
    assert await rt.reactors.run_once() > 0
    assert len(await events_of(rt, shop, "customer.position_set")) == 2
    card = (await api.get(org.r1, f"/customers/{shop}")).json()
    assert card["position"] == {"latitude": 31.2262, "longitude": 121.5467}
