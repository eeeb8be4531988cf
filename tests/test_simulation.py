"""The simulated sales department: the plan is deterministic and covers what the demo must show,
and a small department living two days goes into the four real services through their public
interfaces only (HTTP commands and queries, NATS request/reply and ingest)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest
from running_system import SIGNING_KEY, eventually

from bench.simulation.driver import drive
from bench.simulation.organisation import (
    CHANNELS,
    COMPLAINT_CATEGORIES,
    GRADES,
    RETURN_REASONS,
    TIMEZONE,
    Size,
    build_plan,
)
from customer_service.bootstrap import definition as customer_definition
from orders_service.bootstrap import definition as orders_definition
from reporting_service.bootstrap import definition as reporting_definition
from salesplatform.clock import business_date
from salesplatform.devstack.pytest_plugin import nats_login_for_tests
from salesplatform.events import Actor, Role
from visit_service.application.route_plans import propose_route_plans
from visit_service.bootstrap import definition as visit_definition

END = date(2026, 5, 20)


async def visit_events(visit, event_type: str) -> list[dict]:
    async with visit.runtime.pool.acquire() as conn:
        rows = await conn.fetch("SELECT data FROM events WHERE event_type = $1", event_type)
    return [dict(r["data"]) for r in rows]


@pytest.mark.fast
def test_the_plan_is_the_same_for_a_seed_and_differs_for_another() -> None:
    one, again, other = (build_plan(seed, scale=0.1, days=10, end=END) for seed in (3, 3, 4))
    assert one == again
    assert [c.customer_id for c in one.organisation.customers] != [c.customer_id for c in other.organisation.customers]
    assert [o.lines for o in one.all("orders")] != [o.lines for o in other.all("orders")]
    # Ids come from the seed: two seeds in one system never share a customer, rep or SKU.
    ids = [{c.customer_id for c in p.organisation.customers} for p in (one, other)]
    assert not ids[0] & ids[1]
    assert not {s.sku for s in one.organisation.skus} & {s.sku for s in other.organisation.skus}


@pytest.mark.fast
def test_the_plan_has_every_grade_channel_return_reason_and_some_late_deliveries_and_overdue_debt() -> None:
    plan = build_plan(7, scale=0.1, days=10, end=END)
    customers = plan.organisation.customers
    assert {c.grade for c in customers} == set(GRADES)
    assert {c.channel for c in customers} == set(CHANNELS)
    assert {r.reason for r in plan.all("returns")} == set(RETURN_REASONS)
    assert {c.category for c in plan.all("complaints")} == set(COMPLAINT_CATEGORIES)
    assert any(d.late for d in plan.all("deliveries"))
    assert not all(d.late for d in plan.all("deliveries"))
    assert plan.overdue_invoices()
    assert any(p.late for p in plan.all("payments"))
    assert {v.outcome for v in plan.all("visits")} >= {"order", "refused", "missed"}
    assert plan.start == date(2026, 5, 11) and plan.end == END
    # Routes: each rep's approved customers, about ten a day, on every day of the week.
    for rep in plan.organisation.reps:
        on_routes = [c for r in plan.organisation.routes if r.rep_id == rep.staff_id for c in r.customer_ids]
        assert sorted(on_routes) == sorted(c.customer_id for c in customers if c.rep_id == rep.staff_id and c.approved)
    assert {w for r in plan.organisation.routes for w in r.weekdays} == set(range(1, 8))


@pytest.mark.fast
def test_even_the_smallest_window_keeps_the_cases_the_demo_shows() -> None:
    plan = build_plan(1, scale=0.02, days=2, end=END)
    # The sales office's day: duty receptions, a race for one unit, partial deposits, a
    # subscription sent back and some waiting for the signature, contracts, a handover, a release.
    kinds = Counter(s.kind for s in plan.office_day)
    assert {"return_of_busy_reps_customer", "return_of_absent_reps_customer", "race", "referral"} <= set(kinds)
    assert {"contract", "hand_over", "release", "sign", "close", "claim", "check", "review"} <= set(kinds)
    assert kinds["subscription"] > kinds["sign"] and any(s.reason for s in plan.office_day if s.kind == "subscription")
    assert any(s.amount_fen < s.agreed_fen for s in plan.office_day if s.kind == "deposit" and s.agreed_fen)
    assert [s.at for s in plan.office_day] == sorted(s.at for s in plan.office_day)
    assert {c.grade for c in plan.organisation.customers} == set(GRADES)
    assert {c.channel for c in plan.organisation.customers} == set(CHANNELS)
    assert {r.reason for r in plan.all("returns")} == set(RETURN_REASONS)
    assert any(d.late for d in plan.all("deliveries"))
    assert plan.overdue_invoices()


@pytest.mark.fast
def test_the_office_day_never_leaves_a_customer_without_a_free_rep() -> None:
    """At every arrival and call, fewer walk-ins are being served than reps are present (one
    leaves at the sign-out): the rotation always has someone to give the customer to."""
    for seed, scale in ((7, 1.0), (11, 0.02), (3, 0.1)):
        plan = build_plan(seed, scale=scale, days=1, end=END)
        office = plan.organisation.office
        assert office is not None
        steps = plan.office_day
        served: dict[str, tuple] = {}
        for s in steps:
            if s.kind == "walk_in":
                finish = next(f.at for f in steps if f.kind == "finish" and f.visitor == s.visitor and f.at > s.at)
                served.setdefault(s.visitor, [])
                served[s.visitor].append((s.at, finish))
        signed_out = next(s.at for s in steps if s.kind == "sign_out")
        arrivals = (
            "walk_in",
            "call",
            "return_of_busy_reps_customer",
            "return_of_absent_reps_customer",
            "friend_arrives",
        )
        for s in steps:
            if s.kind not in arrivals:
                continue
            busy = sum(
                1 for spans in served.values() for a, b in spans if a < s.at < b or (a <= s.at < b and a != s.at)
            )
            present = len(office.reps) - (1 if s.at >= signed_out else 0)
            assert busy < present, (seed, s.kind, s.at, busy, present)


@pytest.mark.fast
def test_the_default_size_is_a_mid_sized_department() -> None:
    size = Size.scaled(1.0)
    assert (size.divisions, size.areas, size.districts, size.reps, size.skus) == (2, 4, 12, 60, 40)
    plan = build_plan(7, scale=1.0, days=7, end=END)
    assert 2900 <= len(plan.organisation.customers) <= 3100
    office = plan.organisation.office
    assert office is not None and len(office.units) == 320 and len(office.reps) == 6  # a few hundred units
    assert {u.layout_name for u in office.units} == {"A", "B", "C"} and any(u.release is None for u in office.units)
    per_day = Counter((v.rep_id, v.day) for v in plan.all("visits"))
    assert 8 <= sum(per_day.values()) / len(per_day) <= 12


async def test_a_small_department_lives_two_days_in_the_real_services(start_service, nats_url, unique_prefix) -> None:
    customer = await start_service(customer_definition())
    visit = await start_service(visit_definition())
    orders = await start_service(orders_definition())
    reporting = await start_service(reporting_definition())
    today = business_date(datetime.now(UTC), TIMEZONE)
    plan = build_plan(11, scale=0.02, days=2, end=today)

    summary = await drive(
        plan,
        signing_key=SIGNING_KEY,
        nats_url=nats_url,
        nats_login=nats_login_for_tests("system"),
        nats_namespace=unique_prefix,
        patience=20.0,
        clients={"customer": customer.http, "visit": visit.http, "orders": orders.http, "reporting": reporting.http},
    )

    manager = Actor(id=plan.organisation.sales_manager.staff_id, role=Role.sales_manager)
    rejected = summary.rejected_by_code()
    assert summary.sent > 500
    # Nothing refused for a reason that would be a bug in the plan or the driver.
    assert not [k for k in rejected if k[0] in (403, 404, 422)], summary.render()
    assert sum(rejected.values()) < summary.sent * 0.02, summary.render()
    assert "nats ingest" in summary.transports and "nats request/reply" in summary.transports, summary.render()

    # The customer archive holds every card the plan registered.
    listed = (await customer.get(manager, "/customers", limit=1)).json()
    assert listed["total"] == len(plan.organisation.customers)
    # The orders service holds the imported history and today's orders.
    history_orders = [o for o in plan.all("orders") if o.day < today]
    assert summary.imported["orders"] == len(history_orders)
    listed = (await orders.get(manager, "/orders", date_from=plan.start.isoformat(), limit=1)).json()
    live = sum(1 for o in plan.all("orders") if o.day == today)
    assert listed["total"] >= len(history_orders) + live * 0.8
    returns = (await orders.get(manager, "/returns")).json()
    assert {c["reason"] for c in returns["counts"]} == set(RETURN_REASONS)

    # The reports are filled from the events of the other three services: today's visits on
    # the KPI board, every rep on it.
    done_today = sum(1 for v in plan.all("visits") if v.day == today and v.outcome in ("order", "refused"))

    async def kpi_board():
        r = await reporting.get(manager, "/reports/kpi", to=today.isoformat(), group_by="rep")
        items = r.json().get("items", []) if r.status_code == 200 else []
        return items if sum(i["done"] for i in items) == done_today else None

    board = await eventually(kpi_board, timeout=20)
    assert {i["rep_id"] for i in board} == {r.staff_id for r in plan.organisation.reps}
    assert all(i["planned"] > 0 for i in board)

    async def sales_by_area():
        r = await reporting.get(
            manager,
            "/reports/sales",
            **{"from": plan.start.isoformat()},
            to=today.isoformat(),
            group_by="area",
            period="month",
        )
        items = r.json().get("items", []) if r.status_code == 200 else []
        # The two days may lie in two months: one row per area and month.
        return items if {i["area_id"] for i in items} == {a.area_id for a in plan.organisation.areas} else None

    await eventually(sales_by_area, timeout=20)

    # Field execution: check-ins with their positions, photos against the standard pictures,
    # route plans asked for (the planner's timer does not run here: it is run once), and the
    # month's route cleanup closed.
    assert summary.ok[("visit", "upload_photo")] > 0, summary.render()
    assert summary.ok[("visit", "close_route_cleanup")] == 1, summary.render()
    district = min(plan.organisation.districts, key=lambda d: d.district_id)
    supervisor = plan.organisation.supervisor_of_district(district.district_id).actor()
    photos = (await visit.get(supervisor, "/photos/review", district_id=district.district_id, status="all")).json()
    assert photos["photos"] and all(p["audit"]["cites_this_photo"] for p in photos["photos"])
    check_ins = await visit_events(visit, "visit.checked_in")
    assert check_ins and all(e["accuracy_m"] is not None for e in check_ins)
    assert any(e["position_verified"] for e in check_ins)
    requested = summary.ok[("visit", "request_route_plan")]
    assert requested == len(plan.organisation.districts)
    assert (await propose_route_plans(visit.runtime)).count == requested
    rep = min(r.staff_id for r in plan.organisation.reps if r.district_id == district.district_id)
    [proposal] = (await visit.get(supervisor, "/route-plans", rep_id=rep)).json()["plans"]
    assert proposal["status"] == "proposed" and proposal["distance"]["proposed_m"] > 0, proposal

    # The sales office: receptions in turn with duty, units sold, the reports of its reps.
    office = plan.organisation.office
    assert office is not None
    counts = (await orders.get(manager, f"/projects/{office.project_id}/units", limit=1)).json()["counts"]
    assert sum(counts.values()) == len(office.units) and counts["reserved"] >= 1 and counts["handed_over"] >= 1
    board = (await customer.get(manager, f"/offices/{office.project_id}/board")).json()
    assert board["counts"]["calls"] == sum(1 for s in plan.office_day if s.kind == "call")
    assert board["counts"]["duty_receptions"] >= 1 and len(board["reps"]) == len(office.reps)

    async def office_leads():
        r = await reporting.get(manager, "/reports/office-leads", to=today.isoformat(), group_by="rep")
        items = r.json().get("items", []) if r.status_code == 200 else []
        return items if sum(i["calls"] for i in items) == board["counts"]["calls"] else None

    leads = await eventually(office_leads, timeout=20)
    assert {i["rep_id"] for i in leads} <= {r.staff_id for r in office.reps} and sum(i["deposits"] for i in leads) >= 1
