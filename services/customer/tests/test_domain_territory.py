"""Territory and staff rules, pure (no I/O)."""

from __future__ import annotations

import pytest

from customer_service.domain.events import CustomerCodeIssued, DistrictDefined, StaffAssigned
from customer_service.domain.territory import StaffMember, TerritoryUnit
from salesplatform.errors import DomainError

pytestmark = pytest.mark.fast


def committed(agg):
    agg.version += len(agg.pending)
    agg.pending = []
    return agg


def tree() -> dict[str, TerritoryUnit]:
    n = TerritoryUnit("N")
    n.define_division("华东")
    a1 = TerritoryUnit("A1")
    a1.define_area("浦东", n)
    d1 = TerritoryUnit("D1")
    d1.define_district("张江", a1)
    a2 = TerritoryUnit("A2")
    a2.define_area("杭州", n)
    return {u.id: committed(u) for u in (n, a1, d1, a2)}


def rep(id: str, district: TerritoryUnit, supervisor: StaffMember | None = None) -> StaffMember:
    member = StaffMember(id)
    member.assign(id, "rep", district=district, area=None, supervisor=supervisor, customers_owned=0)
    return committed(member)


def code_of(err: pytest.ExceptionInfo) -> str:
    return err.value.code


def test_a_district_belongs_to_an_area_of_a_division() -> None:
    t = tree()
    assert t["A1"].kind == "area" and t["A1"].division_id == "N" and t["D1"].area_id == "A1"
    d2 = TerritoryUnit("D2")
    d2.define_district("陆家嘴", t["A1"])
    [event] = d2.pending
    assert event == DistrictDefined(district_id="D2", name="陆家嘴", area_id="A1", division_id="N")

    with pytest.raises(DomainError) as err:
        TerritoryUnit("D9").define_district("x", TerritoryUnit("A9"))
    assert code_of(err) == "unknown_area"
    with pytest.raises(DomainError) as err:
        TerritoryUnit("A9").define_area("x", t["D1"])  # a district is no division
    assert code_of(err) == "unknown_division"


def test_redefining_renames_but_never_moves_or_changes_kind() -> None:
    t = tree()
    d1 = t["D1"]
    d1.define_district("张江", t["A1"])
    assert d1.pending == []  # nothing new
    d1.define_district("张江高科", t["A1"])
    assert d1.pending[0].name == "张江高科"
    with pytest.raises(DomainError) as err:
        d1.define_district("张江", t["A2"])
    assert code_of(err) == "territory_parent_fixed"
    with pytest.raises(DomainError) as err:
        t["A1"].define_division("浦东")
    assert code_of(err) == "territory_id_taken"


def test_a_district_numbers_its_customers() -> None:
    d1 = tree()["D1"]
    assert d1.issue_customer_code("c1") == "D1-000001"
    assert d1.issue_customer_code("c2") == "D1-000002"
    assert d1.pending[-1] == CustomerCodeIssued(
        district_id="D1", customer_id="c2", customer_code="D1-000002", sequence=2
    )
    with pytest.raises(DomainError) as err:
        tree()["A1"].issue_customer_code("c3")
    assert code_of(err) == "unknown_district"


def test_staff_placement_rules() -> None:
    t = tree()
    s1 = StaffMember("s1")
    s1.assign("赵", "supervisor", district=t["D1"], area=None, supervisor=None, customers_owned=0)
    assert s1.pending[0] == StaffAssigned(
        staff_id="s1", name="赵", role="supervisor", district_id="D1", area_id="A1", supervisor_id=None
    )
    committed(s1)
    r1 = rep("r1", t["D1"], supervisor=s1)
    assert r1.is_active_rep and r1.supervisor_id == "s1" and r1.area_id == "A1"

    with pytest.raises(DomainError) as err:
        StaffMember("x").assign("x", "rep", district=TerritoryUnit("D9"), area=None, supervisor=None, customers_owned=0)
    assert code_of(err) == "unknown_district"
    with pytest.raises(DomainError) as err:
        StaffMember("x").assign("x", "rep", district=t["D1"], area=None, supervisor=r1, customers_owned=0)
    assert code_of(err) == "unknown_supervisor"
    d3 = TerritoryUnit("D3")
    d3.define_district("西湖", t["A2"])
    committed(d3)
    with pytest.raises(DomainError) as err:
        StaffMember("x").assign("x", "rep", district=d3, area=None, supervisor=s1, customers_owned=0)
    assert code_of(err) == "supervisor_not_in_district"
    with pytest.raises(DomainError) as err:
        StaffMember("x").assign("x", "rep", district=t["D1"], area=t["A2"], supervisor=None, customers_owned=0)
    assert code_of(err) == "district_not_in_area"

    manager = StaffMember("am")
    manager.assign("周", "area_manager", district=None, area=t["A2"], supervisor=None, customers_owned=0)
    assert manager.pending[0].area_id == "A2" and manager.pending[0].district_id is None


def test_a_rep_with_customers_neither_moves_nor_leaves() -> None:
    t = tree()
    d3 = committed(_district("D3", t["A2"]))
    r1 = rep("r1", t["D1"])
    with pytest.raises(DomainError) as err:
        r1.assign("r1", "rep", district=d3, area=None, supervisor=None, customers_owned=2)
    assert code_of(err) == "rep_has_customers"
    with pytest.raises(DomainError) as err:
        r1.depart(customers_owned=1)
    assert code_of(err) == "rep_has_customers"
    assert r1.pending == []

    r1.assign("r1", "rep", district=d3, area=None, supervisor=None, customers_owned=0)
    assert r1.district_id == "D3"
    r1.depart(customers_owned=0)
    assert not r1.active and not r1.is_active_rep
    with pytest.raises(DomainError) as err:
        r1.depart(customers_owned=0)
    assert code_of(err) == "already_departed"
    with pytest.raises(DomainError) as err:
        StaffMember("ghost").depart(customers_owned=0)
    assert code_of(err) == "unknown_staff"


def _district(id: str, area: TerritoryUnit) -> TerritoryUnit:
    d = TerritoryUnit(id)
    d.define_district(id, area)
    return d
