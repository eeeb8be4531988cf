"""The territory filter offers each viewer the own part of the tree (the APIs still decide what
may be read)."""

from __future__ import annotations

import pytest

from console_service.application.directory import Names, StaffMember, territory_options
from salesplatform.events import Actor, Role

pytestmark = pytest.mark.fast


def tree() -> Names:
    names = Names(
        areas={"a1": "浦东片区", "a2": "浦西片区"},
        districts={"d1": ("陆家嘴小区", "a1"), "d2": ("张江小区", "a1"), "d3": ("徐汇小区", "a2")},
        area_order=["a1", "a2"],
    )
    for staff_id, role, district, area in (
        ("r1", "rep", "d1", "a1"),
        ("r2", "rep", "d2", "a1"),
        ("r3", "rep", "d3", "a2"),
        ("sv1", "supervisor", "d1", "a1"),
        ("am1", "area_manager", None, "a1"),
    ):
        names.staff[staff_id] = StaffMember(staff_id, staff_id.upper(), role, district, area)
    return names


def offered(actor: Actor) -> tuple[list[str], list[str], list[str]]:
    options = territory_options(actor, tree())
    return (
        [o.value for o in options.areas],
        [o.value for o in options.districts],
        [o.value for o in options.reps],
    )


def test_each_viewer_is_offered_the_own_part_of_the_tree() -> None:
    assert offered(Actor(id="r1", role=Role.rep, district="d1", area="a1")) == (["a1"], ["d1"], ["r1"])
    assert offered(Actor(id="sv1", role=Role.supervisor, district="d1", area="a1")) == (["a1"], ["d1"], ["r1"])
    assert offered(Actor(id="am1", role=Role.area_manager, area="a1")) == (["a1"], ["d1", "d2"], ["r1", "r2"])
    everything = (["a1", "a2"], ["d1", "d2", "d3"], ["r1", "r2", "r3"])
    assert offered(Actor(id="sm", role=Role.sales_manager)) == everything
    assert offered(Actor(id="k", role=Role.clerk)) == everything
    names = territory_options(Actor(id="sm", role=Role.sales_manager), tree())
    assert [o.label for o in names.districts] == ["陆家嘴小区", "张江小区", "徐汇小区"]
