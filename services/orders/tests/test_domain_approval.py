"""Pure domain tests: pricing, promotions, every approval rule, the order's life."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from orders_service.domain.catalogue import Sku
from orders_service.domain.customers import CustomerCard, may_act_for
from orders_service.domain.events import GiftRule
from orders_service.domain.order import Order
from orders_service.domain.ordering import (
    AMOUNT_OVER_THRESHOLD,
    CREDIT_LIMIT_EXCEEDED,
    OVERDUE_RECEIVABLES,
    PRICE_BELOW_FLOOR,
    PRICE_BELOW_LIST,
    CreditPosition,
    RequestedLine,
    apply_promotions,
    assess,
    price_lines,
    take_order,
)
from orders_service.domain.policy import ApprovalPolicy, OrderPolicy
from orders_service.domain.promotion import Promotion
from salesplatform.errors import DomainError, NotFound, PermissionDenied
from salesplatform.events import Actor, Role

pytestmark = pytest.mark.fast

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
DAY = date(2026, 3, 2)
POLICY = OrderPolicy()
RULES = POLICY.approval  # threshold 500,000; supervisor ≤ 2,000,000; area manager ≤ 10,000,000

REP = Actor(id="r1", role=Role.rep, district="d1", area="a1")
SUPERVISOR = Actor(id="s1", role=Role.supervisor, district="d1", area="a1")
AREA_MANAGER = Actor(id="am1", role=Role.area_manager, area="a1")
SALES_MANAGER = Actor(id="sm1", role=Role.sales_manager)
GENERAL_MANAGER = Actor(id="gm1", role=Role.general_manager)
CLERK = Actor(id="k1", role=Role.clerk)
SYSTEM = Actor(id="erp", role=Role.system)

CARD = CustomerCard(
    "c1",
    "active",
    district_id="d1",
    area_id="a1",
    rep_id="r1",
    channel="retail",
    credit_limit_fen=50_000_000,
    payment_terms_days=30,
)
NO_DEBT = CreditPosition()


def sku(code: str = "COLA", list_fen: int = 300, floor_fen: int = 250, **areas: tuple[int, int]) -> Sku:
    s = Sku(code)
    s.define(
        name=code, brand="B", product_group="soda", package="case", list_price_fen=list_fen, floor_price_fen=floor_fen
    )
    for area, (lst, flr) in areas.items():
        s.set_price(area_id=area, list_price_fen=lst, floor_price_fen=flr)
    return s


def priced(quantity: int, price: int | None = None, placer: Actor = REP, area: str | None = "a1"):
    return price_lines([RequestedLine("COLA", quantity, price)], {"COLA": sku()}, area, placer, RULES)


def reasons(
    quantity: int,
    price: int | None = None,
    *,
    placer: Actor = REP,
    card: CustomerCard = CARD,
    position: CreditPosition = NO_DEBT,
):
    approval = assess(priced(quantity, price, placer), card, position, placer, RULES)
    return dict.fromkeys(approval.reasons), approval.required_role


# -- pricing --------------------------------------------------------------------------------------


def test_unit_price_defaults_to_the_regions_list_price() -> None:
    s = sku(a2=(320, 260))
    [in_a2] = price_lines([RequestedLine("COLA", 1)], {"COLA": s}, "a2", REP, RULES)
    [elsewhere] = price_lines([RequestedLine("COLA", 1)], {"COLA": s}, "a9", REP, RULES)
    assert (in_a2.unit_price_fen, in_a2.floor_price_fen) == (320, 260)
    assert (elsewhere.unit_price_fen, elsewhere.floor_price_fen) == (300, 250)


def test_unknown_sku_is_refused() -> None:
    with pytest.raises(NotFound) as err:
        price_lines([RequestedLine("NOPE", 1)], {"NOPE": Sku("NOPE")}, "a1", REP, RULES)
    assert err.value.code == "unknown_sku" and err.value.field == "lines.0.sku"


@pytest.mark.parametrize("placer", [REP, SUPERVISOR, SYSTEM, CLERK])
def test_a_price_below_floor_needs_the_rights_to_propose_it(placer: Actor) -> None:
    with pytest.raises(PermissionDenied) as err:
        priced(1, 249, placer)
    assert err.value.code == "price_below_floor"


def test_floor_price_itself_is_allowed() -> None:
    assert priced(1, 250)[0].unit_price_fen == 250


# -- approval rules ---------------------------------------------------------------------------------


def test_an_ordinary_order_needs_no_approval() -> None:
    assert reasons(10) == ({}, None)


def test_amount_exactly_at_the_threshold_needs_no_approval() -> None:
    assert reasons(500_000 // 300 - 1)[0] == {}  # 166,500 fen
    assert AMOUNT_OVER_THRESHOLD not in reasons(1)[0]
    exact = assess(priced(1), CARD, CreditPosition(), REP, ApprovalPolicy(threshold_fen=300))
    assert not exact.needed


@pytest.mark.parametrize(
    ("quantity", "role"),
    [
        (1_700, Role.supervisor),  # 510,000 fen: over the threshold
        (6_666, Role.supervisor),  # 1,999,800
        (6_667, Role.area_manager),  # 2,000,100
        (33_333, Role.area_manager),  # 9,999,900
        (33_334, Role.sales_manager),  # 10,000,200
    ],
)
def test_amount_over_threshold_is_approved_by_the_tier_of_its_amount(quantity: int, role: Role) -> None:
    big = CustomerCard("c1", "active", district_id="d1", area_id="a1", rep_id="r1", credit_limit_fen=None)
    assert reasons(quantity, card=big) == ({AMOUNT_OVER_THRESHOLD: None}, role)


def test_going_over_the_credit_limit_needs_the_sales_manager() -> None:
    card = CustomerCard("c1", "active", area_id="a1", rep_id="r1", credit_limit_fen=10_000)
    # 7,000 open + 3,000 of confirmed orders + 3,000 now = 13,000 > 10,000
    position = CreditPosition(open_invoices_fen=7_000, open_orders_fen=3_000)
    assert reasons(10, card=card, position=position) == ({CREDIT_LIMIT_EXCEEDED: None}, Role.sales_manager)
    # exactly at the limit is still within it
    assert reasons(10, card=card, position=CreditPosition(open_invoices_fen=7_000)) == ({}, None)


def test_a_customer_without_a_credit_limit_is_not_credit_checked() -> None:
    card = CustomerCard("c1", "active", area_id="a1", rep_id="r1", credit_limit_fen=None)
    assert reasons(10, card=card, position=CreditPosition(open_invoices_fen=10**9)) == ({}, None)


def test_overdue_debt_needs_the_sales_manager() -> None:
    assert reasons(10, position=CreditPosition(open_invoices_fen=5_000, overdue_fen=1)) == (
        {OVERDUE_RECEIVABLES: None},
        Role.sales_manager,
    )


def test_below_floor_always_needs_approval_even_from_an_area_manager() -> None:
    assert reasons(10, 240, placer=AREA_MANAGER) == ({PRICE_BELOW_FLOOR: None}, Role.area_manager)
    assert reasons(10, 240, placer=GENERAL_MANAGER) == ({PRICE_BELOW_FLOOR: None}, Role.area_manager)


def test_between_floor_and_list_needs_the_area_manager_unless_placed_by_one() -> None:
    assert reasons(10, 280, placer=REP) == ({PRICE_BELOW_LIST: None}, Role.area_manager)
    assert reasons(10, 280, placer=SUPERVISOR) == ({PRICE_BELOW_LIST: None}, Role.area_manager)
    assert reasons(10, 280, placer=AREA_MANAGER) == ({}, None)
    assert reasons(10, 280, placer=SALES_MANAGER) == ({}, None)
    assert reasons(10, 320, placer=REP) == ({}, None)  # above list is the customer's business


def test_several_reasons_need_the_highest_role_among_them() -> None:
    card = CustomerCard("c1", "active", area_id="a1", rep_id="r1", credit_limit_fen=500_000)
    got, role = reasons(2_000, 280, card=card, position=CreditPosition(overdue_fen=5))
    assert list(got) == [AMOUNT_OVER_THRESHOLD, CREDIT_LIMIT_EXCEEDED, OVERDUE_RECEIVABLES, PRICE_BELOW_LIST]
    assert role == Role.sales_manager


def test_the_tiers_come_from_the_policy() -> None:
    strict = ApprovalPolicy(
        threshold_fen=1_000, supervisor_up_to_fen=2_000, area_manager_up_to_fen=3_000, overdue_role=Role.general_manager
    )
    lines = priced(10)  # 3,000 fen
    assert assess(lines, CARD, CreditPosition(), REP, strict).required_role == Role.area_manager
    assert assess(lines, CARD, CreditPosition(overdue_fen=1), REP, strict).required_role == Role.general_manager


# -- the order's life -------------------------------------------------------------------------------


def place(
    quantity: int = 10,
    price: int | None = None,
    *,
    placer: Actor = REP,
    card: CustomerCard = CARD,
    position: CreditPosition = NO_DEBT,
    promotions: list[Promotion] | None = None,
) -> Order:
    order = Order("o1")
    take_order(
        order,
        customer=card,
        requested=[RequestedLine("COLA", quantity, price)],
        skus={"COLA": sku()},
        promotions=promotions or [],
        position=position,
        placer=placer,
        rep_id="r1",
        source="phone",
        visit_id=None,
        business_date=DAY,
        placed_at=NOW,
        now=NOW,
        policy=POLICY,
    )
    return order


def types(order: Order) -> list[str]:
    return [e.event_type for e in order.pending]


def test_without_need_the_order_is_confirmed_with_24_hours_to_deliver() -> None:
    order = place()
    assert types(order) == ["order.placed", "order.confirmed"]
    assert order.status == "confirmed" and order.deliver_by == NOW + timedelta(hours=24)


@pytest.mark.parametrize("status", ["rejected", "lost", "merged"])
def test_a_closed_customer_takes_no_orders(status: str) -> None:
    with pytest.raises(DomainError) as err:
        place(card=CustomerCard("c1", status, area_id="a1", rep_id="r1"))
    assert err.value.code == "customer_not_orderable"


def test_an_order_needing_approval_waits_and_is_approved_within_the_rights() -> None:
    order = place(10, 280)
    assert types(order)[-1] == "order.approval_required"
    assert order.status == "pending_approval" and order.required_role == Role.area_manager
    for actor in (SUPERVISOR, CLERK, SYSTEM, REP):
        with pytest.raises(PermissionDenied) as err:
            order.approve(actor, NOW, 24)
        assert err.value.code == "approval_beyond_rights"
    later = NOW + timedelta(hours=3)
    order.approve(AREA_MANAGER, later, 24)
    assert types(order)[-2:] == ["order.approved", "order.confirmed"]
    assert order.deliver_by == later + timedelta(hours=24)
    with pytest.raises(DomainError) as again:
        order.approve(SALES_MANAGER, later, 24)
    assert again.value.code == "order_not_awaiting_approval"


def test_a_higher_role_may_approve_what_a_lower_one_could() -> None:
    order = place(1_700)  # supervisor tier
    order.approve(GENERAL_MANAGER, NOW, 24)
    assert order.status == "confirmed"


def test_rejection_needs_the_same_rights_and_keeps_the_reason() -> None:
    order = place(10, 280)
    with pytest.raises(PermissionDenied):
        order.reject(SUPERVISOR, "too cheap")
    order.reject(AREA_MANAGER, "too cheap")
    assert order.status == "rejected" and order.pending[-1].reason == "too cheap"


def test_an_unapproved_order_cannot_be_dispatched_or_delivered() -> None:
    order = place(10, 280)
    with pytest.raises(DomainError) as err:
        order.deliver(NOW, NOW)
    assert err.value.code == "order_not_confirmed"
    with pytest.raises(DomainError):
        order.dispatch()


def test_delivery_is_on_time_within_24_hours_and_late_after() -> None:
    on_time = place()
    on_time.dispatch()
    on_time.deliver(NOW + timedelta(hours=24), NOW + timedelta(hours=30))
    assert on_time.pending[-1].on_time is True
    late = place()
    late.deliver(NOW + timedelta(hours=24, seconds=1), NOW + timedelta(hours=30))
    assert late.pending[-1].on_time is False
    with pytest.raises(DomainError) as twice:
        late.deliver(NOW + timedelta(hours=25), NOW + timedelta(hours=30))
    assert twice.value.code == "order_already_delivered"


def test_the_overdue_flag_comes_only_after_the_deadline_and_once() -> None:
    order = place()
    with pytest.raises(DomainError) as early:
        order.flag_delivery_overdue(NOW + timedelta(hours=24))
    assert early.value.code == "not_yet_overdue"
    order.flag_delivery_overdue(NOW + timedelta(hours=24, minutes=1))
    assert order.delivery_overdue
    with pytest.raises(DomainError):
        order.flag_delivery_overdue(NOW + timedelta(hours=30))


def test_cancel_before_dispatch_only() -> None:
    order = place()
    order.cancel("customer changed mind")
    assert order.status == "cancelled"
    dispatched = place()
    dispatched.dispatch()
    with pytest.raises(DomainError) as err:
        dispatched.cancel("too late")
    assert err.value.code == "order_already_dispatched"


def test_the_rep_confirms_delivery_once() -> None:
    order = place()
    with pytest.raises(DomainError) as err:
        order.confirm_delivery(True)
    assert err.value.code == "order_not_delivered"
    order.deliver(NOW + timedelta(hours=2), NOW + timedelta(hours=2))
    order.confirm_delivery(True)
    with pytest.raises(DomainError) as again:
        order.confirm_delivery(True)
    assert again.value.code == "delivery_already_confirmed"


def test_a_partial_deposit_is_due_within_24_hours_of_the_first_payment() -> None:
    order = place()  # 3,000 fen
    order.record_deposit(1_000, None, NOW, "Asia/Shanghai", 24)
    assert order.deposit_due_by == NOW + timedelta(hours=24) and order.deposit_agreed_fen == 3_000
    order.record_deposit(500, None, NOW + timedelta(hours=5), "Asia/Shanghai", 24)
    assert order.deposit_due_by == NOW + timedelta(hours=24)  # the clock does not restart
    with pytest.raises(DomainError) as err:
        order.flag_deposit_overdue(NOW + timedelta(hours=23))
    assert err.value.code == "not_yet_overdue"
    order.flag_deposit_overdue(NOW + timedelta(hours=25))
    assert order.pending[-1].missing_fen == 1_500
    with pytest.raises(DomainError) as over:
        order.record_deposit(2_000, None, NOW, "Asia/Shanghai", 24)
    assert over.value.code == "deposit_exceeds_agreed"
    order.record_deposit(1_500, None, NOW + timedelta(hours=26), "Asia/Shanghai", 24)
    assert types(order)[-1] == "order.deposit_completed" and order.deposit_due_by is None


def test_a_deposit_completed_at_once_is_never_overdue() -> None:
    order = place()
    order.record_deposit(800, 800, NOW, "Asia/Shanghai", 24)
    assert types(order)[-2:] == ["order.deposit_recorded", "order.deposit_completed"]
    with pytest.raises(DomainError):
        order.flag_deposit_overdue(NOW + timedelta(days=3))


# -- promotions -----------------------------------------------------------------------------------


def promotion(
    pid: str = "p1",
    *,
    discount: int | None = 10,
    gift: GiftRule | None = None,
    budget: int = 100_000,
    channels: tuple[str, ...] = (),
    skus: tuple[str, ...] = ("COLA",),
    spent: int = 0,
) -> Promotion:
    p = Promotion(pid)
    p.plan(
        name=pid,
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 3, 31),
        skus=list(skus),
        channels=list(channels),
        discount_percent=None if gift else discount,
        gift_rule=gift,
        budget_fen=budget,
    )
    if spent:
        p.incur("earlier", spent)
    return p


def test_a_discount_lowers_the_unit_price_and_counts_against_the_budget() -> None:
    p = promotion(discount=10)
    order = place(10, promotions=[p])
    assert order.lines[0].unit_price_fen == 270 and order.lines[0].promotion_id == "p1"
    assert order.amount_fen == 2_700
    assert p.spent_fen == 300 and p.pending[-1].event_type == "promotion.cost_incurred"


def test_a_gift_rule_adds_free_units_valued_at_list_price() -> None:
    p = promotion(gift=GiftRule(buy=10, get=1))
    order = place(25, promotions=[p])
    line = order.lines[0]
    assert (line.quantity, line.gift_quantity, line.unit_price_fen) == (25, 2, 300)
    assert p.spent_fen == 600


def test_a_promotion_never_spends_past_its_budget() -> None:
    p = promotion(discount=10, budget=1_000, spent=800)
    order = place(10, promotions=[p])  # would cost 300, 200 left
    assert order.lines[0].promotion_id is None and order.lines[0].unit_price_fen == 300
    declined = [e for e in order.pending if e.event_type == "order.promotion_declined"]
    assert declined[0].promotion_id == "p1" and declined[0].reason.startswith("budget_exhausted")
    assert p.spent_fen == 800 and len(p.pending) == 2  # planned, the earlier cost: nothing new
    with pytest.raises(DomainError):
        p.incur("o9", 201)


def test_promotions_apply_only_in_their_period_channel_and_skus() -> None:
    p = promotion(channels=("wholesale",))
    lines = priced(10)
    assert apply_promotions(lines, [p], "retail", DAY)[1] == {}
    assert apply_promotions(lines, [p], "wholesale", DAY)[1] == {"p1": 300}
    assert apply_promotions(lines, [p], "wholesale", date(2026, 4, 1))[1] == {}
    assert apply_promotions(lines, [promotion(skus=("TEA",))], "retail", DAY)[1] == {}


def test_cancelling_gives_the_promotion_cost_back() -> None:
    p = promotion()
    place(10, promotions=[p])
    p.release("o1")
    assert p.spent_fen == 0 and p.pending[-1].event_type == "promotion.cost_released"


# -- territory --------------------------------------------------------------------------------------


def test_the_line_of_command() -> None:
    assert may_act_for(REP, CARD)
    assert not may_act_for(Actor(id="r2", role=Role.rep, district="d1"), CARD)
    assert may_act_for(SUPERVISOR, CARD)
    assert not may_act_for(Actor(id="s2", role=Role.supervisor, district="d2"), CARD)
    assert may_act_for(AREA_MANAGER, CARD)
    assert not may_act_for(Actor(id="am2", role=Role.area_manager, area="a2"), CARD)
    assert may_act_for(SALES_MANAGER, CARD) and may_act_for(SYSTEM, CARD)
    assert not may_act_for(CLERK, CARD)
