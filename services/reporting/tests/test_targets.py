"""Targets (销售指标): set, decomposed (目标分解), refused outside the setter's line, and achieved
month to date against the scenario's sales (see test_scenario.py for the month's figures:
net sales r1 7800, r2 2100, r3 1750, r4 1000; d1 9900, d2 1750; a1 11650)."""

from __future__ import annotations

from reporting_testkit import AREA_A1, AREA_A2, CLERK, MANAGER, REP_R1, SUP_D1, by

NOV = {"from_": "2026-11-01", "to": "2026-11-30"}


async def test_targets_set_decomposed_and_achieved_month_to_date(month) -> None:
    h = month
    ok = await h.command(
        "set_target", {"month": "2026-11", "level": "area", "subject_id": "a1", "amount_fen": 20000}, MANAGER
    )
    assert ok.status_code == 200, ok.text
    split = await h.command(
        "decompose_target", {"month": "2026-11", "level": "area", "subject_id": "a1", "into": "district"}, AREA_A1
    )
    assert split.status_code == 200, split.text
    assert {t["subject_id"]: t["amount_fen"] for t in split.json()["targets"]} == {"d1": 10000, "d2": 10000}
    split = await h.command(
        "decompose_target",
        {"month": "2026-11", "level": "district", "subject_id": "d1", "into": "rep", "weights": {"r1": 2, "r2": 1}},
        AREA_A1,
    )
    assert {t["subject_id"]: t["amount_fen"] for t in split.json()["targets"]} == {"r1": 6667, "r2": 3333}
    ok = await h.command(
        "set_target",
        {"month": "2026-11", "level": "rep", "subject_id": "r1", "product_group": "snack", "amount_fen": 5000},
        MANAGER,
    )
    assert ok.status_code == 200

    # Targets are read right after they are set (inline projection).
    rows = await h.report("/reports/targets", MANAGER, month="2026-11", as_of="2026-11-30")
    got = {
        (r["level"], r["subject_id"], r["product_group"]): (r["target_fen"], r["actual_fen"], r["achievement"]["value"])
        for r in rows
    }
    assert got == {
        ("area", "a1", None): (20000, 11650, 0.5825),
        ("district", "d1", None): (10000, 9900, 0.99),
        ("district", "d2", None): (10000, 1750, 0.175),
        ("rep", "r1", None): (6667, 7800, 1.1699),
        ("rep", "r2", None): (3333, 2100, 0.6301),
        ("rep", "r1", "snack"): (5000, 6000, 1.2),
    }

    # Month to date on the 15th: r1 sold 2000 + 2000 − 200; half the month is 3333 of 6667.
    mid = by(
        await h.report("/reports/targets", MANAGER, month="2026-11", as_of="2026-11-15", level="rep"),
        "subject_id",
        "product_group",
    )
    r1 = mid[("r1", None)]
    assert (r1["actual_fen"], r1["expected_by_now_fen"], r1["on_track"], r1["achievement"]["met"]) == (
        3800,
        3333,
        True,
        False,
    )

    # Each reader sees the targets of the own line.
    assert {(r["level"], r["subject_id"]) for r in await h.report("/reports/targets", REP_R1, month="2026-11")} == {
        ("rep", "r1")
    }
    assert {(r["level"], r["subject_id"]) for r in await h.report("/reports/targets", SUP_D1, month="2026-11")} == {
        ("district", "d1"),
        ("rep", "r1"),
        ("rep", "r2"),
    }
    assert len(await h.report("/reports/targets", AREA_A1, month="2026-11")) == 6
    assert await h.report("/reports/targets", AREA_A2, month="2026-11") == []
    [d2] = await h.report("/reports/targets", AREA_A1, month="2026-11", level="district", subject_id="d2")
    assert d2["actual_fen"] == 1750
    for actor, level, subject in ((REP_R1, "rep", "r2"), (SUP_D1, "district", "d2"), (AREA_A2, "area", "a1")):
        refused = await h.get("/reports/targets", actor, month="2026-11", level=level, subject_id=subject)
        assert refused.status_code == 403, (actor.id, subject)
    assert (await h.get("/reports/targets", MANAGER, subject_id="r1")).status_code == 422


async def test_area_targets_are_set_by_sales_managers_only(month) -> None:
    h = month
    for actor in (AREA_A1, SUP_D1, REP_R1):
        response = await h.command(
            "set_target", {"month": "2026-11", "level": "area", "subject_id": "a1", "amount_fen": 1}, actor
        )
        assert response.status_code == 403, actor
    assert await h.report("/reports/targets", MANAGER, month="2026-11") == []


async def test_target_rules(month) -> None:
    h = month
    outside = await h.command(
        "set_target", {"month": "2026-11", "level": "district", "subject_id": "d3", "amount_fen": 100}, AREA_A1
    )
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "outside_line"
    unknown = await h.command(
        "set_target", {"month": "2026-11", "level": "rep", "subject_id": "r99", "amount_fen": 100}, MANAGER
    )
    assert unknown.status_code == 409 and unknown.json()["error"]["code"] == "unknown_subject"
    bad = await h.command(
        "set_target", {"month": "2026-13", "level": "rep", "subject_id": "r1", "amount_fen": -5}, MANAGER
    )
    assert bad.status_code == 422
    assert {d["field"] for d in bad.json()["error"]["details"]} == {"month", "amount_fen"}
    missing = await h.command(
        "decompose_target", {"month": "2026-11", "level": "area", "subject_id": "a2", "into": "district"}, MANAGER
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "target_not_found"
    await h.command("set_target", {"month": "2026-11", "level": "area", "subject_id": "a1", "amount_fen": 900}, MANAGER)
    stray = await h.command(
        "decompose_target",
        {"month": "2026-11", "level": "area", "subject_id": "a1", "into": "district", "weights": {"d1": 1, "d3": 1}},
        MANAGER,
    )
    assert stray.status_code == 409 and stray.json()["error"]["code"] == "subject_outside_parent"
    reps = await h.command(
        "decompose_target", {"month": "2026-11", "level": "area", "subject_id": "a1", "into": "rep"}, MANAGER
    )
    assert {t["subject_id"]: t["amount_fen"] for t in reps.json()["targets"]} == {"r1": 300, "r2": 300, "r3": 300}
    assert await h.report("/reports/targets", MANAGER, month="2026-11", level="district") == []


async def test_clerks_read_everything_read_only(month) -> None:
    h = month
    reps = by(await h.report("/reports/sales", CLERK, **NOV, period="total", group_by="rep"), "rep_id")
    assert set(reps) == {"r1", "r2", "r3", "r4"}
    refused = await h.command(
        "set_target", {"month": "2026-11", "level": "rep", "subject_id": "r1", "amount_fen": 1}, CLERK
    )
    assert refused.status_code == 403
