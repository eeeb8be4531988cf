"""Pure tests of sales control (domain/units.py, domain/deposits.py): the status machine, the
first deposit winning, the 24-hour deposit, the subscription unsigned and signed, price lists,
the receipt's amount in words and the recommended layouts. No I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from orders_service.domain.deposits import deposit_overdue, next_deposit
from orders_service.domain.unit_events import DepositTakerNamed
from orders_service.domain.units import (
    TRANSITIONS,
    Needs,
    OnSale,
    Project,
    Unit,
    UnknownEvent,
    amount_in_words,
    recommend_layouts,
)
from salesplatform.errors import DomainError, PermissionDenied

pytestmark = pytest.mark.fast

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"
SPEC = {
    "building": "3",
    "unit_no": "1201",
    "floor": 12,
    "layout_name": "A2",
    "rooms": 3,
    "halls": 2,
    "bathrooms": 2,
    "area_sqm": Decimal("118.56"),
    "orientation": "south_north",
    "position": "中间套",
}
PRICE = 2_845_440_00  # 2,845,440 yuan


def on_sale(unit_id: str = "P1-3-1201") -> Unit:
    unit = Unit(unit_id)
    unit.define("P1", **SPEC)
    unit.price("P1", "一期一批", 24_000_00, PRICE, None)
    return Unit.replay(unit_id, unit.pending)


def deposit(unit: Unit, lead: str = "L1", amount: int = 50_000_00, agreed: int | None = None, **kw) -> None:
    unit.take_deposit(
        lead_id=lead,
        credited_rep_id=kw.pop("rep", "r1"),
        amount_fen=amount,
        agreed_fen=agreed,
        method=kw.pop("method", "transfer"),
        cheque_no=kw.pop("cheque_no", None),
        source_of_funds="own_funds",
        funds_detail=None,
        taken_by="sm",
        now=kw.pop("now", NOW),
        timezone=TZ,
        hours=24,
    )


def test_a_unit_is_on_sale_only_once_priced_and_the_statuses_go_in_order() -> None:
    unit = Unit("P1-3-1201")
    unit.define("P1", **SPEC)
    assert unit.define("P1", **SPEC) is False  # the same definition again changes nothing
    with pytest.raises(DomainError) as e:
        unit.define("P1", **{**SPEC, "rooms": 4})
    assert e.value.code == "unit_exists"
    with pytest.raises(DomainError) as e:
        deposit(unit)
    assert e.value.code == "unit_not_on_sale"
    assert list(TRANSITIONS) == [
        "unreleased",
        "available",
        "reserved",
        "subscribed",
        "contracted",
        "mortgage",
        "handed_over",
    ]
    unit = on_sale()
    assert unit.status == "available" and unit.total_price_fen == PRICE
    deposit(unit, agreed=50_000_00)
    assert unit.status == "reserved"
    unit.fill_subscription(
        subscription_no="RG-001",
        price_fen=None,
        payment_plan="mortgage",
        down_payment_fen=PRICE * 3 // 10,
        contract_due_on=date(2026, 3, 9),
        remarks=None,
        filled_by="r1",
        may_discount=False,
    )
    assert unit.status == "reserved"  # filled, not signed: not valid yet
    with pytest.raises(DomainError) as e:
        unit.sign_contract("HT-001", None, "r1", NOW, TZ)
    assert e.value.code == "subscription_not_signed"
    unit.sign_subscription("sm", "r1", NOW, TZ)
    assert unit.status == "subscribed" and unit.pending[-1].kept_by == "sm"
    with pytest.raises(DomainError) as e:
        unit.hand_over(NOW, TZ)
    assert e.value.code == "not_contracted"
    unit.sign_contract("HT-001", None, "r1", NOW, TZ)
    with pytest.raises(DomainError) as e:
        unit.hand_over(NOW, TZ)
    assert e.value.code == "mortgage_not_started"
    unit.start_mortgage("工商银行", PRICE * 7 // 10, NOW, TZ)
    unit.hand_over(NOW, TZ)
    assert unit.status == "handed_over"


def test_the_first_deposit_wins_and_a_released_unit_is_on_sale_again() -> None:
    unit = on_sale()
    deposit(unit, "L1")
    with pytest.raises(DomainError) as e:
        deposit(unit, "L2")
    assert e.value.code == "unit_already_reserved"
    unit.release_reservation("客户改变主意", "refunded", NOW, TZ)
    assert unit.status == "available" and unit.lead_id is None
    deposit(unit, "L2", rep="r2")
    assert (unit.lead_id, unit.credited_rep_id) == ("L2", "r2")
    assert [e.receipt_no for e in unit.pending if e.event_type == "unit.deposit_received"] == [
        "P1-3-1201-D1",
        "P1-3-1201-D2",
    ]


def test_a_partial_deposit_is_due_in_24_hours_of_the_first_payment() -> None:
    """The orders' rule (deposits.py), the same for a unit."""
    first = next_deposit(
        agreed_so_far=0,
        total_so_far=0,
        due_by_so_far=None,
        amount_fen=1_000,
        agreed_fen=5_000,
        ceiling_fen=10_000,
        ceiling="unit's price",
        ceiling_code="deposit_exceeds_price",
        now=NOW,
        hours=24,
    )
    assert (first.total_fen, first.due_by, first.complete) == (1_000, NOW + timedelta(hours=24), False)
    later = NOW + timedelta(hours=20)
    second = next_deposit(
        agreed_so_far=5_000,
        total_so_far=1_000,
        due_by_so_far=first.due_by,
        amount_fen=1_000,
        agreed_fen=None,
        ceiling_fen=10_000,
        ceiling="unit's price",
        ceiling_code="deposit_exceeds_price",
        now=later,
        hours=24,
    )
    assert second.due_by == first.due_by  # an instalment does not restart the 24 hours
    assert not deposit_overdue(second.due_by, NOW + timedelta(hours=24))
    assert deposit_overdue(second.due_by, NOW + timedelta(hours=24, seconds=1))

    unit = on_sale()
    deposit(unit, amount=20_000_00, agreed=50_000_00)
    assert unit.deposit_due_by == NOW + timedelta(hours=24)
    with pytest.raises(DomainError) as e:
        unit.flag_deposit_overdue(NOW + timedelta(hours=23))
    assert e.value.code == "not_yet_overdue"
    unit.flag_deposit_overdue(NOW + timedelta(hours=25))
    assert unit.deposit_overdue
    with pytest.raises(DomainError) as e:
        deposit(unit, amount=40_000_00)
    assert e.value.code == "deposit_exceeds_agreed"
    with pytest.raises(DomainError) as e:
        deposit(unit, amount=10_000_00, agreed=60_000_00)
    assert e.value.code == "deposit_agreed_fixed"
    deposit(unit, amount=30_000_00, now=NOW + timedelta(hours=26))
    assert unit.deposit_due_by is None and unit.pending[-1].event_type == "unit.deposit_completed"
    with pytest.raises(DomainError) as e:
        deposit(on_sale(), agreed=PRICE + 1)
    assert e.value.code == "deposit_exceeds_price"


def test_the_receipt_states_unit_amount_in_words_method_and_source() -> None:
    unit = on_sale()
    deposit(unit, amount=50_000_00, method="cheque", cheque_no="No.88761")
    (receipt,) = [e for e in unit.pending if e.event_type == "unit.deposit_received"]
    assert (receipt.unit_no, receipt.amount_in_words, receipt.method, receipt.cheque_no) == (
        "1201",
        "人民币伍万元整",
        "cheque",
        "No.88761",
    )
    assert receipt.source_of_funds == "own_funds" and receipt.taken_by == "sm"


@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (0, "人民币零元整"),
        (7, "人民币柒分"),
        (50, "人民币伍角"),
        (1_000_000, "人民币壹万元整"),
        (1_000_550, "人民币壹万零伍元伍角"),
        (10_007, "人民币壹佰元零柒分"),
        (100_000_000, "人民币壹佰万元整"),
        (200_003_000, "人民币贰佰万零叁拾元整"),
        (10_010_000_000, "人民币壹亿零壹拾万元整"),
        (123_456_789, "人民币壹佰贰拾叁万肆仟伍佰陆拾柒元捌角玖分"),
        (284_544_000, "人民币贰佰捌拾肆万伍仟肆佰肆拾元整"),
    ],
)
def test_amounts_in_words(fen: int, words: str) -> None:
    assert amount_in_words(fen) == words


def test_the_subscription_is_filled_by_the_rep_signed_by_the_sales_manager() -> None:
    unit = on_sale()
    deposit(unit, amount=20_000_00, agreed=50_000_00)
    fill = {
        "subscription_no": "RG-001",
        "payment_plan": "full",
        "down_payment_fen": None,
        "contract_due_on": date(2026, 3, 9),
        "remarks": None,
        "filled_by": "r1",
    }
    with pytest.raises(DomainError) as e:
        unit.fill_subscription(price_fen=None, may_discount=False, **fill)
    assert e.value.code == "deposit_not_complete"
    deposit(unit, amount=30_000_00)
    with pytest.raises(PermissionDenied) as p:
        unit.fill_subscription(price_fen=PRICE - 1, may_discount=False, **fill)
    assert p.value.code == "beyond_rep_authority"
    with pytest.raises(DomainError) as e:
        unit.sign_subscription("sm", "r1", NOW, TZ)
    assert e.value.code == "no_subscription"
    unit.fill_subscription(price_fen=None, may_discount=False, **fill)
    with pytest.raises(DomainError) as e:
        unit.fill_subscription(price_fen=None, may_discount=False, **fill)
    assert e.value.code == "subscription_pending"
    unit.return_subscription("房号填错")
    unit.fill_subscription(price_fen=PRICE - 10_000_00, may_discount=True, **{**fill, "subscription_no": "RG-002"})
    unit.sign_subscription("sm", "r1", NOW, TZ)
    assert (unit.status, unit.subscription_no, unit.subscription_price_fen) == (
        "subscribed",
        "RG-002",
        PRICE - 10_000_00,
    )


def test_recommendations_are_at_most_three_layouts_that_meet_every_need() -> None:
    def u(unit_id: str, layout: str, rooms: int, area: str, orientation: str, price: int) -> OnSale:
        return OnSale(unit_id, "1", unit_id, layout, rooms, 2, 1, Decimal(area), orientation, "边套", price)

    units = [
        u("a1", "A", 3, "118.00", "south_north", 300),
        u("a2", "A", 3, "119.00", "south", 280),
        u("b1", "B", 3, "98.00", "south", 250),
        u("c1", "C", 3, "140.00", "south", 350),
        u("d1", "D", 3, "110.00", "east", 260),
        u("e1", "E", 2, "90.00", "south", 200),
        u("f1", "F", 3, "120.00", "south", 500),
    ]
    picked = recommend_layouts(units, Needs(rooms=3, area_min=Decimal(100), area_max=Decimal(130), budget_fen=320))
    assert [x["layout_name"] for x in picked] == ["A", "D"]  # B too small, C too big, F over budget
    assert picked[0]["area_sqm"] == {"min": Decimal("118.00"), "max": Decimal("119.00")}
    assert picked[0]["total_price_fen"] == {"min": 280, "max": 300} and picked[0]["layout"] == "3室2厅1卫"
    assert picked[0]["example_unit"]["unit_id"] == "a2"
    south = recommend_layouts(units, Needs(rooms=3, orientation="south"))
    assert len(south) == 3 and "D" not in [x["layout_name"] for x in south]
    assert recommend_layouts(units, Needs(rooms=5)) == []


def test_deposit_takers_are_named_and_revoked_and_unknown_events_are_refused() -> None:
    project = Project("P1")
    project.name_deposit_taker("r9")
    assert project.may_take_deposits("r9")
    with pytest.raises(DomainError):
        project.name_deposit_taker("r9")
    project.revoke_deposit_taker("r9")
    assert not project.may_take_deposits("r9")
    with pytest.raises(UnknownEvent):
        Unit("u").apply(DepositTakerNamed(project_id="P1", staff_id="x"))
