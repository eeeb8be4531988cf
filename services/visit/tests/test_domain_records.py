"""Surveys, key-account reports, coaching notes, spot checks; and the territory lines."""

from __future__ import annotations

from datetime import date

import pytest

from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Actor, Role
from visit_service.domain.access import (
    Territory,
    ensure_can_act,
    ensure_can_approve,
    ensure_can_read,
    ensure_supervises,
    list_scope,
)
from visit_service.domain.events import ReportIssue
from visit_service.domain.records import Coaching, KeyAccountReport, SpotCheck, Survey, half_year, survey_id_for

pytestmark = pytest.mark.fast

DAY = date(2026, 11, 2)


def test_survey_periods_are_half_years() -> None:
    assert half_year(date(2026, 1, 1)) == "2026H1"
    assert half_year(date(2026, 6, 30)) == "2026H1"
    assert half_year(date(2026, 7, 1)) == "2026H2"


def test_one_survey_per_customer_and_half_year() -> None:
    sid = survey_id_for("c1", "2026H2")
    assert sid == survey_id_for("c1", "2026H2") != survey_id_for("c1", "2026H1")
    survey = Survey(sid)
    kwargs = {
        "customer_id": "c1",
        "period": "2026H2",
        "scores": {"delivery": 5, "quality": 4},
        "satisfied": True,
        "rep_id": "rep-1",
        "business_date": DAY,
        "district_id": "d1",
        "area_id": "a1",
    }
    survey.record_results(**kwargs)
    assert survey.pending[0].scores == {"delivery": 5, "quality": 4}
    with pytest.raises(DomainError) as e:
        survey.record_results(**kwargs)
    assert e.value.code == "survey_exists"


def test_key_account_report_carries_issues_for_departments() -> None:
    report = KeyAccountReport("ka1")
    report.file(
        customer_id="c2",
        issues=[ReportIssue(department="delivery", description="late twice")],
        summary="good year",
        filed_by="rep-1",
        filed_on=DAY,
        visit_id=None,
        district_id="d1",
        area_id="a1",
    )
    assert report.pending[0].issues[0].department == "delivery"
    with pytest.raises(DomainError) as e:
        report.file(
            customer_id="c2",
            issues=[],
            summary="x",
            filed_by="rep-1",
            filed_on=DAY,
            visit_id=None,
            district_id="d1",
            area_id="a1",
        )
    assert e.value.code == "key_account_report_exists"


def test_coaching_is_of_another_person_and_spot_checks_are_consistent() -> None:
    with pytest.raises(DomainError) as e:
        Coaching("co1").record_note(
            supervisor_id="sup-1",
            rep_id="sup-1",
            business_date=DAY,
            notes="x",
            strengths=[],
            improvements=[],
            visit_id=None,
            customer_id=None,
        )
    assert e.value.code == "self_coaching"
    with pytest.raises(DomainError) as e:
        SpotCheck("s1").record_check(
            order_id="o1",
            customer_id="c1",
            checked_by="sup-1",
            business_date=DAY,
            delivered=False,
            on_time=True,
            quantities_match=False,
            notes="",
        )
    assert e.value.code == "inconsistent_check"


# -- territory lines --------------------------------------------------------------------------

HERE = Territory("rep-1", "d1", "a1")
REP1 = Actor(id="rep-1", role=Role.rep, district="d1", area="a1")
REP2 = Actor(id="rep-2", role=Role.rep, district="d1", area="a1")
SUP1 = Actor(id="sup-1", role=Role.supervisor, district="d1", area="a1")
SUP2 = Actor(id="sup-2", role=Role.supervisor, district="d2", area="a1")
AM1 = Actor(id="am-1", role=Role.area_manager, area="a1")
AM2 = Actor(id="am-2", role=Role.area_manager, area="a2")
SM = Actor(id="sm", role=Role.sales_manager)
GM = Actor(id="gm", role=Role.general_manager)
CLERK = Actor(id="clerk", role=Role.clerk)
INSPECTOR = Actor(id="insp", role=Role.inspector)


@pytest.mark.parametrize(
    "actor, allowed",
    [
        (REP1, True),
        (REP2, False),
        (SUP1, True),
        (SUP2, False),
        (AM1, True),
        (AM2, False),
        (SM, True),
        (GM, True),
        (CLERK, False),
        (INSPECTOR, False),
    ],
)
def test_who_may_act(actor: Actor, allowed: bool) -> None:
    if allowed:
        ensure_can_act(actor, HERE, "visit v1")
    else:
        with pytest.raises(PermissionDenied) as e:
            ensure_can_act(actor, HERE, "visit v1")
        assert e.value.message


@pytest.mark.parametrize(
    "actor, allowed",
    [
        (REP1, True),
        (REP2, False),
        (SUP2, False),
        (AM2, False),
        (CLERK, True),
        (INSPECTOR, False),
    ],
)
def test_who_may_read(actor: Actor, allowed: bool) -> None:
    if allowed:
        ensure_can_read(actor, HERE, "visit v1")
    else:
        with pytest.raises(PermissionDenied):
            ensure_can_read(actor, HERE, "visit v1")


@pytest.mark.parametrize(
    "actor, code",
    [
        (REP1, "role_not_allowed"),
        (CLERK, "role_not_allowed"),
        (SUP2, "outside_line"),
        (AM2, "outside_line"),
        (SUP1, None),
        (AM1, None),
        (SM, None),
    ],
)
def test_who_may_approve(actor: Actor, code: str | None) -> None:
    if code is None:
        ensure_can_approve(actor, HERE, "visit v1")
        ensure_supervises(actor, HERE, "coaching")
    else:
        with pytest.raises(PermissionDenied) as e:
            ensure_can_approve(actor, HERE, "visit v1")
        assert e.value.code == code


async def test_list_scopes_follow_the_line_and_refuse_what_is_outside() -> None:
    assert (await list_scope(SUP1, None, None, None, "x")).district_id == "d1"
    assert await list_scope(AM1, "d2", None, "a1", "x") == await list_scope(AM1, "d2", None, "a1", "x")
    assert (await list_scope(AM1, None, None, None, "x")).area_id == "a1"
    assert (await list_scope(SM, "d9", None, "a9", "x")).district_id == "d9"
    assert (await list_scope(CLERK, None, None, None, "x")).district_id is None
    for actor, district, area, district_area in (
        (SUP1, "d2", None, "a1"),
        (SUP1, None, "a1", None),  # the own area is more than the team's district
        (AM1, "d3", None, "a2"),
        (AM1, None, "a2", None),
        (REP1, None, None, None),
    ):
        with pytest.raises(PermissionDenied):
            await list_scope(actor, district, area, district_area, "x")
    with pytest.raises(PermissionDenied) as e:
        await list_scope(Actor(id="s0", role=Role.supervisor), None, None, None, "x")
    assert e.value.code == "no_territory"
