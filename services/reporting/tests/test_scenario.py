"""A month of a small sales organisation (reporting_testkit.Month), every report checked against
figures worked out by hand from the story.

The story, November 2026, company time zone Asia/Shanghai. Prices: s1 100 fen, s2 250, s3 400
(s1, s2 beverage; s3 snack). Territory: area a1 (districts d1, d2), area a2 (district d3);
reps r1, r2 (d1), r3 (d2), r4 (d3).

Deliveries (net sales are counted on the delivery's business date):
  o1  c1 r1 d1  11-02  s1×10 (1000) + s2×4 (1000)        = 2000, on time
  o2  c2 r1 d1  11-04  s3×5 (2000)                        = 2000, on time
  o3  c3 r2 d1  11-05  s1×20 (2000) + s3×2 (800)          = 2800, late (placed 11-03)
  o4  c4 r3 d2  11-09  s2×8 (2000), promotion p1, 1 gift  = 2000, on time
  o5  c5 r4 d3  11-10  s1×5 (500) + s2×2 (500)            = 1000, on time
  o6  c1 r1 d1  11-16  s3×10 (4000)                       = 4000, on time
  o9  c3 r2 d1  11-18  s1×1 (100) — delivered 17:30 UTC on the 17th = 01:30 on the 18th here
  o7 (placed, not delivered) and o8 (cancelled) are never sales.
Approved returns (taken back on the approval's date):
  ret1 o1 s1×2 (200) quality defect, approved 11-06, exchange
  ret2 o3 s3×2 (800) wrong shipment, approved 11-07, refund 800
  ret4 o4 s2×1 (250) transit damage, approved 11-12, compensation 250
  ret3 o5 s2×1 (250) selection error, rejected 11-12: not taken back.
Net per rep: r1 2000+2000+4000−200 = 7800 fen, 14+5+10−2 = 27 units; r2 2800+100−800 = 2100,
22+1−2 = 21; r3 2000−250 = 1750, 8−1 = 7; r4 1000, 7. All: 12650 fen, 62 units.
"""

from __future__ import annotations

import pytest
from reporting_testkit import (
    AREA_A2,
    MANAGER,
    SUP_D1,
    by,
)

# Every test here only reads: they share one loaded month (conftest.shared_month).
pytestmark = pytest.mark.asyncio(loop_scope="module")

NOV = {"from_": "2026-11-01", "to": "2026-11-30"}


async def test_sales_per_day_week_month_net_of_approved_returns(shared_month) -> None:
    h = shared_month
    days = by(await h.report("/reports/sales", MANAGER, **NOV, period="day"), "period_start")
    assert {d: (r["amount_fen"], r["quantity"]) for d, r in days.items()} == {
        "2026-11-02": (2000, 14),
        "2026-11-04": (2000, 5),
        "2026-11-05": (2800, 22),
        "2026-11-06": (-200, -2),
        "2026-11-07": (-800, -2),
        "2026-11-09": (2000, 8),
        "2026-11-10": (1000, 7),
        "2026-11-12": (-250, -1),
        "2026-11-16": (4000, 10),
        # o9: the 18th in the company's time zone, though still the 17th in UTC.
        "2026-11-18": (100, 1),
    }
    assert days["2026-11-06"]["gross_amount_fen"] == 0 and days["2026-11-06"]["returned_amount_fen"] == 200

    weeks = by(await h.report("/reports/sales", MANAGER, **NOV, period="week"), "period_start")
    assert {w: (r["amount_fen"], r["quantity"]) for w, r in weeks.items()} == {
        "2026-11-02": (5800, 37),
        "2026-11-09": (2750, 14),
        "2026-11-16": (4100, 11),
    }
    months = await h.report("/reports/sales", MANAGER, **NOV, period="month")
    assert [
        (
            m["period_start"],
            m["amount_fen"],
            m["quantity"],
            m["gross_amount_fen"],
            m["returned_amount_fen"],
            m["gift_quantity"],
        )
        for m in months
    ] == [("2026-11-01", 12650, 62, 13900, 1250, 1)]


async def test_sales_by_rep_customer_sku_group_district_area(shared_month) -> None:
    h = shared_month
    reps = by(await h.report("/reports/sales", MANAGER, **NOV, period="total", group_by="rep"), "rep_id")
    assert {r: (x["amount_fen"], x["quantity"]) for r, x in reps.items()} == {
        "r1": (7800, 27),
        "r2": (2100, 21),
        "r3": (1750, 7),
        "r4": (1000, 7),
    }
    assert reps["r1"]["rep_name"] == "Staff r1"

    customers = by(await h.report("/reports/sales", MANAGER, **NOV, period="total", group_by="customer"), "customer_id")
    assert {c: x["amount_fen"] for c, x in customers.items()} == {
        "c1": 5800,
        "c2": 2000,
        "c3": 2100,
        "c4": 1750,
        "c5": 1000,
    }
    skus = by(await h.report("/reports/sales", MANAGER, **NOV, period="total", group_by="sku"), "sku")
    assert {
        s: (x["gross_quantity"], x["returned_quantity"], x["quantity"], x["amount_fen"]) for s, x in skus.items()
    } == {
        "s1": (36, 2, 34, 3400),
        "s2": (14, 1, 13, 3250),
        "s3": (17, 2, 15, 6000),
    }
    groups = by(
        await h.report("/reports/sales", MANAGER, **NOV, period="total", group_by="product_group"), "product_group"
    )
    assert {g: x["amount_fen"] for g, x in groups.items()} == {"beverage": 6650, "snack": 6000}
    districts = by(await h.report("/reports/sales", MANAGER, **NOV, period="total", group_by="district"), "district_id")
    assert {d: x["amount_fen"] for d, x in districts.items()} == {"d1": 9900, "d2": 1750, "d3": 1000}
    assert districts["d1"]["district_name"] == "District d1"
    areas = by(await h.report("/reports/sales", MANAGER, **NOV, period="total", group_by="area"), "area_id")
    assert {a: x["amount_fen"] for a, x in areas.items()} == {"a1": 11650, "a2": 1000}
    assert areas["a1"]["area_name"] == "East"

    # Two dimensions at once, filtered: r1's snack sales per customer.
    rows = await h.report(
        "/reports/sales", MANAGER, **NOV, period="total", group_by="rep,customer", product_group="snack", rep_id="r1"
    )
    assert [(r["rep_id"], r["customer_id"], r["amount_fen"]) for r in rows] == [("r1", "c1", 4000), ("r1", "c2", 2000)]


async def test_composition_by_grade_group_region_channel(shared_month) -> None:
    h = shared_month
    grades = by(await h.report("/reports/composition", MANAGER, **NOV, by="grade"), "grade")
    assert {g: (x["amount_fen"], x["amount_share"]) for g, x in grades.items()} == {
        "A": (7550, 0.5968),
        "B": (3000, 0.2372),
        "C": (2100, 0.166),
    }
    channels = by(await h.report("/reports/composition", MANAGER, **NOV, by="channel"), "channel")
    assert {c: x["amount_fen"] for c, x in channels.items()} == {"retail": 8900, "wholesale": 2000, "chain": 1750}
    groups = by(await h.report("/reports/composition", MANAGER, **NOV, by="product_group"), "product_group")
    assert {g: x["amount_share"] for g, x in groups.items()} == {"beverage": 0.5257, "snack": 0.4743}
    areas = by(await h.report("/reports/composition", MANAGER, **NOV, by="area"), "area_id")
    assert {a: x["amount_share"] for a, x in areas.items()} == {"a1": 0.9209, "a2": 0.0791}
    # The share is of what the reader sees: d1's supervisor sees d1 as the whole.
    d1 = by(await h.report("/reports/composition", SUP_D1, **NOV, by="grade"), "grade")
    assert {g: (x["amount_fen"], x["amount_share"]) for g, x in d1.items()} == {
        "A": (5800, 0.5859),
        "B": (2000, 0.202),
        "C": (2100, 0.2121),
    }


async def test_credit_rating_analysis(shared_month) -> None:
    h = shared_month
    ratings = by(await h.report("/reports/credit", MANAGER, **NOV), "credit_rating")
    assert {
        r: (x["customers"], x["credit_limit_fen"], x["sales_amount_fen"], x["open_fen"], x["customers_over_limit"])
        for r, x in ratings.items()
    } == {
        "AA": (2, 300_000, 7550, 2500, 0),  # c1, c4
        "A": (1, 50_000, 2000, 4000, 0),  # c2
        "B": (1, 2_000, 2100, 3000, 1),  # c3 owes 3000 on a 2000 limit
        "unrated": (4, 0, 1000, 1000, 0),  # c5, c7, c8 (lost), c9; c6 is still pending
    }
    c3 = by(await h.report("/reports/credit", MANAGER, **NOV, group_by="customer"), "customer_id")["c3"]
    assert (c3["over_limit"], c3["headroom_fen"]) == (True, -1000)


async def test_rep_kpi_board_against_goals(shared_month) -> None:
    h = shared_month
    board = by(await h.report("/reports/kpi", MANAGER, **NOV), "rep_id")
    r1 = board["r1"]
    # r1: v1, v2, v3 planned and done, v4 planned and missed, v5 unplanned and done.
    assert (r1["planned"], r1["unplanned"], r1["done"], r1["planned_done"], r1["successful"], r1["missed"]) == (
        4,
        1,
        4,
        3,
        3,
        1,
    )
    k = r1["kpis"]
    assert k["planned_visit_completion"] == {"value": 0.75, "numerator": 3, "denominator": 4, "goal": 1.0, "met": False}
    assert k["visit_success"] == {"value": 0.75, "numerator": 3, "denominator": 4, "goal": 0.85, "met": False}
    assert (k["suggested_order_adoption"]["numerator"], k["suggested_order_adoption"]["denominator"]) == (1, 2)
    # Audits: v1 has 2 of 3 required SKUs, v2 both of 2 → 4 of 5.
    assert k["required_sku_distribution"]["value"] == 0.8
    assert k["price_tag_compliance"]["value"] == 0.5
    assert k["display_compliance"] == {"value": 1.0, "numerator": 2, "denominator": 2, "goal": 1.0, "met": True}
    assert (k["cooler_compliance"]["value"], k["cooler_misuse"]["value"], k["cooler_misuse"]["met"]) == (
        0.5,
        0.5,
        False,
    )
    assert k["on_time_delivery"] == {"value": 1.0, "numerator": 3, "denominator": 3, "goal": 1.0, "met": True}
    # Check-ins: v1 at the outlet, v2 too far, v3 too far but confirmed by the supervisor, v5
    # from before positions were judged (not judged).
    assert (r1["check_ins"], r1["check_ins_judged"], r1["check_ins_verified"]) == (4, 3, 2)
    assert k["check_in_verification"] == {"value": 0.6667, "numerator": 2, "denominator": 3, "goal": 1.0, "met": False}
    # cp1 names no rep: it is the customer's (c1 → r1); acknowledged within 48 h.
    assert k["complaint_ack_48h"] == {"value": 1.0, "numerator": 1, "denominator": 1, "goal": 1.0, "met": True}

    r2 = board["r2"]["kpis"]
    assert r2["planned_visit_completion"]["met"] and r2["visit_success"]["value"] == 1.0
    assert r2["suggested_order_adoption"] == {"value": None, "numerator": 0, "denominator": 0, "goal": 1.0, "met": None}
    assert r2["on_time_delivery"]["value"] == 0.5  # o3 was late, o9 on time
    assert r2["complaint_ack_48h"]["value"] == 0.0  # cp2 acknowledged after 50 hours
    # r2's outlet had no known position: its check-ins are counted but not judged.
    assert (board["r2"]["check_ins"], board["r2"]["check_ins_judged"]) == (2, 0)
    assert r2["check_in_verification"]["value"] is None
    # cp3 (r3) is neither acknowledged nor flagged as breached yet: not judged.
    assert board["r3"]["complaints"] == 1
    assert board["r3"]["kpis"]["complaint_ack_48h"] == {
        "value": None,
        "numerator": 0,
        "denominator": 0,
        "goal": 1.0,
        "met": None,
    }
    assert board["r4"]["kpis"]["complaint_ack_48h"]["denominator"] == 0

    districts = by(await h.report("/reports/kpi", MANAGER, **NOV, group_by="district"), "district_id")
    d1 = districts["d1"]["kpis"]
    assert (d1["planned_visit_completion"]["numerator"], d1["planned_visit_completion"]["denominator"]) == (5, 6)
    assert (d1["visit_success"]["value"], d1["visit_success"]["met"]) == (0.8333, False)
    assert (d1["on_time_delivery"]["numerator"], d1["on_time_delivery"]["denominator"]) == (4, 5)
    a1 = by(await h.report("/reports/kpi", MANAGER, **NOV, group_by="area"), "area_id")["a1"]["kpis"]
    assert (a1["visit_success"]["value"], a1["visit_success"]["met"]) == (0.875, True)

    # One week only: r1's visits of 9–15 November are v3 (done, refused) and v4 (missed).
    week = by(await h.report("/reports/kpi", MANAGER, from_="2026-11-09", to="2026-11-15"), "rep_id")["r1"]
    assert (week["planned"], week["done"], week["missed"], week["successful"]) == (2, 1, 1, 0)


async def test_receivables_ageing_per_customer_and_rep(shared_month) -> None:
    h = shared_month
    customers = by(await h.report("/reports/receivables", MANAGER, as_of="2026-11-30"), "customer_id")
    buckets = ("not_due", "d1_30", "d31_60", "d61_90", "d90_plus", "open_fen")
    assert {c: tuple(x[b] for b in buckets) for c, x in customers.items()} == {
        "c1": (2000, 500, 0, 0, 0, 2500),  # i1 due 12-02; i7 20 days past due
        "c2": (0, 0, 0, 0, 4000, 4000),  # i0 5000 − 1000 paid, 122 days past due
        "c3": (0, 0, 3000, 0, 0, 3000),  # i4 46 days
        "c5": (0, 0, 0, 1000, 0, 1000),  # i6 90 days
        # c4's i5 was paid in full on 11-25.
    }
    reps = by(await h.report("/reports/receivables", MANAGER, as_of="2026-11-30", group_by="rep"), "rep_id")
    assert {r: (x["open_fen"], x["past_due_fen"]) for r, x in reps.items()} == {
        "r1": (6500, 4500),
        "r2": (3000, 3000),
        "r4": (1000, 1000),
    }
    # On 11-20 c4 had not paid yet: 10000, 50 days past due; i7 10 days past due.
    earlier = by(await h.report("/reports/receivables", MANAGER, as_of="2026-11-20"), "customer_id")
    assert earlier["c4"]["d31_60"] == 10000
    assert (earlier["c1"]["not_due"], earlier["c1"]["d1_30"]) == (2000, 500)
    # Before i1 was issued, c1 owed only i7, not yet due.
    assert (
        by(await h.report("/reports/receivables", MANAGER, as_of="2026-11-01"), "customer_id")["c1"]["not_due"] == 500
    )


async def test_returns_by_reason_product_and_resolution(shared_month) -> None:
    h = shared_month
    reasons = by(await h.report("/reports/returns", MANAGER, **NOV), "reason")
    assert {
        r: (
            x["returns"],
            x["quantity"],
            x["amount_fen"],
            x["approved"],
            x["rejected"],
            x["resolved"],
            x["resolved_amount_fen"],
        )
        for r, x in reasons.items()
    } == {
        "quality_defect": (1, 2, 200, 1, 0, 1, 0),
        "wrong_shipment": (1, 2, 800, 1, 0, 1, 800),
        "selection_error": (1, 1, 250, 0, 1, 0, 0),
        "transit_damage": (1, 1, 250, 1, 0, 1, 250),
    }
    resolutions = by(await h.report("/reports/returns", MANAGER, **NOV, group_by="resolution"), "resolution")
    assert {r: x["returns"] for r, x in resolutions.items()} == {
        "exchange": 1,
        "refund": 1,
        "compensation": 1,
        "unresolved": 1,
    }
    groups = by(await h.report("/reports/returns", MANAGER, **NOV, group_by="product_group"), "product_group")
    assert {g: (x["returns"], x["quantity"], x["amount_fen"]) for g, x in groups.items()} == {
        "beverage": (3, 4, 700),
        "snack": (1, 2, 800),
    }
    skus = by(await h.report("/reports/returns", MANAGER, **NOV, group_by="sku,reason"), "sku", "reason")
    assert skus[("s2", "transit_damage")]["quantity"] == 1
    statuses = by(await h.report("/reports/returns", MANAGER, **NOV, group_by="status"), "status")
    assert {s: x["returns"] for s, x in statuses.items()} == {"resolved": 3, "rejected": 1}


async def test_complaints_by_category_with_sla(shared_month) -> None:
    h = shared_month
    cats = by(await h.report("/reports/complaints", MANAGER, **NOV), "category")
    assert {
        c: (
            x["received"],
            x["acknowledged"],
            x["acknowledged_within_sla"],
            x["breached"],
            x["awaiting_acknowledgement"],
            x["resolved"],
            x["closed"],
        )
        for c, x in cats.items()
    } == {
        "quality": (1, 1, 1, 0, 0, 1, 1),
        "logistics": (1, 1, 0, 1, 0, 0, 0),
        "service": (1, 0, 0, 0, 1, 0, 0),
    }
    assert cats["quality"]["sla_compliance"]["met"] is True
    assert cats["service"]["sla_compliance"]["value"] is None  # still inside its 48 hours
    assert cats["logistics"]["sla_compliance"] == {
        "value": 0.0,
        "numerator": 0,
        "denominator": 1,
        "goal": 1.0,
        "met": False,
    }
    departments = by(await h.report("/reports/complaints", MANAGER, **NOV, group_by="department"), "department")
    assert departments["production"]["received"] == 1


async def test_promotion_statistics(shared_month) -> None:
    h = shared_month
    [p1] = await h.report("/reports/promotions", MANAGER)
    # During 11-09..11-15, s2: o4 2000 − 250 returned, o5 500 → 2250 (8 − 1 + 2 units).
    # The 7 days before, 11-02..11-08: o1's s2 1000 (4 units).
    assert (p1["period_amount_fen"], p1["period_quantity"], p1["before_amount_fen"], p1["before_quantity"]) == (
        2250,
        9,
        1000,
        4,
    )
    assert (p1["before_starts_on"], p1["before_ends_on"], p1["uplift"]) == ("2026-11-02", "2026-11-08", 1.25)
    assert (p1["promoted_amount_fen"], p1["promoted_quantity"], p1["gifts_issued"]) == (1750, 7, 1)
    # Spent: o4's 300; o10's 200 was incurred and given back when o10 was rejected.
    assert (p1["budget_fen"], p1["spent_fen"], p1["budget_left_fen"], p1["budget_used"]) == (5000, 300, 4700, 0.06)
    assert await h.report("/reports/promotions", MANAGER, active_on="2026-11-20") == []
    # d3's rep sees the promotion with d3's sales only: o5's 500.
    [mine] = await h.report("/reports/promotions", AREA_A2)
    assert (mine["period_amount_fen"], mine["promoted_amount_fen"], mine["spent_fen"]) == (500, 0, 300)


async def test_satisfaction_per_half_year_against_the_yearly_goals(shared_month) -> None:
    h = shared_month
    periods = by(await h.report("/reports/satisfaction", MANAGER), "period")
    assert {
        p: (
            x["surveys"],
            x["satisfied"],
            x["satisfaction"]["value"],
            x["satisfaction"]["goal"],
            x["satisfaction"]["met"],
        )
        for p, x in periods.items()
    } == {
        "2025H1": (1, 1, 1.0, 0.95, True),  # first year of the programme
        "2026H2": (4, 3, 0.75, 0.97, False),  # second year
    }
    reps = by(await h.report("/reports/satisfaction", MANAGER, group_by="rep", from_period="2026H2"), "rep_id")
    assert {r: x["satisfaction"]["value"] for r, x in reps.items()} == {"r1": 1.0, "r3": 1.0, "r4": 0.0}


async def test_customer_base_new_active_dormant_lost(shared_month) -> None:
    h = shared_month
    [base] = await h.report("/reports/customer-base", MANAGER, from_="2026-11-01", as_of="2026-11-30")
    # Active: c1–c5 ordered within 60 days, c9 became active on 11-20; dormant: c7 (active since
    # August, never ordered); lost: c8; prospect: c6 (pending).
    assert (base["new"], base["active"], base["dormant"], base["lost"], base["prospects"]) == (1, 6, 1, 1, 1)
    [short] = await h.report("/reports/customer-base", MANAGER, from_="2026-11-01", as_of="2026-11-30", dormant_days=15)
    # Within 15 days: c1 (11-16), c3 (11-17), c4 (11-20), c9 (new); c2's last order was cancelled.
    assert (short["active"], short["dormant"]) == (4, 3)
    districts = by(
        await h.report("/reports/customer-base", MANAGER, from_="2026-11-01", as_of="2026-11-30", group_by="district"),
        "district_id",
    )
    assert {d: (x["active"], x["dormant"], x["lost"]) for d, x in districts.items()} == {
        "d1": (4, 0, 0),
        "d2": (1, 1, 1),
        "d3": (1, 0, 0),
    }
    # In October c8 was already lost, c9 not yet a customer.
    [october] = await h.report("/reports/customer-base", MANAGER, from_="2026-10-01", as_of="2026-10-31")
    assert (october["new"], october["active"], october["lost"]) == (0, 0, 1)
