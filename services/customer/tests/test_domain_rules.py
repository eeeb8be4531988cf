"""Pure rules: phones, card fields, the line of command, grading, the follow-up window, the
first-buyer rule of merges, and sealing with per-customer keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from customer_service.adapters.sealing import DataKey, open_sealed
from customer_service.domain import card
from customer_service.domain.access import require_in_line, sees_restricted
from customer_service.domain.commands import ClassifyCustomer, ReassignAll, RegisterCustomer
from customer_service.domain.follow_up import follow_up_overdue
from customer_service.domain.grading import grade_for
from customer_service.domain.merging import BuyingRecord, first_buyer
from customer_service.domain.values import Phone, SalesFigures
from salesplatform.errors import InvalidInput, PermissionDenied
from salesplatform.events import Actor, Role
from salesplatform.territory import Place

pytestmark = pytest.mark.fast

T0 = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "phone", ["13812345678", "19900001111", "021-58881234", "02158881234", "0571-8888888", "010-12345678-123"]
)
def test_valid_phones(phone: str) -> None:
    assert TypeAdapter(Phone).validate_python(phone) == phone


@pytest.mark.parametrize(
    "phone", ["12812345678", "1381234567", "138123456789", "58881234", "21-58881234", "+8613812345678", "abc", ""]
)
def test_invalid_phones(phone: str) -> None:
    with pytest.raises(ValidationError) as err:
        TypeAdapter(Phone).validate_python(phone)
    assert err.value.errors()[0]["type"] == "invalid_phone"


def test_command_shapes() -> None:
    with pytest.raises(ValidationError) as err:
        ClassifyCustomer.model_validate({"customer_id": "c", "reason": "x"})
    assert err.value.errors()[0]["type"] == "nothing_to_classify"
    with pytest.raises(ValidationError) as err:
        ClassifyCustomer.model_validate({"customer_id": "c", "grade": "E", "reason": "x"})
    assert err.value.errors()[0]["type"] == "invalid_grade"
    for bad, error in (
        ({"to_rep_id": "r2", "to_rep_ids": ["r3"]}, "one_target_form"),
        ({"to_rep_id": "r1"}, "reassign_to_self"),
        ({"to_rep_ids": ["r2", "r2"]}, "duplicate_targets"),
    ):
        with pytest.raises(ValidationError) as err:
            ReassignAll.model_validate({"from_rep_id": "r1", "reason": "x", **bad})
        assert err.value.errors()[0]["type"] == error
    with pytest.raises(ValidationError) as err:
        RegisterCustomer.model_validate(
            {
                "name": "x",
                "address": "y",
                "phone": "13812345678",
                "nature": "company",
                "channel": "retail",
                "location_type": "other",
                "surprise": 1,
            }
        )
    assert err.value.errors()[0]["type"] == "extra_forbidden"


def test_card_changes_are_checked_like_the_card_fields() -> None:
    out = card.validate_changes(
        {"base.founded_on": "2010-05-01", "base.owner.age": 40, "contacts": [{"name": "李", "phone": "13912345678"}]}
    )
    assert out == {
        "base.founded_on": "2010-05-01",
        "base.owner.age": 40,
        "contacts": [{"name": "李", "phone": "13912345678"}],
    }
    with pytest.raises(InvalidInput) as err:
        card.validate_changes(
            {
                "base.owner.shoe_size": 42,
                "base.owner.age": 300,
                "characteristics.staff_count": -1,
                "contacts": [{"name": "李", "phone": "1"}],
            }
        )
    details = {(d["field"], d["code"]) for d in err.value.details}
    assert details == {
        ("changes.base.owner.shoe_size", "unknown_field"),
        ("changes.base.owner.age", "less_than_equal"),
        ("changes.characteristics.staff_count", "greater_than_equal"),
        ("changes.contacts.0.phone", "invalid_phone"),
    }


def test_personal_and_restricted_fields() -> None:
    assert card.is_personal("base.owner", individual=False) and card.is_personal("contacts", individual=False)
    assert card.is_personal("base.legal_person.family", individual=False)
    assert not card.is_personal("name", individual=False) and card.is_personal("name", individual=True)
    assert not card.is_personal("base.industry", individual=True)
    assert card.is_restricted("base.manager.hobbies") and not card.is_restricted("base.manager.name")
    assert not card.is_restricted("characteristics.management_style")

    doc = card.fold(
        [
            {"base.owner": {"name": "王", "hobbies": "钓鱼", "age": 50}, "contacts": []},
            {"base.owner.hobbies": "下棋", "name": "刘"},
        ]
    )
    assert doc == {"base": {"owner": {"name": "王", "hobbies": "下棋", "age": 50}}, "contacts": [], "name": "刘"}
    assert card.without_restricted(doc)["base"]["owner"] == {"name": "王"}
    assert card.part_without_restricted(
        {"base.owner": {"name": "王", "age": 50}, "base.owner.family": "x", "contacts": []}
    ) == {"base.owner": {"name": "王"}, "contacts": []}


def refusal(actor: Actor, place: Place) -> PermissionDenied | None:
    try:
        require_in_line(actor, place)
    except PermissionDenied as exc:
        return exc
    return None


def test_the_line_of_command() -> None:
    line = Place(district_id="D1", area_id="A1", rep_id="r1")
    allowed = [
        Actor(id="r1", role=Role.rep, district="D1"),
        Actor(id="s1", role=Role.supervisor, district="D1"),
        Actor(id="am", role=Role.area_manager, area="A1"),
        Actor(id="sm", role=Role.sales_manager),
        Actor(id="gm", role=Role.general_manager),
        Actor(id="k", role=Role.clerk),
        Actor(id="sys", role=Role.system),
    ]
    assert all(refusal(a, line) is None for a in allowed)
    refused = {
        Actor(id="r2", role=Role.rep, district="D1"): "outside_line",
        Actor(id="s2", role=Role.supervisor, district="D2"): "outside_line",
        Actor(id="s0", role=Role.supervisor): "no_territory",
        Actor(id="am2", role=Role.area_manager, area="A2"): "outside_line",
        Actor(id="i", role=Role.inspector): "role_not_allowed",
    }
    for actor, code in refused.items():
        denied = refusal(actor, line)
        assert denied is not None and denied.code == code and denied.status == 403
    assert (
        refusal(Actor(id="r1", role=Role.rep), Place(district_id="D1", area_id="A1")) is not None
    )  # released: nobody's
    assert [sees_restricted(a) for a in allowed] == [False, False, False, True, True, True, False]


@pytest.mark.parametrize(
    ("sales", "orders", "grade"),
    [
        (20_000_000, None, "A"),
        (19_999_999, None, "B"),
        (5_000_000, 1, "B"),
        (4_999_999, None, "C"),
        (4_999_999, 12, "B"),
        (0, 11, "C"),
    ],
)
def test_grade_thresholds(sales: int, orders: int | None, grade: str) -> None:
    assert grade_for(SalesFigures(annual_sales_fen=sales, order_count=orders)) == grade


def test_follow_up_window_is_more_than_seven_days() -> None:
    assert not follow_up_overdue(T0, T0 + timedelta(days=7))
    assert follow_up_overdue(T0, T0 + timedelta(days=7, seconds=1))


def test_first_order_wins_a_merge_else_the_first_registered() -> None:
    a = BuyingRecord("a", T0, None, None, 10)
    b = BuyingRecord("b", T0 + timedelta(days=1), T0 + timedelta(days=3), "o-b", 20)
    assert first_buyer(a, b)[0] == "b" and "o-b" in first_buyer(a, b)[1]
    a_ordered = BuyingRecord("a", T0, T0 + timedelta(days=5), "o-a", 10)
    assert first_buyer(a_ordered, b)[0] == "b"
    assert first_buyer(BuyingRecord("x", T0, None, None, 30), BuyingRecord("y", T0, None, None, 5))[0] == "y"
    assert "first registered" in first_buyer(a, BuyingRecord("c", T0 + timedelta(1), None, None, 1))[1]


def test_sealed_parts_open_only_with_the_key_and_for_their_customer() -> None:
    key = DataKey("k1", "c1", bytes(32), new=True)
    token = key.seal({"base.owner": {"name": "王建国"}})
    assert token.startswith("v1.k1.") and "王建国" not in token
    assert open_sealed(token, {"k1": bytes(32)}, "c1") == {"base.owner": {"name": "王建国"}}
    assert open_sealed(token, {}, "c1") is None  # key shredded
    assert open_sealed(token, {"k1": bytes(32)}, "c2") is None  # copied onto another card
    assert open_sealed(token, {"k1": b"\x01" * 32}, "c1") is None
    assert open_sealed("garbage", {"k1": bytes(32)}, "c1") is None
