"""The HTTP side of the reports: who sees what, filters, paging, CSV, bad input, operations."""

from __future__ import annotations

import csv
import io

import pytest
from reporting_testkit import (
    AREA_A1,
    AREA_A2,
    CLERK,
    GENERAL,
    INSPECTOR,
    MANAGER,
    OPERATOR,
    REP_R1,
    REP_R2,
    REP_R4,
    SUP_D1,
    SUP_D2,
    auth,
    by,
)

from salesplatform.events import Actor, Role

# Every test here only reads (or is refused): they share one loaded month (conftest.shared_month).
pytestmark = pytest.mark.asyncio(loop_scope="module")

NOV = {"from_": "2026-11-01", "to": "2026-11-30"}


async def total(h, actor, path="/reports/sales", **params) -> int:
    rows = await h.report(path, actor, **NOV, period="total", **params)
    return sum(r["amount_fen"] for r in rows)


async def test_each_reader_sees_the_own_line(shared_month) -> None:
    h = shared_month
    assert await total(h, REP_R1) == 7800
    assert await total(h, REP_R2) == 2100
    assert await total(h, SUP_D1) == 9900
    assert await total(h, SUP_D2) == 1750
    assert await total(h, AREA_A1) == 11650
    assert await total(h, AREA_A2) == 1000
    for actor in (MANAGER, GENERAL, CLERK):
        assert await total(h, actor) == 12650
    assert await total(h, SUP_D1, rep_id="r2") == 2100
    assert await total(h, AREA_A1, district_id="d2") == 1750

    assert set(by(await h.report("/reports/kpi", SUP_D1, **NOV), "rep_id")) == {"r1", "r2"}
    assert set(by(await h.report("/reports/kpi", REP_R4, **NOV), "rep_id")) == {"r4"}
    assert set(by(await h.report("/reports/receivables", SUP_D1, as_of="2026-11-30"), "customer_id")) == {
        "c1",
        "c2",
        "c3",
    }
    assert set(by(await h.report("/reports/receivables", REP_R1, as_of="2026-11-30"), "customer_id")) == {"c1", "c2"}
    assert [c["received"] for c in await h.report("/reports/complaints", REP_R1, **NOV)] == [1]
    [base] = await h.report("/reports/customer-base", AREA_A2, from_="2026-11-01", as_of="2026-11-30")
    assert (base["active"], base["prospects"]) == (1, 1)


BEYOND_THE_LINE = [
    (REP_R1, {"rep_id": "r2"}),
    (REP_R1, {"district_id": "d2"}),
    (REP_R1, {"customer_id": "c3"}),
    (SUP_D1, {"district_id": "d2"}),
    (SUP_D1, {"rep_id": "r3"}),
    (SUP_D1, {"area_id": "a2"}),
    (SUP_D1, {"customer_id": "c4"}),
    (AREA_A2, {"district_id": "d1"}),
    (AREA_A2, {"rep_id": "r1"}),
    (AREA_A2, {"area_id": "a1"}),
]


async def test_a_filter_beyond_the_readers_line_is_refused_not_narrowed(shared_month) -> None:
    for actor, params in BEYOND_THE_LINE:
        for path in ("/reports/sales", "/reports/kpi", "/reports/receivables", "/reports/returns"):
            if path == "/reports/kpi" and "customer_id" in params:
                continue
            response = await shared_month.get(path, actor, **NOV, **params)
            assert response.status_code == 403, (actor.id, path, params, response.text)
            assert response.json()["error"]["code"] == "outside_line"


@pytest.mark.parametrize(
    ("path", "actor", "params"),
    [
        ("/reports/credit", SUP_D1, {"area_id": "a1"}),  # the own area is more than the district
        ("/reports/targets", REP_R1, {"level": "district", "subject_id": "d1"}),  # more than the rep
        ("/reports/sales", REP_R1, {"district_id": "d1"}),
        ("/reports/kpi", SUP_D1, {"area_id": "a1"}),
    ],
)
async def test_a_filter_wider_than_the_readers_line_is_refused_not_narrowed(shared_month, path, actor, params) -> None:
    response = await shared_month.get(path, actor, **params)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "outside_line"


@pytest.mark.parametrize(
    "actor",
    [Actor(id="x", role=Role.supervisor), Actor(id="y", role=Role.area_manager, district="d1")],
)
async def test_a_token_without_its_territory_is_refused(shared_month, actor) -> None:
    response = await shared_month.get("/reports/sales", actor, **NOV)
    assert response.status_code == 403 and response.json()["error"]["code"] == "no_territory"


async def test_inspectors_read_returns_only(shared_month) -> None:
    h = shared_month
    assert (await h.get("/reports/sales", INSPECTOR, **NOV)).status_code == 403
    assert (await h.get("/reports/kpi", INSPECTOR, **NOV)).status_code == 403
    assert len(await h.report("/reports/returns", INSPECTOR, **NOV)) == 4


async def test_unauthenticated_reads_are_refused(shared_month) -> None:
    response = await shared_month.client.get("/reports/sales")
    assert response.status_code == 401


async def test_pages_cover_the_report_once(shared_month) -> None:
    h = shared_month
    everything = await h.report("/reports/sales", MANAGER, **NOV, group_by="customer,sku")
    assert len(everything) == 13  # day × customer × SKU
    seen = []
    for offset in range(0, 16, 4):
        response = await h.get("/reports/sales", MANAGER, **NOV, group_by="customer,sku", limit=4, offset=offset)
        body = response.json()
        assert (body["total"], body["limit"], body["offset"]) == (13, 4, offset)
        seen += body["items"]
    assert seen == everything
    past = (await h.get("/reports/sales", MANAGER, **NOV, group_by="customer,sku", offset=50)).json()
    assert (past["items"], past["total"]) == ([], 13)


async def test_csv_export_has_the_same_rows(shared_month) -> None:
    h = shared_month
    response = await h.get("/reports/kpi", MANAGER, **NOV, format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-total-count"] == "4"
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    r1 = by(rows, "rep_id")["r1"]
    assert (
        r1["planned"],
        r1["kpis.visit_success.value"],
        r1["kpis.visit_success.goal"],
        r1["kpis.visit_success.met"],
    ) == ("4", "0.75", "0.85", "false")
    sales = await h.get("/reports/sales", SUP_D1, **NOV, period="total", group_by="rep", format="csv")
    assert [(r["rep_id"], r["amount_fen"]) for r in csv.DictReader(io.StringIO(sales.content.decode("utf-8-sig")))] == [
        ("r1", "7800"),
        ("r2", "2100"),
    ]
    promotions = await h.get("/reports/promotions", MANAGER, format="csv")
    assert next(csv.DictReader(io.StringIO(promotions.content.decode("utf-8-sig"))))["skus"] == "s2"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/reports/sales", {"group_by": "rep,colour"}, "group_by"),
        ("/reports/sales", {"period": "year"}, "query.period"),
        ("/reports/sales", {"from_": "2026-11-30", "to": "2026-11-01"}, "from"),
        ("/reports/sales", {"from_": "yesterday"}, "query.from"),
        ("/reports/sales", {"limit": 5000}, "limit"),
        ("/reports/sales", {"limit": 0}, "query.limit"),
        ("/reports/kpi", {"group_by": "customer"}, "query.group_by"),
        ("/reports/targets", {"month": "2026-13"}, "query.month"),
        ("/reports/customer-base", {"dormant_days": 0}, "query.dormant_days"),
        ("/reports/satisfaction", {"from_period": "2026H3"}, "query.from_period"),
        ("/reports/returns", {"group_by": "weather"}, "group_by"),
    ],
)
async def test_bad_filters_are_422_with_the_field(shared_month, path, params, field) -> None:
    response = await shared_month.get(path, MANAGER, **params)
    assert response.status_code == 422, response.text
    assert field in [d["field"] for d in response.json()["error"]["details"]]


async def test_a_csv_export_may_be_longer_than_a_json_page(shared_month) -> None:
    response = await shared_month.get("/reports/sales", MANAGER, **NOV, limit=5000, format="csv")
    assert response.status_code == 200


async def test_defaults_are_this_month_to_today_in_the_company_time_zone(shared_month) -> None:
    body = (await shared_month.get("/reports/sales", MANAGER)).json()
    assert (body["filters"]["from"], body["filters"]["to"]) == ("2026-11-01", "2026-11-30")
    assert body["definition"].startswith("Quantity (units) and amount (fen) sold")
    body = (await shared_month.get("/reports/targets", MANAGER)).json()
    assert (body["filters"]["month"], body["filters"]["as_of"]) == ("2026-11", "2026-11-30")


async def test_every_report_is_listed_with_its_definition(shared_month) -> None:
    h = shared_month
    listing = (await h.client.get("/reports", headers=auth(CLERK))).json()
    assert set(listing["reports"]) == {
        "sales",
        "composition",
        "credit",
        "kpi",
        "target_achievement",
        "receivables",
        "collections",
        "returns",
        "complaints",
        "promotions",
        "satisfaction",
        "customer_base",
        "office_leads",
        "daily_close",
        "weekly_targets",
        "performance_warnings",
        "office_sales",
        "unit_inventory",
        "deposits_due",
    }
    assert listing["changes"]["subject"].endswith("reporting.changed.<report>")
    openapi = (await h.client.get("/openapi.json")).json()
    kpi = openapi["paths"]["/reports/kpi"]["get"]
    assert "visit_success = checked-out visits with successful = true" in kpi["description"]
    changes = (await h.client.get("/schemas/changes")).json()
    assert "kpi" in changes["reports"] and "targets" in changes["reports"]
    asyncapi = (await h.client.get("/asyncapi.json")).json()
    assert any("changed.kpi" in address for address in (c.get("address", "") for c in asyncapi["channels"].values()))


async def test_only_operators_rebuild(shared_month) -> None:
    """Rebuilds are operations: managers, whose reports they are, have no say in them."""
    h = shared_month
    for actor in (REP_R1, SUP_D1, AREA_A1, CLERK, MANAGER, GENERAL):
        response = await h.client.post("/admin/rebuild-all", headers=auth(actor))
        assert (response.status_code, response.json()["error"]["code"]) == (403, "operator_only")
        assert (await h.client.get("/admin/projections", headers=auth(actor))).status_code == 403
    unknown = await h.client.post("/admin/rebuild-all", params={"projections": "sales,nope"}, headers=auth(OPERATOR))
    assert unknown.status_code == 422
    assert (await h.client.get("/admin/projections", headers=auth(OPERATOR))).status_code == 200
    for business in ("/reports/sales", "/reports/kpi"):
        assert (await h.client.get(business, headers=auth(OPERATOR))).status_code == 403


async def test_the_routes_are_built_before_the_runtime_opens_its_pool() -> None:
    """The report routes are module-level and read the runtime per request: the app is built
    from a runtime that has not started (no pool yet), as when the service runs as a process."""
    from fastapi import APIRouter

    from reporting_service.bootstrap import definition
    from salesplatform.devstack.pytest_plugin import settings_for_tests
    from salesplatform.service import Runtime, http_app

    defn = definition()
    assert all(isinstance(r, APIRouter) for r in defn.routers)
    rt = Runtime(defn, settings_for_tests("postgresql://nowhere/none", "nats://nowhere:1", "t", service="reporting"))
    assert not hasattr(rt, "pool")
    paths = set(http_app(rt).api.openapi()["paths"])
    assert {"/reports/sales", "/reports/office-leads", "/admin/rebuild-all"} <= paths
