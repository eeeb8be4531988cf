"""Every report's rows are exactly what its route documents (adapters/rows.py): on the
scenario's month, each report in each of its groupings answers rows that validate strictly
against their row model, with no key the model lacks; and every report route documents a page
of its own rows in the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from reporting_testkit import MANAGER, Harness, documented_rows

from reporting_service.adapters.rows import ROWS
from reporting_service.domain.reports import REPORTS

# Every test here only reads: they share one loaded month (conftest.shared_month).
pytestmark = pytest.mark.asyncio(loop_scope="module")

NOV = {"from_": "2026-11-01", "to": "2026-11-30"}
TERRITORY = ("rep", "district", "area", "total")

# Each report in each of its shapes: groupings add or drop columns.
ASKED: list[tuple[str, dict[str, Any]]] = [
    ("/reports/sales", {**NOV, "period": "day", "group_by": "rep,customer,sku,product_group,district,area"}),
    ("/reports/sales", {**NOV, "period": "total"}),
    *[("/reports/composition", {**NOV, "by": by}) for by in ("grade", "channel", "credit_rating")],
    *[("/reports/composition", {**NOV, "by": by}) for by in ("product_group", "sku", "district", "area")],
    ("/reports/composition", {**NOV, "by": "grade", "classification": "current"}),
    *[("/reports/credit", {**NOV, "group_by": g}) for g in ("credit_rating", "customer")],
    *[("/reports/kpi", {**NOV, "group_by": g}) for g in TERRITORY],
    *[("/reports/receivables", {"as_of": "2026-11-30", "group_by": g}) for g in ("customer", *TERRITORY)],
    *[("/reports/collections", {**NOV, "group_by": g}) for g in ("customer", *TERRITORY)],
    ("/reports/returns", {**NOV, "group_by": "reason,resolution,scope,status,rep,district,area"}),
    ("/reports/returns", {**NOV, "group_by": "sku,product_group"}),
    ("/reports/complaints", {**NOV, "group_by": "category,severity,channel,department"}),
    ("/reports/promotions", {}),
    ("/reports/satisfaction", {}),
    ("/reports/satisfaction", {"group_by": "rep,district,area"}),
    *[("/reports/customer-base", {"as_of": "2026-11-30", "group_by": g}) for g in TERRITORY],
]


@pytest.mark.parametrize(("path", "params"), ASKED, ids=[f"{p} {q}" for p, q in ASKED])
async def test_every_report_answers_its_documented_rows(
    shared_month: Harness, path: str, params: dict[str, Any]
) -> None:
    rows = await documented_rows(shared_month, path, MANAGER, **params)
    assert rows, "the month has rows of every report to check"


async def test_target_rows_are_documented(shared_month: Harness) -> None:
    h = shared_month
    for level, subject, group in (("rep", "r1", None), ("district", "d1", "beverage"), ("area", "a2", None)):
        body = {"month": "2026-11", "level": level, "subject_id": subject, "amount_fen": 5000}
        assert (await h.command("set_target", {**body, "product_group": group}, MANAGER)).status_code == 200
    rows = await documented_rows(h, "/reports/targets", MANAGER, month="2026-11", as_of="2026-11-20")
    assert {r["level"] for r in rows} == {"rep", "district", "area"}


async def test_every_report_route_documents_a_page_of_its_own_rows(shared_month: Harness) -> None:
    document = (await shared_month.client.get("/openapi.json")).json()
    documented = {}
    for path, operations in document["paths"].items():
        if path.startswith("/reports/") and "get" in operations:
            schema = operations["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            documented[path] = schema["$ref"].rsplit("/", 1)[-1]
    assert len(documented) == len(REPORTS)
    pages = {f"ReportPage_{model.__name__}_" for model in ROWS.values()}
    assert set(documented.values()) == pages
    for page in pages:
        assert document["components"]["schemas"][page]["properties"]["items"]["items"]["$ref"].endswith(
            page.removeprefix("ReportPage_").removesuffix("_")
        )
