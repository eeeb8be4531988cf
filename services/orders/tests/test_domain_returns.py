"""Pure domain tests: every route of a return (退回产品处理单) and its refusals."""

from __future__ import annotations

import pytest

from orders_service.domain.events import OrderLine
from orders_service.domain.returns import Returned, ReturnRequest, delivered_lines, route_for
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Actor, Role

pytestmark = pytest.mark.fast

REP = Actor(id="r1", role=Role.rep)
SUPERVISOR = Actor(id="s1", role=Role.supervisor)
AREA_MANAGER = Actor(id="am1", role=Role.area_manager)
SALES_MANAGER = Actor(id="sm1", role=Role.sales_manager)
GENERAL_MANAGER = Actor(id="gm1", role=Role.general_manager)
INSPECTOR = Actor(id="i1", role=Role.inspector)
CLERK = Actor(id="k1", role=Role.clerk)

LINES = (
    OrderLine(sku="COLA", product_group="soda", quantity=10, unit_price_fen=300, amount_fen=3_000),
    OrderLine(sku="TEA", product_group="tea", quantity=4, unit_price_fen=400, amount_fen=1_600, gift_quantity=1),
)


def request(
    reason: str, scope: str = "part", lines=(("COLA", 2),), returned=None, delivered: bool = True
) -> ReturnRequest:
    ret = ReturnRequest("ret1")
    ret.request(
        order_id="o1",
        customer_id="c1",
        order_delivered=delivered,
        delivered=delivered_lines(LINES),
        returned=returned or {},
        lines=list(lines) if lines is not None else None,
        scope=scope,
        reason=reason,
        detail="",
    )
    return ret


def inspect(ret: ReturnRequest, confirmed: bool = True) -> None:
    ret.inspect(INSPECTOR, confirmed=confirmed, notes="seen", department="production", action="fix the line")


def refused_approval(ret: ReturnRequest, actor: Actor) -> str:
    with pytest.raises((DomainError, PermissionDenied)) as err:
        ret.approve(actor)
    return err.value.code


@pytest.mark.parametrize(
    ("reason", "scope", "inspection", "role"),
    [
        ("quality_defect", "whole_batch", True, Role.general_manager),
        ("quality_defect", "part", True, Role.area_manager),
        ("wrong_shipment", "part", False, Role.sales_manager),
        ("wrong_shipment", "whole_batch", False, Role.sales_manager),
        ("selection_error", "part", True, Role.sales_manager),
        ("transit_damage", "part", False, Role.area_manager),
        ("transit_damage", "whole_batch", False, Role.area_manager),
    ],
)
def test_the_route_of_each_reason_and_scope(reason: str, scope: str, inspection: bool, role: Role) -> None:
    route = route_for(reason, scope)  # type: ignore[arg-type]
    assert (route.inspection_required, route.approver_role) == (inspection, role)


def test_whole_batch_quality_defect_inspection_then_general_manager() -> None:
    ret = request("quality_defect", "whole_batch", lines=None)
    assert {(x.sku, x.quantity) for x in ret.lines} == {("COLA", 10), ("TEA", 5)}
    assert refused_approval(ret, GENERAL_MANAGER) == "inspection_required"
    inspect(ret)
    assert [e.event_type for e in ret.pending][-2:] == ["return.inspected", "corrective_action.assigned"]
    assert ret.pending[-1].department == "production"
    for actor in (AREA_MANAGER, SALES_MANAGER):
        assert refused_approval(ret, actor) == "approval_beyond_rights"
    ret.approve(GENERAL_MANAGER)
    ret.resolve(GENERAL_MANAGER, "refund", ret.amount_fen)
    ret.receive_goods()
    assert ret.status == "closed"


def test_part_quality_exchange_by_an_area_manager_after_inspection() -> None:
    ret = request("quality_defect")
    inspect(ret)
    assert refused_approval(ret, SUPERVISOR) == "approval_beyond_rights"
    ret.approve(AREA_MANAGER)
    ret.resolve(AREA_MANAGER, "exchange", 0)
    assert ret.status == "resolved"


def test_wrong_shipment_goes_to_the_sales_manager_without_inspection() -> None:
    ret = request("wrong_shipment")
    assert refused_approval(ret, AREA_MANAGER) == "approval_beyond_rights"
    ret.approve(SALES_MANAGER)
    assert ret.status == "approved"
    assert not [e for e in ret.pending if e.event_type == "corrective_action.assigned"]


def test_selection_error_is_verified_then_approved_by_the_sales_manager() -> None:
    ret = request("selection_error")
    assert refused_approval(ret, SALES_MANAGER) == "inspection_required"
    inspect(ret)
    assert not [e for e in ret.pending if e.event_type == "corrective_action.assigned"]
    assert refused_approval(ret, AREA_MANAGER) == "approval_beyond_rights"
    ret.approve(SALES_MANAGER)


def test_transit_damage_is_our_shipping_fault_for_an_area_manager_or_up() -> None:
    ret = request("transit_damage")
    assert refused_approval(ret, SUPERVISOR) == "approval_beyond_rights"
    ret.approve(AREA_MANAGER)
    ret.resolve(AREA_MANAGER, "compensation", 5_000)  # compensation may exceed the goods' value


def test_an_unconfirmed_inspection_leaves_only_rejection_and_the_reason_is_kept() -> None:
    ret = request("quality_defect")
    inspect(ret, confirmed=False)
    assert not [e for e in ret.pending if e.event_type == "corrective_action.assigned"]
    assert refused_approval(ret, GENERAL_MANAGER) == "inspection_not_confirmed"
    with pytest.raises(PermissionDenied):
        ret.reject(SUPERVISOR, "no defect found")
    ret.reject(AREA_MANAGER, "no defect found")
    assert ret.status == "rejected" and ret.pending[-1].reason == "no defect found"
    assert refused_approval(ret, GENERAL_MANAGER) == "return_not_open"


def test_inspection_happens_once() -> None:
    ret = request("quality_defect")
    inspect(ret)
    with pytest.raises(DomainError) as err:
        inspect(ret)
    assert err.value.code == "already_inspected"


def test_no_role_outside_the_line_approves() -> None:
    ret = request("transit_damage")
    for actor in (CLERK, INSPECTOR, REP):
        assert refused_approval(ret, actor) == "approval_beyond_rights"


def test_a_return_for_more_than_was_delivered_is_refused() -> None:
    with pytest.raises(DomainError) as err:
        request("transit_damage", lines=[("COLA", 11)])
    assert err.value.code == "return_exceeds_delivered" and err.value.field == "lines.0.quantity"
    with pytest.raises(DomainError) as after_earlier:
        request("transit_damage", lines=[("COLA", 3)], returned={"COLA": Returned(8, 2_400)})
    assert after_earlier.value.code == "return_exceeds_delivered"
    request("transit_damage", lines=[("COLA", 2)], returned={"COLA": Returned(8, 2_400)})


def test_gifts_are_returnable_but_never_refunded_past_what_was_paid() -> None:
    ret = request("transit_damage", lines=[("TEA", 5)])
    assert ret.lines[0].amount_fen == 1_600  # 5 × 400 capped at the line's 1,600


def test_other_refusals_of_a_request() -> None:
    cases = [
        ({"lines": [("WATER", 1)]}, "sku_not_in_order"),
        ({"delivered": False}, "order_not_delivered"),
        ({"scope": "whole_batch", "lines": [("COLA", 10)]}, "whole_batch_incomplete"),
        ({"lines": None}, "lines_required"),
    ]
    for kw, code in cases:
        with pytest.raises(DomainError) as err:
            request("transit_damage", **kw)
        assert err.value.code == code


def test_resolution_amount_and_order_of_steps() -> None:
    ret = request("wrong_shipment")
    with pytest.raises(DomainError) as early:
        ret.resolve(SALES_MANAGER, "refund", 100)
    assert early.value.code == "return_not_approved"
    ret.approve(SALES_MANAGER)
    with pytest.raises(DomainError) as goods:
        ret.receive_goods()
    assert goods.value.code == "return_not_resolved"
    with pytest.raises(DomainError) as too_much:
        ret.resolve(SALES_MANAGER, "credit_note", 601)
    assert too_much.value.code == "resolution_exceeds_return"
    with pytest.raises(PermissionDenied):
        ret.resolve(AREA_MANAGER, "credit_note", 600)
    ret.resolve(SALES_MANAGER, "credit_note", 600)
