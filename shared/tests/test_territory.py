"""The line of command, once for every service: who reaches what, which filters are refused
rather than narrowed, and the three codes of a refusal."""

from __future__ import annotations

import pytest

from salesplatform.errors import PermissionDenied
from salesplatform.events import Actor, Role
from salesplatform.territory import Place, Reach, reach_of, require_filter_in_line, require_in_line

pytestmark = pytest.mark.fast

R1 = Actor(id="r1", role=Role.rep, district="D1", area="A1")
S1 = Actor(id="s1", role=Role.supervisor, district="D1", area="A1")
AM1 = Actor(id="am1", role=Role.area_manager, area="A1")
SM = Actor(id="sm", role=Role.sales_manager)
CLERK = Actor(id="k1", role=Role.clerk)
OF_R1 = Place(rep_id="r1", district_id="D1", area_id="A1")
OF_R3 = Place(rep_id="r3", district_id="D2", area_id="A1")
OF_R4 = Place(rep_id="r4", district_id="D3", area_id="A2")


class Directory:
    """The territory of the tests: area A1 (districts D1, D2), area A2 (district D3)."""

    async def place_of_rep(self, rep_id: str) -> Place | None:
        return {p.rep_id: p for p in (OF_R1, Place("r2", "D1", "A1"), OF_R3, OF_R4)}.get(rep_id)

    async def area_of_district(self, district_id: str) -> str | None:
        return {"D1": "A1", "D2": "A1", "D3": "A2"}.get(district_id)


def code_of(actor: Actor, place: Place, **variant) -> str | None:
    try:
        require_in_line(actor, place, **variant)
    except PermissionDenied as exc:
        assert exc.status == 403
        return exc.code
    return None


def test_who_reaches_what() -> None:
    assert [code_of(a, OF_R1) for a in (R1, S1, AM1, SM)] == [None] * 4
    assert [code_of(a, OF_R3) for a in (R1, S1, AM1, SM)] == ["outside_line", "outside_line", None, None]
    assert [code_of(a, OF_R4) for a in (R1, S1, AM1, SM)] == ["outside_line"] * 3 + [None]
    assert code_of(CLERK, OF_R1) == "role_not_allowed"
    assert code_of(CLERK, OF_R4, readers=frozenset({Role.clerk})) is None
    assert code_of(R1, Place(district_id="D1"), reps_reach_district=True) is None


@pytest.mark.parametrize(
    "actor",
    [Actor(id="s0", role=Role.supervisor), Actor(id="am0", role=Role.area_manager), Actor(id="r0", role=Role.rep)],
)
def test_a_token_that_names_no_territory_is_refused_the_same_everywhere(actor: Actor) -> None:
    variant = {"reps_reach_district": True} if actor.role is Role.rep else {}
    with pytest.raises(PermissionDenied) as refused:
        reach_of(actor, **variant)
    assert refused.value.code == "no_territory"


@pytest.mark.parametrize(
    ("actor", "asked"),
    [
        (R1, Place(district_id="D1")),  # the own district is more than the own customers
        (R1, Place(rep_id="r2")),
        (S1, Place(area_id="A1")),  # the own area is more than the team's district
        (S1, Place(rep_id="r3")),
        (AM1, Place(district_id="D3")),
        (AM1, Place(area_id="A2")),
        (AM1, Place(rep_id="r4")),
        (AM1, Place(rep_id="nobody")),
    ],
)
async def test_a_filter_beyond_the_line_is_refused_not_narrowed(actor: Actor, asked: Place) -> None:
    with pytest.raises(PermissionDenied) as refused:
        await require_filter_in_line(reach_of(actor), asked, Directory())
    assert refused.value.code == "outside_line"


@pytest.mark.parametrize(
    ("actor", "asked", "conditions"),
    [
        (R1, Place(rep_id="r1"), [("rep_id", "r1")]),
        (S1, Place(district_id="D1", rep_id="r2"), [("district_id", "D1"), ("rep_id", "r2")]),
        (AM1, Place(district_id="D2"), [("area_id", "A1"), ("district_id", "D2")]),
        (SM, Place(area_id="A2"), [("area_id", "A2")]),
    ],
)
async def test_a_filter_within_the_line_becomes_the_query_filter(actor, asked, conditions) -> None:
    reach = reach_of(actor)
    await require_filter_in_line(reach, asked, Directory())
    assert reach.conditions(asked) == conditions


def test_everything_is_no_condition() -> None:
    assert Reach().everything and Reach().conditions() == []
