"""Routes (线路, 路序) and the day's stops from them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from salesplatform.errors import DomainError
from visit_service.domain.events import RouteChanged, RouteDefined
from visit_service.domain.planning import RouteSheet, order_id_for, stops_for, visit_id_for
from visit_service.domain.route import Route

pytestmark = pytest.mark.fast

MONDAY = date(2026, 11, 2)


def route() -> Route:
    r = Route("r1")
    r.define("rep-1", "Monday north", [3, 1, 1], ["c1", "c2", "c3"])
    return r


def test_a_route_is_defined_with_sorted_weekdays_and_its_order() -> None:
    r = route()
    [event] = r.pending
    assert isinstance(event, RouteDefined)
    assert event.model_dump() == {
        "route_id": "r1",
        "rep_id": "rep-1",
        "name": "Monday north",
        "weekdays": [1, 3],
        "customer_ids": ["c1", "c2", "c3"],
        "cycle_weeks": 1,
        "cycle_offset": 0,
        "plan_id": None,
    }
    with pytest.raises(DomainError) as e:
        r.define("rep-1", "again", [1], [])
    assert e.value.code == "route_exists"


def test_a_customer_listed_twice_is_refused() -> None:
    with pytest.raises(DomainError) as e:
        Route("r2").define("rep-1", "x", [1], ["c1", "c1"])
    assert e.value.code == "duplicate_customer"


def test_add_at_a_position_or_at_the_end_and_never_twice() -> None:
    r = route()
    r.add_customer("c9", position=2)
    assert r.customer_ids == ["c1", "c9", "c2", "c3"]
    r.add_customer("c8")
    assert r.customer_ids[-1] == "c8"
    assert isinstance(r.pending[-1], RouteChanged) and r.pending[-1].reason == "customer_added"
    with pytest.raises(DomainError) as e:
        r.add_customer("c1")
    assert e.value.code == "customer_already_on_route"


def test_remove_and_reassignment_removal_say_why() -> None:
    r = route()
    r.remove_customer("c2")
    assert r.customer_ids == ["c1", "c3"] and r.pending[-1].reason == "customer_removed"
    r.remove_customer("c3", reassigned=True)
    assert r.pending[-1].reason == "customer_reassigned" and r.pending[-1].customer_id == "c3"
    with pytest.raises(DomainError) as e:
        r.remove_customer("c2")
    assert e.value.code == "customer_not_on_route"


def test_reorder_must_keep_exactly_the_same_customers() -> None:
    r = route()
    r.reorder(["c3", "c1", "c2"])
    assert r.customer_ids == ["c3", "c1", "c2"] and r.pending[-1].reason == "reordered"
    for bad in (["c3", "c1"], ["c3", "c1", "c2", "c4"], ["c3", "c1", "c4"]):
        with pytest.raises(DomainError) as e:
            r.reorder(bad)
        assert e.value.code == "reorder_mismatch"
    n = len(r.pending)
    r.reorder(["c3", "c1", "c2"])  # the same order: nothing to record
    assert len(r.pending) == n


def test_weekdays_change_records_the_full_route() -> None:
    r = route()
    r.set_weekdays([5, 2])
    assert r.pending[-1].weekdays == [2, 5] and r.pending[-1].customer_ids == ["c1", "c2", "c3"]
    assert r.runs_on(5) and not r.runs_on(1)


def test_the_days_stops_follow_route_order_across_routes_and_visit_a_customer_once() -> None:
    sheets = [
        RouteSheet("rb", "B afternoon", (1, 2), ("c4", "c2")),
        RouteSheet("ra", "A morning", (1,), ("c1", "c2", "c3")),
        RouteSheet("rc", "C Friday", (5,), ("c9",)),
    ]
    stops = stops_for(sheets, MONDAY)
    assert [(s.route_id, s.customer_id, s.sequence) for s in stops] == [
        ("ra", "c1", 1),
        ("ra", "c2", 2),
        ("ra", "c3", 3),
        ("rb", "c4", 4),
    ]
    assert stops_for(sheets, MONDAY + timedelta(days=2)) == []


def test_visit_and_order_ids_are_deterministic() -> None:
    from datetime import date

    a = visit_id_for("rep-1", "c1", date(2026, 11, 2))
    assert a == visit_id_for("rep-1", "c1", date(2026, 11, 2))
    assert a != visit_id_for("rep-1", "c1", date(2026, 11, 3)) != visit_id_for("rep-2", "c1", date(2026, 11, 2))
    assert order_id_for(a) == order_id_for(a) != a
