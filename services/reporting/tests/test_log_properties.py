"""What the reports owe to the log: copies of the same events change nothing, a rebuild gives the
very same read models, a late event corrects the period it belongs to."""

from __future__ import annotations

import asyncio
from typing import Any

from reporting_testkit import MANAGER, OPERATOR, Month, auth, by, copy, local, settle

from salesplatform.projections import reading, rebuild
from salesplatform.store import copy_foreign

REPORTS: list[tuple[str, dict[str, Any]]] = [
    ("/reports/sales", {"from_": "2026-11-01", "to": "2026-11-30", "group_by": "rep,customer,sku"}),
    ("/reports/composition", {"from_": "2026-11-01", "to": "2026-11-30", "by": "channel"}),
    ("/reports/credit", {"from_": "2026-11-01", "to": "2026-11-30", "group_by": "customer"}),
    ("/reports/kpi", {"from_": "2026-11-01", "to": "2026-11-30"}),
    ("/reports/receivables", {"as_of": "2026-11-30"}),
    ("/reports/returns", {"from_": "2026-11-01", "to": "2026-11-30", "group_by": "reason,sku"}),
    ("/reports/complaints", {"from_": "2026-11-01", "to": "2026-11-30"}),
    ("/reports/promotions", {}),
    ("/reports/satisfaction", {"group_by": "rep"}),
    ("/reports/customer-base", {"from_": "2026-11-01", "as_of": "2026-11-30", "group_by": "rep"}),
    ("/reports/targets", {"month": "2026-11"}),
]


async def reports(h) -> dict[str, Any]:
    return {path: await h.report(path, MANAGER, **params) for path, params in REPORTS}


async def tables(h) -> dict[str, list[tuple]]:
    """Every row of every read model, in a stable order."""
    out: dict[str, list[tuple]] = {}
    for p in h.rt.definition.projections + h.rt.bus.inline_projections:
        async with reading(h.rt.pool, p.name) as conn:
            for t in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"):
                rows = await conn.fetch(f"SELECT * FROM {t['tablename']}")
                out[f"{p.name}.{t['tablename']}"] = sorted((tuple(r) for r in rows), key=repr)
    return out


async def test_the_same_events_copied_twice_change_nothing(h) -> None:
    events = Month().everything()
    assert await h.feed(events) == len(events)
    before, rows = await reports(h), await tables(h)
    assert rows["sales.sales_daily"] and rows["field_work.kpi_daily"]
    # Redelivered: the consumer's copy keeps each event once (by event id), so nothing is
    # applied again.
    assert await copy(h.rt, events) == 0
    assert await copy(h.rt, events[:40]) == 0
    await settle(h.rt)
    assert await reports(h) == before
    assert await tables(h) == rows


async def test_rebuilding_all_reports_gives_identical_results_while_they_keep_answering(month) -> None:
    h = month
    await h.command("set_target", {"month": "2026-11", "level": "rep", "subject_id": "r1", "amount_fen": 7000}, MANAGER)
    before, rows = await reports(h), await tables(h)

    stop = asyncio.Event()
    answers: list[int] = []

    async def keep_reading() -> None:
        while not stop.is_set():
            response = await h.get("/reports/sales", MANAGER, from_="2026-11-01", to="2026-11-30", period="total")
            answers.append(response.status_code)
            await asyncio.sleep(0)

    reader = asyncio.create_task(keep_reading())
    started = await h.client.post("/admin/rebuild-all", headers=auth(OPERATOR))
    assert started.status_code == 202, started.text
    assert started.json()["projections"] == [
        "directory",
        "sales",
        "field_work",
        "service_quality",
        "receivables",
        "sales_office",
        "targets",
        "office_plans",
    ]
    state = await _wait_for_rebuild(h)
    stop.set()
    await reader
    assert answers and set(answers) == {200}
    assert all(state["rebuilds"][p]["status"] == "done" for p in ("sales", "directory", "targets"))
    active = {g["name"]: g["generation"] for g in state["generations"] if g["status"] == "active"}
    assert active == dict.fromkeys(
        (
            "directory",
            "sales",
            "field_work",
            "service_quality",
            "receivables",
            "sales_office",
            "targets",
            "office_plans",
        ),
        2,
    )
    assert await reports(h) == before
    assert await tables(h) == rows

    # The platform's own rebuild of one projection agrees too.
    assert await h.rt.rebuild("sales") == 3
    assert await tables(h) == rows
    # And a one-pass rebuild cut into small stretches, on one lane.
    await rebuild(h.rt.pool, h.rt.definition.projections, stretch_events=37, lanes=1)
    assert await tables(h) == rows
    assert await reports(h) == before


async def test_a_rebuild_while_events_keep_arriving_misses_none(month) -> None:
    h = month
    more = Month()
    more.log.versions = {}  # a second, separate story on other ids
    late = [
        more.ev(
            "visit",
            f"visit-extra{i}",
            "visit.planned",
            {
                "visit_id": f"extra{i}",
                "rep_id": "r4",
                "customer_id": "c5",
                "business_date": "2026-11-24",
                "route_id": None,
                "planned": True,
                "sequence": i,
            },
            local("2026-11-24", 7),
        )
        for i in range(60)
    ]

    async def trickle() -> None:
        for i in range(0, 60, 6):
            await copy(h.rt, late[i : i + 6])
            await asyncio.sleep(0.01)

    feeding = asyncio.create_task(trickle())
    await rebuild(h.rt.pool, h.rt.definition.projections, stretch_events=25)
    await feeding
    await settle(h.rt)
    [r4] = await h.report("/reports/kpi", MANAGER, from_="2026-11-24", to="2026-11-24")
    assert (r4["rep_id"], r4["planned"]) == ("r4", 60)


async def test_events_of_a_copy_still_running_at_the_switch_are_applied_after_it(month) -> None:
    """A consumer's copy that began before the switch and commits after it, while a younger copy
    committed before it: neither may be skipped by the rebuilt reports."""
    h = month
    extra = Month()

    def planned(i: int) -> tuple:
        return extra.ev(
            "visit",
            f"visit-held{i}",
            "visit.planned",
            {
                "visit_id": f"held{i}",
                "rep_id": "r4",
                "customer_id": "c5",
                "business_date": "2026-11-25",
                "route_id": None,
                "planned": True,
                "sequence": i,
            },
            local("2026-11-25", 7),
        )

    async with h.rt.pool.acquire() as held:
        copying = held.transaction()
        await copying.start()
        await copy_foreign(held, "VISIT", [planned(1)[1], planned(2)[1]])
        await copy(h.rt, [planned(3)])  # younger, committed first
        await rebuild(h.rt.pool, h.rt.definition.projections)
        await copying.commit()
    await settle(h.rt)
    [r4] = await h.report("/reports/kpi", MANAGER, from_="2026-11-25", to="2026-11-25")
    assert (r4["rep_id"], r4["planned"]) == ("r4", 3)


async def test_a_late_event_corrects_the_period_it_belongs_to(month) -> None:
    h = month
    day = {"from_": "2026-11-17", "to": "2026-11-17"}
    assert [r["rep_id"] for r in await h.report("/reports/kpi", MANAGER, **day)] == ["r2"]
    assert await h.report("/reports/sales", MANAGER, **day) == []

    # Synced on the 30th: r4's visit of the 17th, and the delivery of an order that day.
    late = Month()
    late.visits = 100
    synced = local("2026-11-30", 18)
    events = late.visit("r4", "c5", "2026-11-17", order="o20")
    events += late.order(
        "o20", "c5", "r4", "d3", "a2", "2026-11-17", [("s3", "snack", 3, 400)], delivered_at=local("2026-11-17", 16)
    )
    events = [(origin, e.model_copy(update={"recorded_at": synced})) for origin, e in events]
    await h.feed(events)

    kpi = by(await h.report("/reports/kpi", MANAGER, **day), "rep_id")
    assert (kpi["r4"]["planned"], kpi["r4"]["done"], kpi["r4"]["successful"]) == (1, 1, 1)
    assert kpi["r4"]["kpis"]["on_time_delivery"]["denominator"] == 1
    [sales] = await h.report("/reports/sales", MANAGER, **day, group_by="rep")
    assert (sales["rep_id"], sales["amount_fen"], sales["quantity"]) == ("r4", 1200, 3)
    # Nothing lands on the day it arrived; the month's total grew by the late sale.
    assert await h.report("/reports/sales", MANAGER, from_="2026-11-30", to="2026-11-30") == []
    [total] = await h.report("/reports/sales", MANAGER, from_="2026-11-01", to="2026-11-30", period="month")
    assert total["amount_fen"] == 12650 + 1200


async def test_a_delivery_seen_before_its_order_counts_once_the_order_arrives(h) -> None:
    m = Month()
    setup = m.organisation() + m.customers()
    placed, confirmed, dispatched, delivered = m.order(
        "o1", "c1", "r1", "d1", "a1", "2026-11-02", [("s1", "beverage", 10, 100)], delivered_at=local("2026-11-02", 15)
    )
    await h.feed([*setup, delivered])
    assert await h.report("/reports/sales", MANAGER, from_="2026-11-01", to="2026-11-30") == []
    await h.feed([placed, confirmed, dispatched])
    [day] = await h.report("/reports/sales", MANAGER, from_="2026-11-01", to="2026-11-30")
    assert (day["period_start"], day["amount_fen"]) == ("2026-11-02", 1000)
    [r1] = await h.report("/reports/kpi", MANAGER, from_="2026-11-01", to="2026-11-30")
    assert r1["kpis"]["on_time_delivery"]["numerator"] == 1


async def test_an_event_a_projection_cannot_apply_is_kept_aside_and_the_rest_goes_on(h) -> None:
    m = Month()
    good = m.visit("r1", "c1", "2026-11-02", order="o1")
    bad = m.ev(
        "visit",
        "visit-bad",
        "visit.planned",
        {
            "visit_id": "bad",
            "rep_id": "r1",
            "customer_id": "c1",
            "business_date": "not a date",
            "route_id": None,
            "planned": True,
            "sequence": 1,
        },
        local("2026-11-02"),
    )
    await h.feed([*good[:2], bad, *good[2:]])
    [r1] = await h.report("/reports/kpi", MANAGER, from_="2026-11-01", to="2026-11-30")
    assert (r1["planned"], r1["done"]) == (1, 1)
    async with h.rt.pool.acquire() as conn:
        failures = await conn.fetch("SELECT name, event_id, error FROM projection_failures")
    assert [(f["name"], f["event_id"]) for f in failures] == [("field_work", bad[1].event_id)]
    # A one-pass rebuild keeps it aside the same way.
    await rebuild(h.rt.pool, h.rt.definition.projections)
    [r1] = await h.report("/reports/kpi", MANAGER, from_="2026-11-01", to="2026-11-30")
    assert (r1["planned"], r1["done"]) == (1, 1)


async def _wait_for_rebuild(h, timeout: float = 20.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = (await h.client.get("/admin/projections", headers=auth(OPERATOR))).json()
        rebuilds = state["rebuilds"]
        if rebuilds and all(r["status"] != "running" for r in rebuilds.values()):
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"rebuild still running: {rebuilds}")
        await asyncio.sleep(0.05)
