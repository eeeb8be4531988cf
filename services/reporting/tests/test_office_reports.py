"""The sales office's reports for November 2026, every figure worked out by hand from the story.

The story: project P1 (滨江一号), district d1 of area a1; reps r1 and r2 (d1). Company time zone
Asia/Shanghai. Units: U1 (building 1, layout A) 300,000,000 fen; U2 (1, A) 310,000,000; U3 (2, B)
200,000,000; U4 (2, B) 210,000,000, all priced on 11-01.

Register lines:
  phone 1    11-02 10:00  La  r1 turn, new         (La comes to see on 11-03: within 7 days)
  phone 2    11-02 11:00  Lb  r2 turn, new         (Lb comes on 11-12: lapsed, received as new)
  walk-in 1  11-02 14:00  Ld  r2 turn, new
  phone 3    11-03 09:30  Lc  r1 turn, new
  walk-in 2  11-03 15:00  La  r1 own               (La's first visit)
  walk-in 3  11-03 16:00  Ld  r1 duty              (r2 busy)
  walk-in 4  11-12 10:00  Lb  r1 turn, new again
Deals: U1 reserved 11-03 (La, r1), subscribed 11-05, contracted 11-06; U3 reserved 11-03 (Ld, r2)
with a partial deposit, overdue 11-04, released 11-15; U4 reserved 11-12 (Lb, r1), subscribed
11-13; U2 reserved 11-20 (Lc, r1), partial deposit due 11-21 11:00, never completed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest_asyncio
from reporting_testkit import (
    AREA_A2,
    MANAGER,
    REP_R1,
    REP_R2,
    SUP_D1,
    Fed,
    Month,
    by,
    documented_rows,
    local,
)

from salesplatform.projections import reading, rebuild

NOV = {"from_": "2026-11-01", "to": "2026-11-30"}
PRICES = {"U1": 300_000_000, "U2": 310_000_000, "U3": 200_000_000, "U4": 210_000_000}
LAYOUT = {"U1": ("1", "A", 3), "U2": ("1", "A", 3), "U3": ("2", "B", 2), "U4": ("2", "B", 2)}


class Office:
    """The story's events, as the customer and orders services publish them."""

    def __init__(self, month: Month) -> None:
        self.m = month
        self.entries: dict[str, int] = {}

    def opened(self) -> list[Fed]:
        data = {"project_id": "P1", "name": "滨江一号", "district_id": "d1", "area_id": "a1", "division_id": "v1"}
        return [self.m.ev("customer", "sales_office-P1", "sales_office.opened", data, local("2026-11-01", 8))]

    def signed_in(self, day: str, *reps: str) -> list[Fed]:
        return [
            self.m.ev(
                "customer",
                f"reception-P1@{day}",
                "reception.signed_in",
                {
                    "project_id": "P1",
                    "business_date": day,
                    "rep_id": r,
                    "place": i + 1,
                    "at": local(day, 8).isoformat(),
                },
                local(day, 8, 30 + i),
            )
            for i, r in enumerate(reps)
        ]

    def line(self, register: str, day: str, hour: int, minute: int, lead: str, rep: str, basis: str, new: bool) -> Fed:
        n = self.entries[register] = self.entries.get(register, 0) + 1
        at = local(day, hour, minute)
        return self.m.ev(
            "customer",
            f"lead_register-P1@{register}",
            "lead_register.entry_recorded",
            {
                "project_id": "P1",
                "register_kind": register,
                "entry_no": n,
                "business_date": day,
                "at": at.isoformat(),
                "lead_id": lead,
                "rep_id": rep,
                "basis": basis,
                "new_lead": new,
                "first_visit": register == "walk_in" and basis != "duty",
                "remark": "duty" if basis == "duty" else None,
            },
            at,
        )

    def unit(self, event_type: str, unit: str, day: str, hour: int = 11, **data: Any) -> Fed:
        return self.m.ev(
            "orders", f"unit-{unit}", event_type, {"unit_id": unit, "project_id": "P1", **data}, local(day, hour)
        )

    def units(self) -> list[Fed]:
        out = []
        for unit, (building, layout, rooms) in LAYOUT.items():
            out.append(
                self.unit(
                    "unit.defined",
                    unit,
                    "2026-11-01",
                    9,
                    building=building,
                    unit_no=f"{unit[-1]}01",
                    floor=1,
                    layout_name=layout,
                    rooms=rooms,
                    halls=2,
                    bathrooms=1,
                    area_sqm="100.00",
                    orientation="south",
                )
            )
            out.append(
                self.unit(
                    "unit.priced",
                    unit,
                    "2026-11-01",
                    10,
                    release="一期",
                    unit_price_fen=PRICES[unit] // 100,
                    total_price_fen=PRICES[unit],
                )
            )
        return out

    def reserved(self, unit: str, day: str, lead: str, rep: str, paid: int, agreed: int, hour: int = 11) -> list[Fed]:
        out = [
            self.unit(
                "unit.reserved",
                unit,
                day,
                hour,
                lead_id=lead,
                credited_rep_id=rep,
                price_fen=PRICES[unit],
                reserved_at=local(day, hour).isoformat(),
                business_date=day,
            ),
            self.unit(
                "unit.deposit_received",
                unit,
                day,
                hour,
                lead_id=lead,
                receipt_no=f"{unit}-D1",
                unit_no="101",
                amount_fen=paid,
                amount_in_words="-",
                total_fen=paid,
                agreed_fen=agreed,
                method="transfer",
                source_of_funds="own_funds",
                taken_by="sm",
                received_on=day,
                due_by=None if paid == agreed else (local(day, hour) + timedelta(hours=24)).isoformat(),
            ),
        ]
        if paid == agreed:
            out.append(self.unit("unit.deposit_completed", unit, day, hour, lead_id=lead, total_fen=paid))
        return out

    def step(self, event_type: str, unit: str, day: str, lead: str, rep: str) -> Fed:
        return self.unit(
            event_type,
            unit,
            day,
            lead_id=lead,
            credited_rep_id=rep,
            price_fen=PRICES[unit],
            payment_plan="full",
            business_date=day,
            subscription_no="RG",
            contract_no="HT",
            signed_by="sm",
            kept_by="sm",
        )

    def everything(self) -> list[Fed]:
        out = self.opened() + self.units()
        out += self.signed_in("2026-11-02", "r1", "r2") + self.signed_in("2026-11-03", "r2", "r1")
        out += self.signed_in("2026-11-12", "r1")
        out += [
            self.line("phone", "2026-11-02", 10, 0, "La", "r1", "turn", True),
            self.line("phone", "2026-11-02", 11, 0, "Lb", "r2", "turn", True),
            self.line("walk_in", "2026-11-02", 14, 0, "Ld", "r2", "turn", True),
            self.line("phone", "2026-11-03", 9, 30, "Lc", "r1", "turn", True),
            self.line("walk_in", "2026-11-03", 15, 0, "La", "r1", "own", False),
            self.line("walk_in", "2026-11-03", 16, 0, "Ld", "r1", "duty", False),
        ]
        out += self.reserved("U1", "2026-11-03", "La", "r1", 5_000_000, 5_000_000, hour=16)
        out += self.reserved("U3", "2026-11-03", "Ld", "r2", 1_000_000, 5_000_000, hour=17)
        out.append(self.unit("unit.deposit_overdue", "U3", "2026-11-04", 18, lead_id="Ld", missing_fen=4_000_000))
        out.append(
            self.unit(
                "unit.subscription_filled",
                "U1",
                "2026-11-05",
                9,
                lead_id="La",
                subscription_no="RG",
                price_fen=PRICES["U1"],
                payment_plan="full",
                contract_due_on="2026-11-12",
                filled_by="r1",
            )
        )
        out.append(self.step("unit.subscribed", "U1", "2026-11-05", "La", "r1"))
        out.append(self.step("unit.contracted", "U1", "2026-11-06", "La", "r1"))
        out.append(self.line("walk_in", "2026-11-12", 10, 0, "Lb", "r1", "turn", True))
        out += self.reserved("U4", "2026-11-12", "Lb", "r1", 5_000_000, 5_000_000, hour=15)
        out.append(self.step("unit.subscribed", "U4", "2026-11-13", "Lb", "r1"))
        out.append(
            self.unit(
                "unit.reservation_released",
                "U3",
                "2026-11-15",
                lead_id="Ld",
                previous_status="reserved",
                deposit_fen=1_000_000,
                deposit="forfeited",
                reason="逾期未补足定金",
                business_date="2026-11-15",
            )
        )
        out += self.reserved("U2", "2026-11-20", "Lc", "r1", 2_000_000, 5_000_000)
        return out


@pytest_asyncio.fixture
async def office(h):
    month = Month()
    await h.feed(month.organisation() + Office(month).everything())
    return h


async def test_lead_registers_per_day_and_rep(office) -> None:
    h = office
    rows = by(await h.report("/reports/office-leads", MANAGER, **NOV), "business_date", "rep_id")
    figures = {
        k: (
            r["calls"],
            r["walk_ins"],
            r["returning_visits"],
            r["duty_receptions"],
            r["first_visits_in_7_days"],
            r["deposits"],
            r["subscriptions"],
            r["contracts"],
        )
        for k, r in rows.items()
    }
    assert figures == {
        # La called (came within 7 days, reserved U1, subscribed, contracted)
        ("2026-11-02", "r1"): (1, 0, 0, 0, 1, 1, 1, 1),
        # Lb called (came after 10 days: not in 7, and the sale counts for the later line);
        # Ld walked in and reserved U3 (released later: a deposit was still reached)
        ("2026-11-02", "r2"): (1, 1, 0, 0, 0, 1, 0, 0),
        # Lc called (reserved U2 on 11-20); La came back to r1; r1 received Ld on duty
        ("2026-11-03", "r1"): (1, 0, 1, 1, 0, 1, 0, 0),
        # Lb received again, as new: reserved U4 and subscribed
        ("2026-11-12", "r1"): (0, 1, 0, 0, 0, 1, 1, 0),
    }
    assert rows[("2026-11-02", "r2")]["deposit_rate"] == {"value": 0.5, "numerator": 1, "denominator": 2}
    assert rows[("2026-11-02", "r1")]["first_visit_rate"]["value"] == 1.0
    assert rows[("2026-11-02", "r1")]["rep_name"] == "Staff r1"
    total = (await h.report("/reports/office-leads", MANAGER, **NOV, group_by="project"))[0]
    assert (total["project_name"], total["calls"], total["walk_ins"], total["duty_receptions"]) == ("滨江一号", 3, 2, 1)
    assert (total["deposits"], total["subscriptions"], total["contracts"]) == (4, 2, 1)

    # Lines of the rep only, for the rep; another area sees none of it.
    mine = await h.report("/reports/office-leads", REP_R2, **NOV)
    assert {r["rep_id"] for r in mine} == {"r2"}
    assert (await h.get("/reports/office-leads", REP_R2, **NOV, rep_id="r1")).status_code == 403
    assert await h.report("/reports/office-leads", AREA_A2, **NOV) == []


async def test_daily_close_forecasts_and_reasons(office) -> None:
    h = office
    close = {"project_id": "P1", "forecast": {"deposits": 2, "subscriptions": 0, "contracts": 0, "amount_fen": 0}}
    assert (await h.command("record_daily_close", {**close, "business_date": "2026-11-02"}, REP_R1)).status_code == 200
    r2 = {**close, "forecast": {"deposits": 1, "subscriptions": 0, "contracts": 0, "amount_fen": 0}}
    assert (await h.command("record_daily_close", {**r2, "business_date": "2026-11-02"}, REP_R2)).status_code == 200
    r1_today = {
        **close,
        "business_date": "2026-11-03",
        "forecast": {"deposits": 0, "subscriptions": 1, "contracts": 0, "amount_fen": 300_000_000},
        "miss_reason": "一位客户资金未到位",
    }
    assert (await h.command("record_daily_close", r1_today, REP_R1)).status_code == 200
    refused = await h.command("record_daily_close", {**close, "rep_id": "r2"}, REP_R1)
    assert refused.status_code == 403
    refused = await h.command("record_daily_close", {**close, "business_date": "2026-12-01"}, REP_R1)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "day_not_come"

    rows = by(await documented_rows(h, "/reports/daily-close", SUP_D1, date="2026-11-03"), "rep_id")
    assert rows["r1"]["result"] == {"deposits": 1, "subscriptions": 0, "contracts": 0, "amount_fen": 0}
    assert rows["r1"]["forecast"]["deposits"] == 2 and rows["r1"]["forecast_missed"] is True
    assert rows["r1"]["miss_reason"] == "一位客户资金未到位" and not rows["r1"]["reason_missing"]
    assert rows["r1"]["forecast_for_tomorrow"]["subscriptions"] == 1 and rows["r1"]["closed"]
    assert rows["r2"]["result"]["deposits"] == 1 and rows["r2"]["forecast_missed"] is False
    assert rows["r2"]["closed"] is False and rows["r2"]["forecast_for_tomorrow"] is None
    # The next day r1's forecast of a subscription was missed and no reason was given.
    rows = by(await documented_rows(h, "/reports/daily-close", MANAGER, date="2026-11-04"), "rep_id")
    assert rows["r1"]["forecast_missed"] is True and rows["r1"]["reason_missing"] is True


async def test_weekly_targets_claimed_on_monday_and_their_completion(office) -> None:
    h = office
    h.clock.set(local("2026-11-02", 9))  # the Monday meeting
    claim = {"project_id": "P1", "subscriptions": 1, "amount_fen": 250_000_000}
    assert (await h.command("claim_weekly_target", claim, REP_R1)).status_code == 200
    assert (
        await h.command("claim_weekly_target", {**claim, "rep_id": "r2", "amount_fen": 100_000_000}, SUP_D1)
    ).status_code == 200
    h.clock.set(local("2026-11-03", 9))
    late = await h.command("claim_weekly_target", {**claim, "week": "2026-11-02"}, REP_R1)
    assert late.status_code == 409 and late.json()["error"]["code"] == "claim_after_meeting"
    h.clock.set(local("2026-11-09", 9))
    assert (await h.command("claim_weekly_target", {**claim, "amount_fen": 200_000_000}, REP_R1)).status_code == 200
    h.clock.set(local("2026-11-30", 12))

    first = by(await documented_rows(h, "/reports/weekly-targets", MANAGER, week="2026-11-04"), "rep_id")
    assert (first["r1"]["subscriptions"], first["r1"]["amount_fen"]) == (1, 300_000_000)  # U1 on 11-05
    assert first["r1"]["amount_completion"]["value"] == 1.2 and first["r1"]["week_over"]
    assert (first["r2"]["subscriptions"], first["r2"]["amount_completion"]["value"]) == (0, 0.0)
    second = by(await h.report("/reports/weekly-targets", MANAGER, week="2026-11-09"), "rep_id")
    assert second["r1"]["amount_fen"] == 210_000_000 and second["r1"]["amount_completion"]["value"] == 1.05


async def test_performance_warnings_oral_then_written(office) -> None:
    h = office
    for rep, amount in (("r1", 600_000_000), ("r2", 300_000_000)):
        body = {"month": "2026-11", "level": "rep", "subject_id": rep, "amount_fen": amount}
        assert (await h.command("set_target", body, MANAGER)).status_code == 200

    async def review(day: str) -> dict:
        h.clock.set(local(day, 20))
        r = await h.command("review_performance", {}, MANAGER)
        assert r.status_code == 200, r.text
        return r.json()["warnings"]

    # Both started on 11-02: a target is spread over the 29 days from 11-02 to 11-30, and a review
    # judges the days closed. On 11-10 (up to 11-09, 8 days): r1 has 300,000,000 of an expected
    # 165,517,241; r2 0 of an expected 82,758,620, more than 20% short.
    assert await review("2026-11-10") == {"r2": "oral"}
    assert await review("2026-11-12") == {}  # oral two days ago: not yet
    assert await review("2026-11-17") == {"r2": "written"}
    assert await review("2026-11-18") == {}
    h.clock.set(local("2026-11-30", 12))
    rows = by(await documented_rows(h, "/reports/performance-warnings", MANAGER, month="2026-11"), "rep_id")
    r1, r2 = rows["r1"], rows["r2"]
    assert (r1["target_fen"], r1["actual_fen"], r1["expected_fen"], r1["behind"], r1["flag"]) == (
        600_000_000,
        510_000_000,
        600_000_000,
        False,
        None,
    )
    assert r1["started_on"] == "2026-11-02"
    assert r1["achievement"]["value"] == 0.85
    assert (r2["actual_fen"], r2["behind"], r2["flag"]) == (0, True, "written")
    assert [(w["level"], w["given_on"], w["expected_fen"]) for w in r2["history"]] == [
        ("oral", "2026-11-10", 82_758_620),
        ("written", "2026-11-17", 155_172_413),  # up to 11-16: 300,000,000 × 15 / 29
    ]
    assert (await h.command("review_performance", {}, REP_R1)).status_code == 403
    h.clock.set(local("2026-12-01", 9))  # no day of December is closed yet
    assert (await h.command("review_performance", {}, MANAGER)).json() == {
        "month": "2026-12",
        "as_of": None,
        "reviewed": 0,
        "warnings": {},
    }


async def test_sales_by_building_and_layout_inventory_and_deposits_due(office) -> None:
    h = office
    buildings = by(await h.report("/reports/office-sales", MANAGER, **NOV, group_by="building"), "building")
    assert {
        b: (r["reservations"], r["subscriptions"], r["subscribed_amount_fen"], r["contracts"], r["releases"])
        for b, r in buildings.items()
    } == {"1": (2, 1, 300_000_000, 1, 0), "2": (2, 1, 210_000_000, 0, 1)}
    layouts = by(await h.report("/reports/office-sales", MANAGER, **NOV, group_by="layout"), "layout_name")
    assert layouts["B"]["contracted_amount_fen"] == 0 and layouts["A"]["contracted_amount_fen"] == 300_000_000
    mine = await h.report("/reports/office-sales", REP_R2, **NOV, group_by="rep")
    assert [(r["rep_id"], r["reservations"], r["releases"]) for r in mine] == [("r2", 1, 1)]

    inventory = (await h.report("/reports/unit-inventory", REP_R2))[0]
    assert (inventory["units"], inventory["available"], inventory["reserved"]) == (4, 1, 1)
    assert (inventory["subscribed"], inventory["contracted"], inventory["available_value_fen"]) == (1, 1, 200_000_000)
    per_building = by(await h.report("/reports/unit-inventory", MANAGER, group_by="building,layout"), "building")
    assert (per_building["1"]["reserved"], per_building["1"]["contracted"]) == (1, 1)

    due = await h.report("/reports/deposits-due", MANAGER)
    assert [(d["unit_id"], d["missing_fen"], d["overdue"], d["rep_id"]) for d in due] == [("U2", 3_000_000, True, "r1")]
    assert await h.report("/reports/deposits-due", REP_R2) == []


async def test_office_report_rows_are_documented_in_every_grouping(office) -> None:
    # Rows checked strictly against the row model each route documents (adapters/rows.py); the
    # daily close, weekly targets and warnings are checked where the tests above record them.
    h = office
    for path, params in (
        ("/reports/office-leads", {**NOV, "group_by": "day,rep,project"}),
        ("/reports/office-leads", NOV),
        ("/reports/office-sales", {**NOV, "group_by": "project,building,layout,rep"}),
        ("/reports/office-sales", NOV),
        ("/reports/unit-inventory", {"group_by": "project,building,layout"}),
        ("/reports/unit-inventory", {}),
        ("/reports/deposits-due", {}),
        ("/reports/daily-close", {"date": "2026-11-03"}),
        ("/reports/performance-warnings", {"month": "2026-11"}),
    ):
        assert await documented_rows(h, path, MANAGER, **params), path


async def test_a_rebuild_of_the_office_reports_equals_what_was_built_incrementally(office) -> None:
    h = office
    before = await h.report("/reports/office-leads", MANAGER, **NOV)
    async with reading(h.rt.pool, "sales_office") as conn:
        rows = {
            t: await conn.fetch(f"SELECT * FROM {t} ORDER BY 1, 2")
            for t in ("office_lines", "office_units", "office_deals")
        }
    await rebuild(h.rt.pool, [h.rt.projection("sales_office")], stretch_events=7, lanes=1)
    async with reading(h.rt.pool, "sales_office") as conn:
        again = {t: await conn.fetch(f"SELECT * FROM {t} ORDER BY 1, 2") for t in rows}
    assert {t: [tuple(r) for r in v] for t, v in again.items()} == {t: [tuple(r) for r in v] for t, v in rows.items()}
    assert await h.report("/reports/office-leads", MANAGER, **NOV) == before
