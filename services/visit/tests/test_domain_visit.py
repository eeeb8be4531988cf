"""The visit and its card, pure: planning, approvals, the eight steps, missed visits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from pydantic import ValidationError

from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Role
from visit_service.domain.events import (
    OrderLine,
    StockLine,
    VisitApprovalOverdue,
    VisitApprovalRequested,
    VisitCheckedOut,
    VisitCoolerChecked,
    VisitMissed,
    VisitOrderSuggested,
    VisitOrderTaken,
    VisitPlanned,
    VisitStockCounted,
)
from visit_service.domain.visit import APPROVAL_SLA, Visit

pytestmark = pytest.mark.fast

DAY = date(2026, 11, 2)
NINE = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
TZ = "Asia/Shanghai"
CATALOGUE = {"cola", "sprite", "water", "juice"}


def planned(key_account: bool = False) -> Visit:
    visit = Visit("v1")
    visit.plan(
        rep_id="rep-1",
        customer_id="c1",
        business_date=DAY,
        route_id="r1",
        sequence=1,
        district_id="d1",
        area_id="a1",
        key_account=key_account,
        now=NINE,
    )
    return visit


def unplanned(requested_by: str = "rep-1") -> Visit:
    visit = Visit("v2")
    visit.request_unplanned(
        rep_id="rep-1",
        customer_id="c9",
        business_date=DAY,
        sequence=7,
        district_id="d1",
        area_id="a1",
        requested_by=requested_by,
        now=NINE,
    )
    return visit


def checked_in(key_account: bool = False) -> Visit:
    visit = planned(key_account)
    if key_account:
        visit.approve("sup-1")
    visit.check_in(NINE, 31.2, 121.5, DAY)
    return visit


def code_of(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.code


# -- planning and approvals -------------------------------------------------------------------


def test_a_route_visit_is_planned_with_its_ids_and_needs_no_approval() -> None:
    visit = planned()
    [event] = visit.pending
    assert isinstance(event, VisitPlanned)
    assert event.model_dump(mode="json") == {
        "visit_id": "v1",
        "rep_id": "rep-1",
        "customer_id": "c1",
        "business_date": "2026-11-02",
        "route_id": "r1",
        "planned": True,
        "sequence": 1,
        "district_id": "d1",
        "area_id": "a1",
    }
    assert visit.approval is None


def test_a_key_account_visit_asks_for_approval_due_in_24_hours() -> None:
    visit = planned(key_account=True)
    request = visit.pending[1]
    assert isinstance(request, VisitApprovalRequested)
    assert request.reason == "key_account"
    assert request.due_at - request.requested_at == APPROVAL_SLA == timedelta(hours=24)
    assert visit.approval == "pending"


def test_a_high_value_accounts_visit_is_approved_at_director_level_only() -> None:
    visit = Visit("v3")
    visit.plan(
        rep_id="rep-1",
        customer_id="c1",
        business_date=DAY,
        route_id="r1",
        sequence=1,
        district_id="d1",
        area_id="a1",
        key_account=True,
        now=NINE,
        approver_role=Role.area_manager,
    )
    assert visit.pending[1].approver_role == "area_manager"
    with pytest.raises(PermissionDenied) as e:
        visit.approve("sup-1", Role.supervisor)
    assert code_of(e) == "approver_rank_required"
    with pytest.raises(PermissionDenied):
        visit.reject_approval("sup-1", "no", Role.supervisor)
    visit.approve("am-1", Role.area_manager)
    assert visit.approval == "approved"


def test_an_ordinary_key_account_visit_is_approved_by_the_supervisor() -> None:
    visit = planned(key_account=True)
    assert visit.pending[1].approver_role == "supervisor"
    visit.approve("sup-1", Role.supervisor)
    assert visit.approval == "approved"


def test_an_unplanned_visit_asks_for_approval_and_is_marked_unplanned() -> None:
    visit = unplanned()
    plan, request = visit.pending
    assert plan.planned is False and plan.route_id is None
    assert request.reason == "unplanned" and request.requested_by == "rep-1"


def test_planning_the_same_visit_twice_is_refused() -> None:
    visit = planned()
    with pytest.raises(DomainError) as e:
        visit.plan(
            rep_id="rep-1",
            customer_id="c1",
            business_date=DAY,
            route_id="r1",
            sequence=1,
            district_id="d1",
            area_id="a1",
            key_account=False,
            now=NINE,
        )
    assert code_of(e) == "already_planned"


def test_approving_ones_own_request_is_refused() -> None:
    visit = unplanned(requested_by="sup-1")
    with pytest.raises(PermissionDenied) as e:
        visit.approve("sup-1")
    assert code_of(e) == "own_request"
    with pytest.raises(PermissionDenied):
        visit.approve("rep-1")  # the visit's own rep cannot approve it either
    assert visit.approval == "pending"


def test_a_rejected_approval_cancels_the_visit_and_only_a_pending_request_is_answered() -> None:
    visit = unplanned()
    visit.reject_approval("sup-1", "not this week")
    assert visit.status == "cancelled"
    with pytest.raises(DomainError) as e:
        visit.approve("sup-1")
    assert code_of(e) == "no_approval_pending"
    with pytest.raises(DomainError) as e:
        planned().approve("sup-1")
    assert code_of(e) == "no_approval_pending"


def test_approval_is_flagged_overdue_only_after_24_hours_and_once() -> None:
    visit = unplanned()
    with pytest.raises(DomainError) as e:
        visit.flag_approval_overdue(NINE + timedelta(hours=23, minutes=59), "sup-1")
    assert code_of(e) == "not_overdue"
    visit.flag_approval_overdue(NINE + timedelta(hours=24), "sup-1")
    assert isinstance(visit.pending[-1], VisitApprovalOverdue)
    assert visit.pending[-1].supervisor_id == "sup-1"
    with pytest.raises(DomainError) as e:
        visit.flag_approval_overdue(NINE + timedelta(hours=30), "sup-1")
    assert code_of(e) == "already_flagged"
    visit.approve("sup-1")  # a late answer is still an answer
    with pytest.raises(DomainError) as e:
        visit.flag_approval_overdue(NINE + timedelta(hours=30), "sup-1")
    assert code_of(e) == "no_approval_pending"


# -- check-in ---------------------------------------------------------------------------------


def test_check_in_twice_is_refused() -> None:
    visit = checked_in()
    with pytest.raises(DomainError) as e:
        visit.check_in(NINE, 31.2, 121.5, DAY)
    assert code_of(e) == "already_checked_in"


def test_check_in_waits_for_the_approval_and_is_refused_after_a_rejection() -> None:
    visit = planned(key_account=True)
    with pytest.raises(DomainError) as e:
        visit.check_in(NINE, 31.2, 121.5, DAY)
    assert code_of(e) == "approval_pending"
    visit.reject_approval("sup-1", "budget")
    with pytest.raises(DomainError) as e:
        visit.check_in(NINE, 31.2, 121.5, DAY)
    assert code_of(e) == "visit_cancelled"


def test_check_in_only_on_the_visits_business_day() -> None:
    visit = planned()
    with pytest.raises(DomainError) as e:
        visit.check_in(NINE, 31.2, 121.5, DAY + timedelta(days=1))
    assert code_of(e) == "visit_not_today"


# -- the steps need a check-in ------------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    [
        lambda v: v.count_stock([StockLine(sku="cola", shelf_qty=1, store_qty=0)], CATALOGUE, {}, []),
        lambda v: v.audit_merchandising(["cola"], ["cola"], True, True, CATALOGUE),
        lambda v: v.check_cooler(
            "k1",
            at_outlet=True,
            best_position=True,
            powered=True,
            light_on=True,
            clean=True,
            working=True,
            required_packs=True,
            misused=False,
        ),
        lambda v: v.observe_competitor("Rival", "Rival Cola", 250, None, 10),
        lambda v: v.take_order("o1", [OrderLine(sku="cola", quantity=1)], CATALOGUE),
        lambda v: v.refuse_order("closed"),
        lambda v: v.confirm_delivery("o0", True),
    ],
    ids=["stock", "audit", "cooler", "competitor", "order", "refusal", "delivery"],
)
def test_every_step_needs_the_visit_checked_in(step) -> None:
    visit = planned()
    with pytest.raises(DomainError) as e:
        step(visit)
    assert code_of(e) == "not_checked_in"
    assert len(visit.pending) == 1


def test_check_out_before_check_in_is_refused() -> None:
    with pytest.raises(DomainError) as e:
        planned().check_out(NINE)
    assert code_of(e) == "not_checked_in"


# -- stock count and the suggested order -------------------------------------------------------


def test_stock_count_records_the_count_and_the_suggested_order() -> None:
    visit = checked_in()
    visit.count_stock(
        [StockLine(sku="cola", shelf_qty=2, store_qty=1), StockLine(sku="sprite", shelf_qty=5, store_qty=0)],
        CATALOGUE,
        {"cola": Fraction(10), "sprite": Fraction(2)},
        ["cola", "water"],
    )
    counted, suggested = visit.pending[-2:]
    assert isinstance(counted, VisitStockCounted) and isinstance(suggested, VisitOrderSuggested)
    # cola: 1.5 × 10 − 3 = 12; sprite: 3 − 5 < 0; water required and missing: at least 1.
    assert [(s.sku, s.quantity) for s in suggested.lines] == [("cola", 12), ("water", 1)]


def test_stock_count_of_an_unknown_sku_changes_nothing() -> None:
    visit = checked_in()
    before = len(visit.pending)
    with pytest.raises(DomainError) as e:
        visit.count_stock([StockLine(sku="fanta", shelf_qty=1, store_qty=0)], CATALOGUE, {}, [])
    assert code_of(e) == "unknown_sku" and e.value.field == "lines"
    assert len(visit.pending) == before


def test_a_sku_counted_twice_is_refused() -> None:
    visit = checked_in()
    lines = [StockLine(sku="cola", shelf_qty=1, store_qty=0), StockLine(sku="cola", shelf_qty=2, store_qty=0)]
    with pytest.raises(DomainError) as e:
        visit.count_stock(lines, CATALOGUE, {}, [])
    assert code_of(e) == "duplicate_sku"


def test_negative_quantities_are_not_a_stock_line() -> None:
    with pytest.raises(ValidationError):
        StockLine(sku="cola", shelf_qty=-1, store_qty=0)
    with pytest.raises(ValidationError):
        OrderLine(sku="cola", quantity=0)


# -- merchandising, coolers, competitors --------------------------------------------------------


def test_merchandising_audit_keeps_required_and_present_skus() -> None:
    visit = checked_in()
    visit.audit_merchandising(["cola", "water"], ["cola"], price_tags_ok=True, display_ok=False, known_skus=CATALOGUE)
    audit = visit.pending[-1]
    assert audit.required_skus == ["cola", "water"] and audit.present_skus == ["cola"]
    assert audit.price_tags_ok and not audit.display_ok
    with pytest.raises(DomainError) as e:
        visit.audit_merchandising(["cola"], ["fanta"], True, True, CATALOGUE)
    assert code_of(e) == "unknown_sku"


def test_a_cooler_is_compliant_only_when_every_check_passes_and_it_is_not_misused() -> None:
    visit = checked_in()
    ok = {
        "at_outlet": True,
        "best_position": True,
        "powered": True,
        "light_on": True,
        "clean": True,
        "working": True,
        "required_packs": True,
        "misused": False,
    }
    visit.check_cooler("k1", **ok)
    visit.check_cooler("k2", **(ok | {"light_on": False}))
    visit.check_cooler("k3", **(ok | {"misused": True}))
    coolers = [e for e in visit.pending if isinstance(e, VisitCoolerChecked)]
    assert [c.compliant for c in coolers] == [True, False, False]
    with pytest.raises(DomainError) as e:
        visit.check_cooler("k1", **ok)
    assert code_of(e) == "cooler_already_checked"


def test_competitor_observation_is_recorded() -> None:
    visit = checked_in()
    visit.observe_competitor("Rival", "Rival Cola 500ml", 250, "buy 2 get 1", 45)
    seen = visit.pending[-1]
    assert (seen.brand, seen.price_fen, seen.promotion, seen.stock_age_days) == ("Rival", 250, "buy 2 get 1", 45)


# -- order, refusal, delivery, check-out --------------------------------------------------------


def test_order_taken_says_whether_the_suggestion_was_adopted() -> None:
    visit = checked_in()
    visit.count_stock([StockLine(sku="cola", shelf_qty=0, store_qty=0)], CATALOGUE, {"cola": Fraction(4)}, [])
    visit.take_order("o1", [OrderLine(sku="cola", quantity=6), OrderLine(sku="juice", quantity=2)], CATALOGUE)
    taken = visit.pending[-1]
    assert isinstance(taken, VisitOrderTaken) and taken.suggested_adopted is True
    other = checked_in()
    other.count_stock([StockLine(sku="cola", shelf_qty=0, store_qty=0)], CATALOGUE, {"cola": Fraction(4)}, [])
    other.take_order("o2", [OrderLine(sku="cola", quantity=5)], CATALOGUE)
    assert other.pending[-1].suggested_adopted is False


def test_the_order_taken_event_carries_exactly_the_contract_fields() -> None:
    visit = checked_in()
    visit.take_order(
        "o1", [OrderLine(sku="cola", quantity=3, unit_price_fen=290), OrderLine(sku="water", quantity=1)], CATALOGUE
    )
    assert visit.pending[-1].model_dump(mode="json") == {
        "visit_id": "v1",
        "rep_id": "rep-1",
        "customer_id": "c1",
        "business_date": "2026-11-02",
        "order_id": "o1",
        "lines": [
            {"sku": "cola", "quantity": 3, "unit_price_fen": 290},
            {"sku": "water", "quantity": 1, "unit_price_fen": None},
        ],
        "suggested_adopted": False,
    }


def test_one_order_outcome_per_visit() -> None:
    visit = checked_in()
    visit.take_order("o1", [OrderLine(sku="cola", quantity=1)], CATALOGUE)
    with pytest.raises(DomainError) as e:
        visit.take_order("o1", [OrderLine(sku="cola", quantity=1)], CATALOGUE)
    assert code_of(e) == "order_already_recorded"
    with pytest.raises(DomainError) as e:
        visit.refuse_order("changed mind")
    assert code_of(e) == "order_already_recorded"
    with pytest.raises(DomainError) as e:
        visit.count_stock([StockLine(sku="cola", shelf_qty=1, store_qty=0)], CATALOGUE, {}, [])
    assert code_of(e) == "order_already_recorded"


def test_an_order_with_an_unknown_sku_is_refused() -> None:
    visit = checked_in()
    with pytest.raises(DomainError) as e:
        visit.take_order("o1", [OrderLine(sku="fanta", quantity=1)], CATALOGUE)
    assert code_of(e) == "unknown_sku"


def test_delivery_is_confirmed_once_and_not_for_this_visits_own_order() -> None:
    visit = checked_in()
    visit.take_order("o1", [OrderLine(sku="cola", quantity=1)], CATALOGUE)
    with pytest.raises(DomainError) as e:
        visit.confirm_delivery("o1", True)
    assert code_of(e) == "not_previous_order"
    visit.confirm_delivery("o0", False)
    assert visit.pending[-1].delivered is False
    with pytest.raises(DomainError) as e:
        visit.confirm_delivery("o0", True)
    assert code_of(e) == "delivery_already_confirmed"


def test_check_out_needs_the_order_outcome_and_is_successful_only_with_an_order() -> None:
    visit = checked_in()
    with pytest.raises(DomainError) as e:
        visit.check_out(NINE)
    assert code_of(e) == "order_outcome_missing"
    visit.take_order("o1", [OrderLine(sku="cola", quantity=1)], CATALOGUE)
    visit.check_out(NINE + timedelta(minutes=20))
    assert isinstance(visit.pending[-1], VisitCheckedOut) and visit.pending[-1].successful is True
    refused = checked_in()
    refused.refuse_order("enough stock")
    refused.check_out(NINE)
    assert refused.pending[-1].successful is False
    with pytest.raises(DomainError) as e:
        refused.check_out(NINE)
    assert code_of(e) == "already_checked_out"
    with pytest.raises(DomainError) as e:
        refused.observe_competitor("Rival", "x", None, None, None)
    assert code_of(e) == "visit_closed"


# -- missed -------------------------------------------------------------------------------------


def test_a_visit_is_missed_only_after_its_business_day_ends_in_the_company_time_zone() -> None:
    visit = planned()
    # 23:59 in Shanghai on the visit's day is 15:59 UTC: not over yet.
    with pytest.raises(DomainError) as e:
        visit.miss(datetime(2026, 11, 2, 15, 59, tzinfo=UTC), TZ)
    assert code_of(e) == "business_day_not_over"
    visit.miss(datetime(2026, 11, 2, 16, 0, tzinfo=UTC), TZ)
    assert isinstance(visit.pending[-1], VisitMissed)
    with pytest.raises(DomainError) as e:
        visit.check_in(NINE, 0, 0, DAY)
    assert code_of(e) == "visit_missed"


def test_a_checked_in_visit_is_never_missed() -> None:
    visit = checked_in()
    with pytest.raises(DomainError) as e:
        visit.miss(NINE + timedelta(days=2), TZ)
    assert code_of(e) == "not_missable"


def test_replaying_the_events_gives_the_same_state() -> None:
    visit = checked_in(key_account=True)
    visit.count_stock([StockLine(sku="cola", shelf_qty=0, store_qty=0)], CATALOGUE, {"cola": Fraction(2)}, [])
    visit.take_order("o1", [OrderLine(sku="cola", quantity=3)], CATALOGUE)
    again = Visit.replay("v1", visit.pending)
    assert (again.status, again.approval, again.order_id, again.suggested) == (
        visit.status,
        visit.approval,
        visit.order_id,
        visit.suggested,
    )
