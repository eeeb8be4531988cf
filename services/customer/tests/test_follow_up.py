"""The 7-day follow-up rule with a fixed clock: the timer releases neglected prospects, a
visit (from the visit service's stream) or a logged contact keeps them, another rep claims."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import nats

from customer_service.application.timers import FOLLOW_UP_ACTOR, release_neglected_prospects
from salesplatform.devstack.pytest_plugin import nats_login_for_tests
from salesplatform.events import Actor, Envelope, Role


async def caught_up(rt) -> None:
    await rt.runner.run_once()


async def release(rt) -> list[str]:
    await caught_up(rt)
    return (await release_neglected_prospects(rt)).of("release_customer")


async def publish_check_in(rt, visit_rep: str, customer_id: str, at) -> None:
    """The visit service's `visit.checked_in`, as it arrives on its JetStream stream."""
    envelope = Envelope(
        event_id=uuid.uuid4(),
        event_type="visit.checked_in",
        schema_version=1,
        stream_id=f"visit-{uuid.uuid4()}",
        stream_version=2,
        occurred_at=at,
        recorded_at=at,
        actor=Actor(id=visit_rep, role=Role.rep, district="D1"),
        data={
            "visit_id": str(uuid.uuid4()),
            "rep_id": visit_rep,
            "customer_id": customer_id,
            "business_date": at.date().isoformat(),
            "at": at.isoformat(),
            "latitude": 31.2,
            "longitude": 121.5,
        },
    )
    nc = await nats.connect(rt.settings.nats_url, **nats_login_for_tests("visit"))  # as the visit service
    try:
        await nc.jetstream().publish(
            rt.topology.of("visit").event_subject("visit.checked_in"),
            envelope.to_json(),
            headers={"Nats-Msg-Id": str(envelope.event_id)},
        )
    finally:
        await nc.close()

    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with rt.pool.acquire() as conn:
            if await conn.fetchval("SELECT count(*) FROM events WHERE event_id = $1", envelope.event_id):
                return
        assert asyncio.get_running_loop().time() < deadline, "visit event not copied"
        await asyncio.sleep(0.05)


async def test_a_prospect_left_over_7_days_is_released_and_claimed_by_another_rep(rt, api, archive, org, clock) -> None:
    prospect = await archive.approved(org.r1, status="prospect")
    active = await archive.approved(org.r1, status="active")  # the rule is about prospects only

    clock.advance(timedelta(days=7))
    assert await release(rt) == []  # exactly 7 days is not "more than 7"
    clock.advance(timedelta(minutes=1))
    assert await release(rt) == [prospect]
    assert await release(rt) == []

    card = (await api.get(org.s1, f"/customers/{prospect}")).json()
    assert card["rep_id"] is None and card["released_from"] == "r1" and card["status"] == "prospect"
    assert (await api.get(org.s1, f"/customers/{active}")).json()["rep_id"] == "r1"
    released = (await api.get(org.s1, f"/customers/{prospect}/history")).json()["events"][-1]
    assert released["event_type"] == "customer.released" and released["by"] == {
        "id": "service:customer:follow-up",
        "role": "service",
    }
    assert "more than 7 days" in released["reason"]

    r = await api.get(org.r1, f"/customers/{prospect}")
    assert r.status_code == 403  # no longer r1's
    pool = (await api.get(org.r2, "/customers/pool")).json()
    assert [i["customer_id"] for i in pool["items"]] == [prospect] and pool["items"][0]["released_from"] == "r1"
    r = await api.get(org.r3, "/customers/pool", district_id="D1")
    assert r.status_code == 403 and r.json()["error"]["code"] == "outside_line"

    r = await api.command(org.r1, "claim_customer", {"customer_id": prospect})
    assert r.status_code == 409 and r.json()["error"]["code"] == "cannot_reclaim"
    r = await api.command(org.r3, "claim_customer", {"customer_id": prospect})
    assert r.status_code == 403 and r.json()["error"]["code"] == "outside_line"
    assert (await api.ok(org.r2, "claim_customer", {"customer_id": prospect}))["rep_id"] == "r2"
    r = await api.command(org.r3, "claim_customer", {"customer_id": prospect})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_released"
    assert (await api.get(org.r2, f"/customers/{prospect}")).json()["rep_id"] == "r2"

    # The claim starts r2's own 7 days.
    clock.advance(timedelta(days=7, minutes=1))
    assert await release(rt) == [prospect]


async def test_a_logged_contact_or_a_visit_by_the_rep_keeps_the_prospect(rt, api, archive, org, clock) -> None:
    called = await archive.approved(org.r1, status="prospect")
    visited = await archive.approved(org.r1, status="prospect")
    visited_by_other = await archive.approved(org.r1, status="prospect")

    clock.advance(timedelta(days=5))
    await api.ok(org.r1, "log_contact", {"customer_id": called, "channel": "wechat", "note": "约下周见老板"})
    await publish_check_in(rt, "r1", visited, clock.now())
    await publish_check_in(rt, "r2", visited_by_other, clock.now())  # not its rep: does not count

    clock.advance(timedelta(days=3))  # 8 days after approval, 3 after the follow-ups
    assert await release(rt) == [visited_by_other]
    r = await rt.run_command("release_customer", {"customer_id": called, "rep_id": "r1"}, FOLLOW_UP_ACTOR)
    assert not r.ok and r.error.code == "followed_up_recently"
    r = await rt.run_command("release_customer", {"customer_id": visited, "rep_id": "r1"}, FOLLOW_UP_ACTOR)
    assert not r.ok and r.error.code == "followed_up_recently"

    clock.advance(timedelta(days=4, minutes=1))  # more than 7 days after the follow-ups
    assert sorted(await release(rt)) == sorted([called, visited])


async def test_only_the_follow_up_timer_releases(api, archive, org) -> None:
    """The service releases on its own behalf; no person and no outside system may."""
    prospect = await archive.approved(org.r1, status="prospect")
    for actor in (org.r1, org.s1, org.sm, org.system):
        r = await api.command(actor, "release_customer", {"customer_id": prospect, "rep_id": "r1"})
        assert r.status_code == 403


async def test_a_rerun_of_the_timer_on_stale_candidates_releases_nobody_twice(rt, archive, org, clock) -> None:
    prospect = await archive.approved(org.r1, status="prospect")
    rt.runner.stop()  # the follow-up projection now moves only when told to
    clock.advance(timedelta(days=8))
    assert await release(rt) == [prospect]
    # Not caught up: the projection still lists the prospect as due; the same idempotency key
    # (customer, rep, follow-up instant) returns the first result and appends nothing.
    rerun = await release_neglected_prospects(rt)
    assert rerun.of("release_customer") == [] and rerun.already == [prospect]
    async with rt.pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM events WHERE event_type = 'customer.released' AND stream_id = $1",
                f"customer-{prospect}",
            )
            == 1
        )
        assert await conn.fetchval("SELECT count(*) FROM command_results WHERE command = 'release_customer'") == 1
