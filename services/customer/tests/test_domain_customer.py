"""The customer card's rules, pure (no I/O): each rule's yes and no."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from customer_service.domain.customer import Customer, Registration
from customer_service.domain.events import (
    ContactLogged,
    CustomerApproved,
    CustomerAssigned,
    CustomerMerged,
    CustomerRegistered,
    CustomerReleased,
    DuplicateAbsorbed,
    PersonalDataErased,
    ProfileUpdated,
)
from customer_service.domain.territory import StaffMember, TerritoryUnit
from customer_service.domain.values import (
    BaseData,
    BusinessStatus,
    Characteristics,
    Contact,
    Person,
    SalesFigures,
    TradingStatus,
)
from salesplatform.errors import DomainError, PermissionDenied

pytestmark = pytest.mark.fast

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


def seal(part: dict[str, Any]) -> str:
    """Stands in for the keyed sealing: visible, so the tests can see what would be sealed."""
    return "sealed:" + orjson.dumps(part, option=orjson.OPT_SORT_KEYS).decode()


def committed(agg):
    agg.version += len(agg.pending)
    agg.pending = []
    return agg


def territory() -> dict[str, Any]:
    n = TerritoryUnit("N")
    n.define_division("华东")
    a1 = TerritoryUnit("A1")
    a1.define_area("浦东", n)
    d1, d2 = TerritoryUnit("D1"), TerritoryUnit("D2")
    d1.define_district("张江", a1)
    d2.define_district("陆家嘴", a1)
    units = {u.id: committed(u) for u in (n, a1, d1, d2)}
    for rep_id, district in (("r1", d1), ("r2", d1), ("r3", d2)):
        staff = StaffMember(rep_id)
        staff.assign(rep_id, "rep", district=district, area=None, supervisor=None, customers_owned=0)
        units[rep_id] = committed(staff)
    return units


def registration(**overrides: Any) -> Registration:
    values: dict[str, Any] = {
        "name": "建国便利店",
        "address": "张杨路100号",
        "phone": "021-58881234",
        "nature": "company",
        "ownership": "private",
        "channel": "retail",
        "location_type": "residential",
        "source": "rep_visit",
        "base": BaseData(industry="便利店", owner=Person(name="王建国", hobbies="钓鱼")),
        "characteristics": Characteristics(staff_count=4),
        "business_status": BusinessStatus(),
        "trading_status": TradingStatus(),
        "contacts": [Contact(name="李小红", phone="13998765432")],
    }
    values.update(overrides)
    return Registration(**values)


def registered(cid: str = "c1", t: dict[str, Any] | None = None, **overrides: Any) -> Customer:
    t = t or territory()
    customer = Customer(cid)
    customer.register(registration(**overrides), district=t["D1"], rep=t["r1"], seal=seal)
    return committed(customer)


def approved(cid: str = "c1", status: str = "prospect", t: dict[str, Any] | None = None) -> Customer:
    t = t or territory()
    customer = registered(cid, t)
    customer.approve(t["D1"], status, "s1")
    return committed(customer)


def code(err: pytest.ExceptionInfo) -> str:
    return err.value.code


# -- registration -------------------------------------------------------------------------


def test_registration_places_the_card_and_seals_the_people() -> None:
    t = territory()
    customer = Customer("c1")
    customer.register(registration(), district=t["D1"], rep=t["r1"], seal=seal)
    [event] = customer.pending
    assert isinstance(event, CustomerRegistered)
    assert (event.district_id, event.area_id, event.division_id, event.rep_id) == ("D1", "A1", "N", "r1")
    assert event.status == "pending" and event.verified is True and event.name == "建国便利店"
    assert "owner" not in event.base.model_dump()
    assert event.personal_fields == ["base.owner", "contacts"]
    assert "王建国" in event.personal and "王建国" not in event.model_dump_json(exclude={"personal"})


def test_an_individuals_identity_is_personal_data() -> None:
    customer = registered("c1234567890", nature="individual", ownership=None, name="刘芳", phone="13700001111")
    assert customer.individual
    c2 = Customer("c1234567890")
    t = territory()
    c2.register(
        registration(nature="individual", name="刘芳", phone="13700001111"), district=t["D1"], rep=t["r1"], seal=seal
    )
    event = c2.pending[0]
    assert (event.name, event.address, event.phone) == (
        "individual customer c1234567",
        "[personal data]",
        "[personal data]",
    )
    assert event.personal_fields == ["address", "base.owner", "contacts", "name", "phone"]
    assert '"name":"刘芳"' in event.personal


def test_registration_refuses_unknown_places_and_people() -> None:
    t = territory()
    with pytest.raises(DomainError) as err:
        Customer("c").register(registration(), district=TerritoryUnit("D9"), rep=t["r1"], seal=seal)
    assert code(err) == "unknown_district"
    with pytest.raises(DomainError) as err:
        Customer("c").register(registration(), district=t["D1"], rep=StaffMember("ghost"), seal=seal)
    assert code(err) == "unknown_rep"
    with pytest.raises(DomainError) as err:
        Customer("c").register(registration(), district=t["D2"], rep=t["r1"], seal=seal)
    assert code(err) == "rep_not_in_district"
    with pytest.raises(DomainError) as err:
        registered("c1", t).register(registration(), district=t["D1"], rep=t["r1"], seal=seal)
    assert code(err) == "customer_exists"


# -- approval -----------------------------------------------------------------------------


def test_a_form_must_be_verified_before_approval() -> None:
    t = territory()
    customer = registered("c1", t, source="customer_form")
    assert customer.verified is False
    with pytest.raises(DomainError) as err:
        customer.approve(t["D1"], "active", "s1")
    assert code(err) == "data_unverified" and customer.pending == [] and t["D1"].pending == []
    customer.verify_data("电话核实")
    with pytest.raises(DomainError) as err:
        customer.verify_data(None)
    assert code(err) == "already_verified"
    assert customer.approve(t["D1"], "active", "s1") == "D1-000001"


def test_approval_gives_the_code_once_and_rejection_keeps_the_reason() -> None:
    t = territory()
    customer = registered("c1", t)
    assert customer.approve(t["D1"], "prospect", "s1") == "D1-000001"
    assert customer.pending[-1] == CustomerApproved(
        customer_id="c1", customer_code="D1-000001", status="prospect", approved_by="s1"
    )
    assert customer.status == "prospect" and customer.customer_code == "D1-000001"
    with pytest.raises(DomainError) as err:
        customer.approve(t["D1"], "active", "s1")
    assert code(err) == "already_approved"
    with pytest.raises(DomainError) as err:
        customer.reject("重复", "s1")
    assert code(err) == "already_approved"

    other = registered("c2", t)
    other.reject("地址不实", "s1")
    assert other.status == "rejected" and other.pending[-1].reason == "地址不实"
    with pytest.raises(DomainError) as err:
        other.approve(t["D1"], "active", "s1")
    assert code(err) == "customer_rejected"


# -- classification, grade, credit, lifecycle ------------------------------------------------


def test_classification_by_hand() -> None:
    customer = approved()
    customer.classify({"grade": "A", "channel": "chain"}, "大店")
    event = customer.pending[-1]
    assert (event.nature, event.ownership, event.channel, event.location_type, event.grade, event.basis) == (
        "company",
        "private",
        "chain",
        "residential",
        "A",
        "manual",
    )
    with pytest.raises(DomainError) as err:
        customer.classify({"grade": "A"}, "again")
    assert code(err) == "classification_unchanged"
    with pytest.raises(DomainError) as err:
        customer.classify({"nature": "individual"}, "x")
    assert code(err) == "individual_nature_fixed"


def test_grade_recomputed_from_sales_records_only_a_change() -> None:
    customer = approved()
    assert customer.recompute_grade(SalesFigures(annual_sales_fen=25_000_000, period="2025")) == ("A", True)
    event = customer.pending[-1]
    assert event.basis == "sales" and event.figures.annual_sales_fen == 25_000_000 and event.grade == "A"
    n = len(customer.pending)
    assert customer.recompute_grade(SalesFigures(annual_sales_fen=20_000_000)) == ("A", False)
    assert len(customer.pending) == n
    assert customer.recompute_grade(SalesFigures(annual_sales_fen=100)) == ("C", True)


def test_credit_terms() -> None:
    customer = approved()
    customer.set_credit("AA", 5_000_000, 30, None)
    assert customer.credit == ("AA", 5_000_000, 30)
    with pytest.raises(DomainError) as err:
        customer.set_credit("AA", 5_000_000, 30, None)
    assert code(err) == "credit_unchanged"
    with pytest.raises(DomainError) as err:
        customer.set_credit("AA", -1, 30, None)
    assert code(err) == "negative_credit_limit"


def test_lifecycle_changes_only_after_approval() -> None:
    with pytest.raises(DomainError) as err:
        registered().change_status("active", "x")
    assert code(err) == "not_approved"
    customer = approved(status="active")
    with pytest.raises(DomainError) as err:
        customer.change_status("active", "x")
    assert code(err) == "status_unchanged"
    customer.change_status("dormant", "三个月无订单")
    assert customer.status == "dormant"


# -- ownership ------------------------------------------------------------------------------


def test_assignment_moves_the_customer_with_its_rep() -> None:
    t = territory()
    customer = approved(t=t)
    customer.assign(t["r3"], t["D2"], "调整")
    assert customer.pending[-1] == CustomerAssigned(
        customer_id="c1",
        rep_id="r3",
        district_id="D2",
        area_id="A1",
        division_id="N",
        previous_rep_id="r1",
        reason="调整",
    )
    with pytest.raises(DomainError) as err:
        customer.assign(t["r3"], t["D2"], "again")
    assert code(err) == "already_assigned"
    with pytest.raises(DomainError) as err:
        customer.assign(StaffMember("ghost"), t["D2"], "x")
    assert code(err) == "unknown_rep"


def test_the_seven_day_rule_releases_only_a_neglected_prospect_of_that_rep() -> None:
    customer = approved(status="prospect")
    last = NOW
    with pytest.raises(DomainError) as err:
        customer.release("r1", last, NOW + timedelta(days=7))
    assert code(err) == "followed_up_recently"
    with pytest.raises(DomainError) as err:
        customer.release("r2", last, NOW + timedelta(days=8))
    assert code(err) == "rep_changed"
    customer.release("r1", last, NOW + timedelta(days=7, seconds=1))
    event = customer.pending[-1]
    assert isinstance(event, CustomerReleased) and event.rep_id == "r1" and event.last_follow_up_at == last
    assert customer.rep_id is None and customer.released_from == "r1"

    active = approved("c2", status="active")
    with pytest.raises(DomainError) as err:
        active.release("r1", last, NOW + timedelta(days=30))
    assert code(err) == "not_prospect"


def test_a_released_prospect_is_claimed_by_another_rep_of_the_district() -> None:
    t = territory()
    customer = approved(t=t)
    with pytest.raises(DomainError) as err:
        customer.claim(t["r2"])
    assert code(err) == "not_released"
    customer.release("r1", NOW, NOW + timedelta(days=8))
    with pytest.raises(PermissionDenied) as err:
        customer.claim(t["r3"])
    assert code(err) == "outside_line"
    with pytest.raises(DomainError) as err:
        customer.claim(t["r1"])
    assert code(err) == "cannot_reclaim"
    customer.claim(t["r2"])
    assert customer.rep_id == "r2" and customer.released_from is None


def test_a_contact_is_logged_for_the_current_rep_with_the_note_sealed() -> None:
    customer = approved()
    customer.log_contact(NOW, "phone", "老板说下周进货", seal=seal)
    event = customer.pending[-1]
    assert isinstance(event, ContactLogged) and event.rep_id == "r1" and "下周进货" in event.personal
    customer.release("r1", NOW, NOW + timedelta(days=8))
    with pytest.raises(DomainError) as err:
        customer.log_contact(NOW, "phone", None, seal=seal)
    assert code(err) == "no_rep"


# -- the card, merging, erasure ---------------------------------------------------------------


def test_profile_update_seals_personal_fields_and_a_merged_card_refuses() -> None:
    company = approved()
    company.update_profile(
        {"address": "新址", "base.owner.hobbies": "下棋", "characteristics.staff_count": 6}, "搬迁", seal=seal
    )
    event = company.pending[-1]
    assert isinstance(event, ProfileUpdated)
    assert event.changes == {"address": "新址", "characteristics.staff_count": 6}
    assert event.personal_fields == ["base.owner.hobbies"] and "下棋" in event.personal

    person = registered("p1", nature="individual")
    person.update_profile({"address": "新址"}, "搬家", seal=seal)
    assert person.pending[-1].changes == {} and person.pending[-1].personal_fields == ["address"]

    t = territory()
    dup, survivor = approved("c2", t=t), approved("c3", t=t)
    dup.merge_into(survivor, "same_outlet", "重复", "c3", "rule")
    with pytest.raises(DomainError) as err:
        dup.update_profile({"address": "x"}, "x", seal=seal)
    assert code(err) == "customer_merged"
    for change in (
        lambda c: c.classify({"grade": "B"}, "x"),
        lambda c: c.set_credit("A", 1, 1, None),
        lambda c: c.change_status("lost", "x"),
        lambda c: c.assign(t["r2"], t["D1"], "x"),
    ):
        with pytest.raises(DomainError) as err:
            change(dup)
        assert code(err) == "customer_merged"


def test_merge_rules() -> None:
    t = territory()
    a, b = approved("a", t=t), approved("b", t=t)
    with pytest.raises(DomainError) as err:
        a.merge_into(a, "family_members", "x", "a", "r")
    assert code(err) == "merge_into_self"
    with pytest.raises(DomainError) as err:
        a.merge_into(b, "family_members", "夫妻", "a", "a ordered first")
    assert code(err) == "survivor_not_first_buyer" and a.pending == [] and b.pending == []

    a.merge_into(b, "family_members", "夫妻", "b", "b ordered first")
    assert a.pending == [
        CustomerMerged(
            customer_id="a", survivor_id="b", reason="夫妻", rule="family_members", rule_reason="b ordered first"
        )
    ]
    assert b.pending == [DuplicateAbsorbed(customer_id="b", duplicate_id="a", rule="family_members", reason="夫妻")]
    assert a.status == "merged" and a.merged_into == "b"
    committed(a), committed(b)
    c = approved("c", t=t)
    with pytest.raises(DomainError) as err:
        c.merge_into(a, "shareholders", "x", "a", "r")
    assert code(err) == "survivor_merged"


def test_erasure_once_until_there_is_new_personal_data() -> None:
    customer = approved()
    customer.erase_personal_data("本人申请")
    assert customer.pending[-1] == PersonalDataErased(customer_id="c1", reason="本人申请")
    with pytest.raises(DomainError) as err:
        customer.erase_personal_data()
    assert code(err) == "already_erased"
    customer.update_profile({"base.owner": {"name": "新老板"}}, "换老板", seal=seal)
    customer.erase_personal_data()

    t = territory()
    dup, survivor = approved("d", t=t), approved("s", t=t)
    dup.merge_into(survivor, "same_outlet", "x", "s", "r")
    dup.erase_personal_data()  # a merged card's person may still ask
    assert isinstance(dup.pending[-1], PersonalDataErased)


def test_state_is_the_same_when_replayed_from_the_events() -> None:
    t = territory()
    customer = Customer("c1")
    customer.register(registration(), district=t["D1"], rep=t["r1"], seal=seal)
    customer.approve(t["D1"], "prospect", "s1")
    customer.classify({"grade": "B"}, "x")
    customer.set_credit("A", 100, 10, None)
    customer.assign(t["r2"], t["D1"], "x")
    replayed = Customer.replay("c1", list(customer.pending))
    assert replayed.version == 5
    for attr in ("status", "customer_code", "grade", "credit", "rep_id", "district_id", "verified", "nature"):
        assert getattr(replayed, attr) == getattr(customer, attr), attr
