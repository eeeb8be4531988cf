"""Pure rules of field execution, without I/O: distances, check-in flags, visit frequency and
the planner's plan, cycle routes, the standard picture and the route cleanup."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

# The test data sits next to this file (conftest puts the folder on the path).
from field_testdata import DEPOT, hand_made_sheets, outlets

from salesplatform.errors import DomainError
from visit_service.adapters.route_solver import solve
from visit_service.domain.check_in import (
    FAR_FROM_OUTLET,
    LOW_ACCURACY,
    OUTLET_POSITION_UNKNOWN,
    REPEATED_COORDINATES,
    PositionRules,
    assess_position,
)
from visit_service.domain.geo import Point, haversine_m
from visit_service.domain.merchandising import compare_with_standard
from visit_service.domain.planning import RouteSheet, cycle_offset_for, stops_for, week_number
from visit_service.domain.route_planning import (
    START,
    DaySheet,
    Outlet,
    PlanningProblem,
    PlanningRules,
    check_matrix,
    compare,
    current_sheets,
    cycle_weeks,
    frequency_breaches,
    plan_distance_m,
)
from visit_service.domain.standards import CleanupRules, OutletOnRecord, cleanup_report

pytestmark = pytest.mark.fast

RULES = PositionRules()  # 200 m
OUTLET = Point(31.2304, 121.4737)


def north_of(p: Point, metres: float) -> Point:
    # One degree of latitude is 2πR/360 = 111,195 m on the mean sphere.
    return Point(p.latitude + metres / 111_194.93, p.longitude)


# -- distances and check-ins ---------------------------------------------------------------------


def test_haversine_distances() -> None:
    assert haversine_m(OUTLET, OUTLET) == 0.0
    assert haversine_m(Point(0, 0), Point(1, 0)) == pytest.approx(111_194.93, abs=0.5)
    # Shanghai People's Square to Beijing Tiananmen: about 1,067 km.
    assert haversine_m(OUTLET, Point(39.9087, 116.3975)) == pytest.approx(1_067_000, rel=0.005)
    assert haversine_m(OUTLET, north_of(OUTLET, 350)) == pytest.approx(350, abs=0.5)
    with pytest.raises(ValueError):
        Point(91, 0)


def test_a_check_in_350_m_away_is_flagged_with_its_distance() -> None:
    check = assess_position(north_of(OUTLET, 350), 15.0, OUTLET, RULES)
    assert check.flags == (FAR_FROM_OUTLET,)
    assert check.distance_m == pytest.approx(350, abs=0.5)
    assert check.verified is False


def test_a_check_in_within_200_m_is_verified_and_the_limit_is_configured() -> None:
    near = assess_position(north_of(OUTLET, 150), 20.0, OUTLET, RULES)
    assert near.flags == () and near.verified is True and near.distance_m == pytest.approx(150, abs=0.5)
    assert assess_position(north_of(OUTLET, 199.5), None, OUTLET, RULES).verified is True
    assert assess_position(north_of(OUTLET, 150), None, OUTLET, PositionRules(max_distance_m=100)).flags == (
        FAR_FROM_OUTLET,
    )


def test_a_coarse_reading_an_unknown_outlet_and_repeated_coordinates() -> None:
    coarse = assess_position(OUTLET, 500.0, OUTLET, RULES)
    assert coarse.flags == (LOW_ACCURACY,) and coarse.verified is False
    unknown = assess_position(OUTLET, 10.0, None, RULES)
    assert unknown.flags == (OUTLET_POSITION_UNKNOWN,) and unknown.verified is None and unknown.distance_m is None
    faked = assess_position(OUTLET, 5.0, OUTLET, RULES, ["v-9", "v-2"])
    assert faked.flags == (REPEATED_COORDINATES,) and faked.verified is False
    assert faked.repeated_at == ("v-2", "v-9")
    assert assess_position(OUTLET, 5.0, None, RULES, ["v-2"]).verified is False


# -- frequency and plans ---------------------------------------------------------------------------


def problem(**rules: object) -> PlanningProblem:
    return PlanningProblem("rep-1", DEPOT, outlets(), PlanningRules(**rules))  # type: ignore[arg-type]


def test_frequencies_by_grade_make_a_cycle_of_their_least_common_multiple() -> None:
    rules = PlanningRules()
    assert (rules.weeks_for("A"), rules.weeks_for("B"), rules.weeks_for("C"), rules.weeks_for(None)) == (1, 2, 4, 4)
    assert cycle_weeks([1, 2, 4]) == 4 and cycle_weeks([2, 3]) == 6 and cycle_weeks([]) == 1
    assert problem().cycle_weeks == 4
    assert problem(frequency_weeks={"A": 1, "B": 1, "C": 2}).cycle_weeks == 2
    with pytest.raises(ValueError):
        PlanningRules(frequency_weeks={"A": 0})
    with pytest.raises(ValueError):
        PlanningRules(workdays=(1, 8))


def test_a_plan_breaking_the_frequency_rules_is_caught() -> None:
    p = problem()
    good = hand_made_sheets()
    assert frequency_breaches(p, good) == []
    # An A outlet left out of one week.
    a = next(o.customer_id for o in p.outlets if o.grade == "A")
    dropped = [
        DaySheet(s.week, s.weekday, tuple(c for c in s.customer_ids if not (c == a and s.week == 2))) for s in good
    ]
    assert [b.customer_id for b in frequency_breaches(p, dropped)] == [a]
    # A B outlet seen in weeks 1 and 2 instead of 1 and 3.
    b = next(
        o.customer_id for o in p.outlets if o.grade == "B" and any(o.customer_id in s.customer_ids for s in good[:5])
    )
    moved = [
        DaySheet(
            s.week,
            s.weekday,
            tuple(c for c in s.customer_ids if c != b) + ((b,) if s.week in (1, 2) and s.weekday == 1 else ()),
        )
        for s in good
    ]
    assert any(x.customer_id == b and "apart" in x.problem for x in frequency_breaches(p, moved))
    # A day longer than the working hours (an hour a day).
    short = problem(day_start_minute=8 * 60, day_end_minute=9 * 60)
    assert any("longer than the working day" in x.problem for x in frequency_breaches(short, good))


def test_the_planner_visits_40_outlets_at_their_frequency_and_beats_the_hand_made_routes() -> None:
    p = problem()
    result = solve(p)
    assert result.status == "solved"
    assert frequency_breaches(p, result.sheets) == []
    assert len(result.sheets) == 4 * 5
    visits = sum(len(s.customer_ids) for s in result.sheets)
    assert visits == 10 * 4 + 14 * 2 + 16 * 1
    hand_made = plan_distance_m(p, hand_made_sheets())
    assert plan_distance_m(p, result.sheets) <= hand_made
    # The same problem gives the same plan.
    assert solve(p).sheets == result.sheets


def test_the_planner_uses_a_supplied_matrix_and_says_when_nothing_fits() -> None:
    few = PlanningProblem(
        "rep-1",
        DEPOT,
        outlets()[:3],
        PlanningRules(frequency_weeks={"A": 1, "B": 1, "C": 1}, workdays=(1, 2)),
        # Road distances where o01 is far from everything but the start.
        matrix={
            START: {"o00": 1000, "o01": 1000, "o02": 1000},
            "o00": {START: 1000, "o01": 9000, "o02": 500},
            "o01": {START: 1000, "o00": 9000, "o02": 9000},
            "o02": {START: 1000, "o00": 500, "o01": 9000},
        },
    )
    assert check_matrix(few.matrix or {}, [START, "o00", "o01", "o02"]) == []
    assert check_matrix({START: {"o00": -1}}, [START, "o00"]) == [
        "the distance from start to o00 is not a non-negative number",
        "no row for o00",
    ]
    result = solve(few)
    # By the matrix (not by air) o01 is a day's trip of its own; o00 and o02 go together.
    assert sorted(tuple(sorted(s.customer_ids)) for s in result.sheets) == [("o00", "o02"), ("o01",)]
    assert plan_distance_m(few, result.sheets) == (1000 + 1000) + (1000 + 500 + 1000)
    crowded = problem(visit_minutes=240)
    refused = solve(crowded)
    assert refused.status == "infeasible" and "do not fit" in (refused.reason or "")


def test_routes_running_every_few_weeks_and_the_current_length_of_routes() -> None:
    monday = date(2026, 11, 2)
    assert week_number(monday) == week_number(monday + timedelta(days=6)) == week_number(monday - timedelta(days=7)) + 1
    offset = cycle_offset_for(monday, 1, 2)
    every_other = RouteSheet("r", "B Monday", (1,), ("c1",), cycle_weeks=2, cycle_offset=offset)
    weekly = RouteSheet("w", "A Monday", (1,), ("c2",))
    assert [s.customer_id for s in stops_for([every_other, weekly], monday)] == ["c2", "c1"]
    assert [s.customer_id for s in stops_for([every_other, weekly], monday + timedelta(days=7))] == ["c2"]
    assert [s.customer_id for s in stops_for([every_other, weekly], monday + timedelta(days=14))] == ["c2", "c1"]
    sheets = current_sheets([every_other, weekly], monday, 2)
    assert [(s.week, s.weekday, s.customer_ids) for s in sheets if s.customer_ids] == [
        (1, 1, ("c2", "c1")),
        (2, 1, ("c2",)),
    ]
    p = PlanningProblem("rep-1", DEPOT, (Outlet("c2", "A", north_of(DEPOT, 1000)),), PlanningRules())
    result = compare(p, sheets, [], {"c1": north_of(DEPOT, 2000)})
    assert result.current_m == pytest.approx(2000 + 2000 + 2000, abs=1)
    assert compare(p, sheets, [], {}).unmeasured == ("c1",)


# -- the standard picture and the route cleanup ---------------------------------------------------


def test_the_checklist_against_the_channels_standard_picture() -> None:
    items = ["cooler_front", "brand_block", "price_tags"]
    all_ticked = compare_with_standard(items, {"cooler_front": True, "brand_block": True, "price_tags": True})
    assert all_ticked is not None and all_ticked.met is True and all_ticked.missing == ()
    partial = compare_with_standard(items, {"cooler_front": True, "brand_block": False})
    assert partial is not None and partial.met is False and partial.missing == ("brand_block", "price_tags")
    unticked = compare_with_standard(items, None)
    assert unticked is not None and unticked.met is None
    assert compare_with_standard([], None) is None
    with pytest.raises(DomainError) as e:
        compare_with_standard(items, {"shelf_full": True})
    assert e.value.code == "unknown_checklist_item"
    with pytest.raises(DomainError) as e:
        compare_with_standard([], {"cooler_front": True})
    assert e.value.code == "no_standard_picture"


def test_the_route_cleanup_sorts_outlets_into_its_four_lists() -> None:
    today = date(2026, 11, 30)
    rules = CleanupRules(unvisited_days=30, new_outlet_days=30)
    long_ago = today - timedelta(days=200)
    outlets_ = [
        OutletOnRecord("fine", "r", "active", long_ago, ("rt",), today - timedelta(days=3)),
        OutletOnRecord("forgotten", "r", "active", long_ago, (), None),
        OutletOnRecord("new", "r", "prospect", today - timedelta(days=5), (), None),
        OutletOnRecord("stale", "r", "active", long_ago, ("rt",), today - timedelta(days=31)),
        OutletOnRecord("never", "r", "active", long_ago, ("rt",), None),
        OutletOnRecord("just_added", "r", "prospect", today - timedelta(days=10), ("rt",), None),
        OutletOnRecord("lost", "r", "lost", long_ago, ("rt",), today),
        OutletOnRecord("dormant_off", "r", "dormant", long_ago, (), None),
        OutletOnRecord("pending", "r", "pending", None, (), None),
    ]
    assert cleanup_report(outlets_, today, rules) == {
        "no_route": ["forgotten"],
        "unvisited": ["never", "stale"],
        "inactive_on_route": ["lost"],
        "new_waiting": ["new"],
    }
