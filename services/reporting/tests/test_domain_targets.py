"""Targets and their decomposition: pure rules, no I/O."""

from __future__ import annotations

import pytest

from reporting_service.domain.events import TargetSet
from reporting_service.domain.target import (
    Subject,
    Target,
    check_can_decompose,
    check_child_of,
    check_may_set_target,
    split_amount,
    target_id_for,
)
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Actor, Role

pytestmark = pytest.mark.fast

A1 = Subject("area", "a1", "a1")
D1 = Subject("district", "d1", "a1", "d1")
D3 = Subject("district", "d3", "a2", "d3")
R1 = Subject("rep", "r1", "a1", "d1")
R4 = Subject("rep", "r4", "a2", "d3")


def test_equal_split_sums_exactly_and_gives_leftover_fen_to_the_smallest_ids() -> None:
    parts = split_amount(10_000, {"d3": 1, "d1": 1, "d2": 1})
    assert parts == {"d1": 3334, "d2": 3333, "d3": 3333}
    assert sum(parts.values()) == 10_000


def test_weighted_split_gives_leftover_fen_to_the_largest_remainders() -> None:
    # 10000 × 2/3 = 6666.67 (remainder 2/3) and 10000 × 1/3 = 3333.33 (remainder 1/3).
    assert split_amount(10_000, {"r1": 2, "r2": 1}) == {"r1": 6667, "r2": 3333}
    # 100 over 7, 7, 7: 33.33 each, one fen left, to the smallest id.
    assert split_amount(100, {"c": 7, "b": 7, "a": 7}) == {"a": 34, "b": 33, "c": 33}


@pytest.mark.parametrize("amount", [0, 1, 7, 99_999, 1_234_567_891])
def test_any_split_sums_to_the_parent_and_a_zero_weight_gets_nothing(amount: int) -> None:
    weights = {"x": 3, "y": 0, "z": 5, "w": 11}
    parts = split_amount(amount, weights)
    assert sum(parts.values()) == amount
    assert parts["y"] == 0
    assert all(p >= 0 for p in parts.values())


def test_split_refuses_weights_that_do_not_split() -> None:
    with pytest.raises(DomainError) as e:
        split_amount(100, {"a": 0, "b": 0})
    assert e.value.code == "bad_weights"
    with pytest.raises(DomainError):
        split_amount(100, {})


def test_target_ids_follow_what_the_target_is_about() -> None:
    a = target_id_for("2026-11", "rep", "r1", None)
    assert a == target_id_for("2026-11", "rep", "r1", None)
    assert a != target_id_for("2026-11", "rep", "r1", "snack")
    assert a != target_id_for("2026-12", "rep", "r1", None)


def test_setting_a_target_records_only_changes() -> None:
    t = Target("t1")
    assert t.set("2026-11", "rep", "r1", None, 5000)
    assert isinstance(t.pending[0], TargetSet) and t.pending[0].amount_fen == 5000
    assert not t.set("2026-11", "rep", "r1", None, 5000)
    assert t.set("2026-11", "rep", "r1", None, 6000)
    assert [e.amount_fen for e in t.pending] == [5000, 6000]
    with pytest.raises(DomainError):
        t.set("2026-11", "rep", "r1", None, -1)


def test_managers_set_any_target() -> None:
    for role in (Role.sales_manager, Role.general_manager):
        for subject in (A1, D1, R4):
            check_may_set_target(Actor(id="m", role=role), subject)


def test_an_area_manager_sets_the_targets_of_the_own_areas_districts_and_reps_only() -> None:
    am = Actor(id="am1", role=Role.area_manager, area="a1")
    check_may_set_target(am, D1)
    check_may_set_target(am, R1)
    for subject in (D3, R4, A1):
        with pytest.raises(PermissionDenied):
            check_may_set_target(am, subject)


@pytest.mark.parametrize("role", [Role.rep, Role.supervisor, Role.clerk, Role.inspector, Role.system])
def test_nobody_else_sets_targets(role: Role) -> None:
    with pytest.raises(PermissionDenied):
        check_may_set_target(Actor(id="x", role=role, district="d1", area="a1"), R1)


def test_a_decomposition_reaches_only_the_parents_own_children() -> None:
    check_child_of(A1, D1)
    check_child_of(A1, R1)
    check_child_of(D1, R1)
    with pytest.raises(DomainError) as e:
        check_child_of(A1, D3)
    assert e.value.code == "subject_outside_parent"
    with pytest.raises(DomainError):
        check_child_of(D1, R4)


def test_areas_split_into_districts_or_reps_and_districts_into_reps() -> None:
    check_can_decompose("area", "district")
    check_can_decompose("area", "rep")
    check_can_decompose("district", "rep")
    for parent, into in (("district", "district"), ("rep", "rep"), ("district", "area")):
        with pytest.raises(DomainError):
            check_can_decompose(parent, into)
