"""The sales office pages built from the services' answers, without servers: a small fake of the
services' port answers each path as the real API would, and the pages are read as built."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from console_service.adapters.identity import Viewer
from console_service.adapters.services import ApiError
from console_service.application.directory import Names, StaffMember
from console_service.application.office import office, units
from console_service.application.pages import Context
from salesplatform.events import Actor, Role

pytestmark = pytest.mark.fast

ZONE = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 12, 6)
OFFICES = {"items": [{"project_id": "p1", "name": "滨江花园", "district_id": "d9", "area_id": "a1"}]}


class FakeServices:
    """What the services answer, by (service, path); anything else is a 404 as the APIs give."""

    def __init__(self, answers: Mapping[tuple[str, str], Any]) -> None:
        self.answers = dict(answers)
        self.asked: list[tuple[str, str, dict[str, Any]]] = []

    async def get(self, service: str, path: str, token: str, params: Mapping[str, Any] | None = None) -> Any:
        self.asked.append((service, path, dict(params or {})))
        if (service, path) not in self.answers:
            raise ApiError(404, "not_found", path, service)
        answer = self.answers[(service, path)]
        if callable(answer):
            answer = answer(dict(params or {}))
        if isinstance(answer, ApiError):
            raise answer
        return answer

    async def report(
        self, path: str, token: str, params: Mapping[str, Any] | None = None, *, limit: int = 1000
    ) -> tuple[list[dict[str, Any]], int]:
        body = await self.get("reporting", path, token, params)
        return body["items"], body["total"]


class FakeDirectory:
    def __init__(self) -> None:
        self.known = Names(staff={s: StaffMember(s, n, "rep", "d9", "a1") for s, n in (("r1", "王芳"), ("r2", "李强"))})

    async def names(self, token: str, *, missing: Any = ()) -> Names:
        return self.known


def context(services: FakeServices, **params: str) -> Context:
    viewer = Viewer("token", Actor(id="sv9", role=Role.supervisor, district="d9", area="a1"), 0.0)
    return Context(
        viewer=viewer,
        services=services,  # type: ignore[arg-type]
        directory=FakeDirectory(),  # type: ignore[arg-type]
        lang="en",
        today=TODAY,
        zone=ZONE,
        params=params,
    )


def at(hours_from_now: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours_from_now)).isoformat()


LEADS: list[dict[str, Any]] = [
    {"lead_id": "late", "stage": "walk_in", "rep_id": "r1", "rep_name": "王芳", "follow_up_by": at(-2)},
    {"lead_id": "soon", "stage": "phone", "rep_id": "r2", "rep_name": "李强", "come_to_see_by": at(30)},
    {"lead_id": "later", "stage": "walk_in", "rep_id": "r1", "rep_name": "王芳", "follow_up_by": at(100)},
    {"lead_id": "new", "stage": "walk_in", "rep_id": "r1", "rep_name": "王芳", "follow_up_by": None},
]


def leads_of_stage(params: dict[str, Any]) -> dict[str, Any]:
    """`/leads?stage=…`: the leads of that stage."""
    items = [lead for lead in LEADS if lead["stage"] == params["stage"]]
    return {"items": items, "total": len(items)}


def board_answers() -> dict[tuple[str, str], Any]:
    return {
        ("customer", "/offices"): OFFICES,
        ("customer", "/offices/p1/board"): {
            "queue": ["r2", "r1"],
            "next_in_turn": "r1",
            "reps": [
                {
                    "rep_id": rep,
                    "name": name,
                    "signed_in_at": "2026-12-06T01:00:00+00:00",
                    "signed_out_at": None,
                    "serving_lead_id": "l7" if rep == "r2" else None,
                    "serving_since": "2026-12-06T02:00:00+00:00" if rep == "r2" else None,
                    "turns": 3,
                    "own_customers": 1,
                    "duty_receptions": 0,
                }
                for rep, name in (("r1", "王芳"), ("r2", "李强"))
            ],
            "counts": {"walk_ins": 4, "calls": 2, "new_customers": 5, "duty_receptions": 0},
        },
        ("customer", "/offices/p1/registers/walk_in"): {"items": [], "total": 0},
        ("customer", "/offices/p1/registers/phone"): {"items": [], "total": 0},
        ("customer", "/leads"): leads_of_stage,
        ("reporting", "/reports/performance-warnings"): {
            "items": [
                {"rep_id": "r1", "flag": "oral", "behind": True, "history": [{"given_on": "2026-12-04"}]},
                {"rep_id": "r2", "flag": None, "behind": False, "history": []},
            ],
            "total": 2,
        },
    }


def test_the_board_puts_the_rotation_in_turn_and_the_follow_ups_soonest_first() -> None:
    services = FakeServices(board_answers())
    view = asyncio.run(office(context(services)))
    tables = {t.name: t for t in view.tables}
    rotation = tables["office-rotation"].rows
    assert [(r["rep_id"], r["in_turn"], r["next"]) for r in rotation] == [("r2", 1, False), ("r1", 2, True)]
    assert rotation[0]["serving"] == "Serving a customer" and rotation[0]["serving_since"] == "2026-12-06 10:00"
    follow_ups = tables["follow-ups-due"].rows
    # Both stages' leads, soonest first; a lead without a deadline is not due.
    assert [r["lead_id"] for r in follow_ups] == ["late", "soon", "later"]
    assert [r["overdue"] for r in follow_ups] == [True, False, False]
    assert follow_ups[1]["rule"] == "Phone lead to come within 7 days"
    assert [r["rep_id"] for r in tables["performance-warnings"].rows] == ["r1"]
    cards = {c.label: c.value for c in view.cards}
    assert cards["next_in_turn"] == "王芳" and cards["walk_ins"] == 4 and cards["warnings"] == 1
    # The warnings are the office's district's, for the board's month.
    asked = next(p for s, path, p in services.asked if path == "/reports/performance-warnings")
    assert asked == {"month": "2026-12", "district_id": "d9"}
    assert view.live_range == (TODAY, TODAY)


def test_a_project_outside_the_viewers_line_is_asked_and_the_refusal_is_the_answer() -> None:
    answers = board_answers()
    answers[("customer", "/offices/p2/board")] = ApiError(403, "outside_territory", "not yours", "customer")
    services = FakeServices(answers)
    try:
        asyncio.run(office(context(services, project_id="p2")))
    except ApiError as exc:
        assert (exc.status, exc.code) == (403, "outside_territory")
    else:
        raise AssertionError("the customer service's refusal is the page's answer")


def test_without_an_office_in_the_line_the_page_says_so() -> None:
    services = FakeServices({("customer", "/offices"): {"items": []}})
    view = asyncio.run(office(context(services)))
    assert view.note == "no_office" and not view.tables
    assert [path for _, path, _ in services.asked] == ["/offices"]


def test_the_inventory_counts_contracted_mortgaged_and_handed_over_units_as_sold() -> None:
    unit = {
        "unit_id": "u1",
        "building": "1",
        "unit_no": "1-0301",
        "floor": 3,
        "layout_name": "A",
        "layout": "3室2厅2卫",
        "area_sqm": "128.50",
        "orientation": "south",
        "position": "边套",
        "total_price_fen": 312_000_000,
        "status": "subscribed",
        "credited_rep_id": "r2",
        "deal_price_fen": 305_000_000,
        "subscription_state": "signed",
    }
    counts = {"available": 200, "reserved": 3, "subscribed": 5, "contracted": 7, "mortgage": 2, "handed_over": 1}
    services = FakeServices(
        {
            ("customer", "/offices"): OFFICES,
            ("orders", "/projects/p1/units"): {"counts": counts, "total": 1, "items": [unit]},
            ("orders", "/projects/p1/sales-control"): {"changes": [], "counts": counts},
        }
    )
    view = asyncio.run(units(context(services)))
    cards = {c.label: c.value for c in view.cards}
    assert (cards["sold"], cards["subscribed"], cards["units_total"]) == (10, 5, 218)
    (row,) = view.tables[0].rows
    assert (row["rep"], row["status"], row["orientation"], row["layout"]) == (
        "李强",
        "Subscribed",
        "South",
        "A · 3室2厅2卫",
    )


def register_of(lines: int) -> Any:
    """`/offices/p1/registers/…?limit&offset`: a register of `lines` lines, a page at a time."""

    def page(params: dict[str, Any]) -> dict[str, Any]:
        first = params["offset"]
        numbers = range(first + 1, min(first + params["limit"], lines) + 1)
        items = [{"entry_no": n, "rep_id": "r1", "rep_name": "王芳", "basis": "turn"} for n in numbers]
        return {"items": items, "total": lines}

    return page


def test_the_page_shows_its_rows_of_a_long_register_and_the_csv_all_of_them() -> None:
    answers = board_answers()
    answers[("customer", "/offices/p1/registers/walk_in")] = register_of(730)
    page = asyncio.run(office(context(FakeServices(answers))))
    (walk_ins,) = [t for t in page.tables if t.name == "register-walk_in"]
    assert len(walk_ins.rows) == 200 and walk_ins.total == 730 and walk_ins.truncated
    services = FakeServices(answers)
    ctx = context(services)
    ctx.rows = 100_000  # what a CSV download asks for
    every = asyncio.run(office(ctx))
    (walk_ins,) = [t for t in every.tables if t.name == "register-walk_in"]
    assert [r["entry_no"] for r in walk_ins.rows] == list(range(1, 731))
    asked = [p["limit"] for _, path, p in services.asked if path.endswith("/walk_in")]
    assert asked == [500, 500]  # the service's largest page, twice
