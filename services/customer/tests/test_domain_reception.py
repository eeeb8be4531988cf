"""Pure tests of the sales office's rules (domain/reception.py): the rotation, duty reception,
the registers, the 7-day lapse and release, who a customer is. No I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from customer_service.domain.events import DistrictDefined, StaffAssigned
from customer_service.domain.office_events import LeadReceived
from customer_service.domain.reception import (
    DUTY_REMARK,
    Lead,
    LeadRegister,
    ReceptionDay,
    SalesOffice,
    UnknownEvent,
    choose_receiver,
    phone_lead_lapsed,
    same_customer,
)
from customer_service.domain.territory import StaffMember, TerritoryUnit
from salesplatform.errors import DomainError, PermissionDenied

pytestmark = pytest.mark.fast

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
DAY = date(2026, 3, 2)


def seal(part: dict) -> str:
    return "sealed:" + ",".join(sorted(part))


def district(id: str = "D1") -> TerritoryUnit:
    return TerritoryUnit.replay(id, [DistrictDefined(district_id=id, name="张江", area_id="A1", division_id="N")])


def rep(id: str, district_id: str = "D1") -> StaffMember:
    return StaffMember.replay(
        id, [StaffAssigned(staff_id=id, name=id, role="rep", district_id=district_id, area_id="A1")]
    )


def office() -> SalesOffice:
    o = SalesOffice("P1")
    o.open("滨江一号售楼处", district())
    return SalesOffice.replay("P1", o.pending)


def day_with(*reps: str) -> ReceptionDay:
    d = ReceptionDay("P1@2026-03-02")
    for r in reps:
        d.sign_in(office(), DAY, rep(r), NOW)
    return d


# -- R2, R3: who receives ------------------------------------------------------------------------


def test_a_new_customer_goes_to_the_first_free_rep_in_sign_in_order() -> None:
    assert choose_receiver(["r2", "r1", "r3"], set(), None, None) == ("r2", "turn")
    assert choose_receiver(["r2", "r1", "r3"], {"r2"}, None, None) == ("r1", "turn")


def test_a_returning_customer_goes_to_their_rep_or_else_to_duty() -> None:
    assert choose_receiver(["r2", "r1"], set(), "r1", None) == ("r1", "own")
    assert choose_receiver(["r2", "r1"], {"r1"}, "r1", None) == ("r2", "duty")  # busy
    assert choose_receiver(["r2", "r3"], set(), "r1", None) == ("r2", "duty")  # absent


def test_nobody_picks_a_customer_out_of_turn_or_leaves_one_being_served() -> None:
    with pytest.raises(DomainError) as e:
        choose_receiver(["r2", "r1"], set(), None, "r1")
    assert e.value.code == "out_of_turn"
    with pytest.raises(DomainError) as e:
        choose_receiver(["r2", "r1"], set(), "r1", "r2")  # r1's customer, r1 is free
    assert e.value.code == "out_of_turn"
    with pytest.raises(DomainError) as e:
        choose_receiver(["r2", "r1"], {"r1"}, "r1", "r1")
    assert e.value.code == "serving_another_customer"
    with pytest.raises(DomainError) as e:
        choose_receiver(["r2"], set(), None, "r9")
    assert e.value.code == "not_signed_in"
    with pytest.raises(DomainError) as e:
        choose_receiver(["r2"], {"r2"}, None, None)
    assert e.value.code == "no_rep_free"


def test_a_turn_moves_the_rep_to_the_end_a_duty_or_own_reception_does_not() -> None:
    d = day_with("r1", "r2", "r3")
    assert d.receive("P1", DAY, "walk_in", "L1", own_rep=None, asked=None, at=NOW) == ("r1", "turn")
    assert d.queue == ("r2", "r3", "r1") and d.serving == {"r1": "L1"}
    # L9 is r1's, who is busy: r2 receives on duty and stays first.
    assert d.receive("P1", DAY, "walk_in", "L9", own_rep="r1", asked=None, at=NOW) == ("r2", "duty")
    assert d.queue == ("r2", "r3", "r1")
    assert d.receive("P1", DAY, "phone", "L2", own_rep=None, asked=None, at=NOW) == ("r3", "turn")
    assert d.queue == ("r2", "r1", "r3") and "r3" not in d.serving  # a call does not keep the rep busy
    d.finish("P1", DAY, "r1", NOW)
    assert d.receive("P1", DAY, "walk_in", "L3", own_rep="r1", asked=None, at=NOW) == ("r1", "own")
    assert d.queue == ("r2", "r1", "r3") and d.turns == {"r1": 1, "r3": 1}


def test_sign_in_and_out() -> None:
    d = day_with("r1")
    with pytest.raises(DomainError) as e:
        d.sign_in(office(), DAY, rep("r1"), NOW)
    assert e.value.code == "already_signed_in"
    with pytest.raises(PermissionDenied) as p:
        d.sign_in(office(), DAY, rep("r7", "D2"), NOW)
    assert p.value.code == "not_an_office_rep"
    d.receive("P1", DAY, "walk_in", "L1", own_rep=None, asked=None, at=NOW)
    with pytest.raises(DomainError) as e:
        d.sign_out("P1", DAY, "r1", NOW)
    assert e.value.code == "still_serving"
    d.finish("P1", DAY, "r1", NOW)
    d.sign_out("P1", DAY, "r1", NOW)
    assert d.queue == ()
    d.sign_in(office(), DAY, rep("r1"), NOW)  # back in the afternoon: at the end
    assert d.places == {"r1": 2}


# -- R1: the registers ----------------------------------------------------------------------------


def test_register_lines_are_numbered_without_gaps_and_duty_is_remarked() -> None:
    book = LeadRegister("P1@walk_in")
    common = {
        "new_lead": True,
        "first_visit": True,
        "source_channel": None,
        "personal": {"phone": "13900000001"},
        "seal": seal,
    }
    n1 = book.enter("P1", "walk_in", DAY, NOW, lead_id="L1", rep_id="r1", basis="turn", **common)
    n2 = book.enter("P1", "walk_in", DAY, NOW, lead_id="L2", rep_id="r2", basis="duty", **common)
    assert (n1, n2) == (1, 2)
    assert [e.entry_no for e in book.pending] == [1, 2]
    assert book.pending[0].remark is None and book.pending[1].remark == DUTY_REMARK
    assert book.pending[0].personal == "sealed:phone"
    with pytest.raises(DomainError) as e:
        book.correct("P1", "walk_in", 3, source_channel="x", personal={}, reason="typo", corrected_by="sm", seal=seal)
    assert e.value.code == "unknown_entry"
    assert (
        book.correct(
            "P1", "walk_in", 2, source_channel="报纸", personal={}, reason="渠道记错", corrected_by="sm", seal=seal
        )
        == "L2"
    )
    assert book.entries == ("L1", "L2")  # a correction adds a record, the line stays


# -- R4, R5: the 7 days ----------------------------------------------------------------------------


def test_a_phone_lead_lapses_after_7_days_without_a_visit() -> None:
    assert not phone_lead_lapsed(NOW, NOW + timedelta(days=7))
    assert phone_lead_lapsed(NOW, NOW + timedelta(days=7, seconds=1))
    lead = Lead("L1")
    lead.register(office(), "phone", "r1", NOW, personal={"phone": "13900000001"}, seal=seal)
    with pytest.raises(DomainError) as e:
        lead.lapse(NOW + timedelta(days=7), has_deal=False)
    assert e.value.code == "not_due"
    with pytest.raises(DomainError) as e:
        lead.lapse(NOW + timedelta(days=8), has_deal=True)  # a unit is reserved for them
    assert e.value.code == "lead_has_a_deal"
    lead.settle(NOW + timedelta(days=8), has_deal=True)
    assert lead.stage == "phone"
    lead.settle(NOW + timedelta(days=8), has_deal=False)
    assert lead.stage == "lapsed" and lead.following_rep is None
    # The later visit is a new walk-in, in turn, followed by whoever receives it.
    received = lead.receive("walk_in", "r2", "turn", NOW + timedelta(days=8))
    assert received.again and received.first_visit and not received.viewing_in_time
    assert (lead.stage, lead.rep_id) == ("walk_in", "r2")


def test_a_phone_lead_coming_within_7_days_is_the_reps_even_on_duty() -> None:
    lead = Lead("L1")
    lead.register(office(), "phone", "r1", NOW, personal={}, seal=seal)
    lead.settle(NOW + timedelta(days=6), has_deal=False)
    assert lead.following_rep == "r1"
    received = lead.receive("walk_in", "r2", "duty", NOW + timedelta(days=6))
    assert received.viewing_in_time and received.first_visit and not received.again
    assert (lead.stage, lead.rep_id, lead.last_follow_up_at) == ("walk_in", "r1", NOW + timedelta(days=6))


def test_a_walk_in_not_followed_up_for_7_days_is_released_unless_a_unit_is_reserved() -> None:
    lead = Lead("L1")
    lead.register(office(), "walk_in", "r1", NOW, personal={}, seal=seal)
    later = NOW + timedelta(days=7, minutes=1)
    with pytest.raises(DomainError) as e:
        lead.release("r1", later, has_deal=True)
    assert e.value.code == "lead_has_a_deal"
    lead.follow_up("r1", "phone", NOW + timedelta(days=3), None, seal)
    with pytest.raises(DomainError) as e:
        lead.release("r1", later, has_deal=False)
    assert e.value.code == "not_due"
    lead.release("r1", NOW + timedelta(days=10, minutes=1), has_deal=False)
    assert lead.stage == "released" and lead.following_rep is None
    received = lead.receive("walk_in", "r3", "turn", NOW + timedelta(days=12))
    assert received.again and not received.first_visit and lead.rep_id == "r3"


def test_a_duty_reception_is_nobodys_follow_up_and_the_duty_rep_may_not_follow_up() -> None:
    lead = Lead("L1")
    lead.register(office(), "walk_in", "r1", NOW, personal={}, seal=seal)
    lead.receive("walk_in", "r2", "duty", NOW + timedelta(days=5))
    assert lead.last_follow_up_at == NOW and lead.rep_id == "r1"
    with pytest.raises(PermissionDenied) as p:
        lead.follow_up("r2", "phone", NOW + timedelta(days=5), "回访", seal)
    assert p.value.code == "not_your_lead"
    lead.receive("walk_in", "r1", "own", NOW + timedelta(days=6))
    assert lead.last_follow_up_at == NOW + timedelta(days=6)


# -- R6: who a customer is ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relation", "same"),
    [
        ("spouse", True),
        ("parent", True),
        ("child", True),
        ("shareholder", True),
        ("sibling", False),
        ("relative", False),
    ],
)
def test_family_and_shareholders_are_one_customer_siblings_are_not(relation: str, same: bool) -> None:
    assert same_customer(relation) is same
    lead = Lead("L1")
    lead.register(office(), "walk_in", "r1", NOW, personal={}, seal=seal)
    if same:
        lead.add_member(relation, {"name": "x"}, seal)
        assert lead.pending[-1].relation == relation
    else:
        with pytest.raises(DomainError) as e:
            lead.add_member(relation, {"name": "x"}, seal)
        assert e.value.code == "not_same_customer"


def test_the_sales_manager_decides_a_dispute_for_a_rep_of_the_office() -> None:
    lead = Lead("L1")
    lead.register(office(), "walk_in", "r1", NOW, personal={}, seal=seal)
    with pytest.raises(PermissionDenied):
        lead.decide_dispute(rep("r7", "D2"), office(), "两人争客", "sm", NOW)
    lead.decide_dispute(rep("r2"), office(), "先留电话者为准", "sm", NOW + timedelta(days=1))
    assert lead.rep_id == "r2" and lead.last_follow_up_at == NOW + timedelta(days=1)


def test_an_aggregate_refuses_an_event_it_does_not_know() -> None:
    with pytest.raises(UnknownEvent):
        SalesOffice("P1").apply(
            LeadReceived(
                lead_id="L",
                project_id="P1",
                kind="walk_in",
                basis="turn",
                rep_id="r",
                following_rep_id="r",
                again=False,
                first_visit=True,
                viewing_in_time=False,
                at=NOW,
            )
        )
