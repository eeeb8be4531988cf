"""The suggested-order rule (README: usual = average over the last 3 orders, target = 1.5 ×
usual, suggested = target − on hand rounded up; required SKUs missing from the shelf get at
least the usual quantity or 1)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from visit_service.domain.events import OrderLine, StockLine, SuggestedLine
from visit_service.domain.suggestion import suggest_order, suggestion_adopted, usual_quantities

pytestmark = pytest.mark.fast


def stock(**counts: tuple[int, int]) -> list[StockLine]:
    return [StockLine(sku=s, shelf_qty=shelf, store_qty=store) for s, (shelf, store) in counts.items()]


def as_pairs(lines: list[SuggestedLine]) -> list[tuple[str, int]]:
    return [(line.sku, line.quantity) for line in lines]


def test_usual_quantity_is_the_average_over_the_last_three_orders_with_missing_skus_as_zero() -> None:
    newest_first = [{"cola": 10, "water": 6}, {"cola": 8}, {"cola": 12, "juice": 3}, {"cola": 100}]
    usual = usual_quantities(newest_first)
    assert usual == {"cola": Fraction(30, 3), "water": Fraction(6, 3), "juice": Fraction(3, 3)}  # 4th order ignored


def test_usual_quantities_of_a_customer_with_fewer_orders_average_over_those() -> None:
    assert usual_quantities([{"cola": 5}]) == {"cola": Fraction(5)}
    assert usual_quantities([]) == {}


def test_suggested_is_target_minus_shelf_and_store_never_negative() -> None:
    usual = {"cola": Fraction(10), "sprite": Fraction(4)}
    lines = suggest_order(stock(cola=(2, 3), sprite=(5, 2)), usual, [])
    # cola: 15 − 5 = 10; sprite: 6 − 7 < 0 → not suggested.
    assert as_pairs(lines) == [("cola", 10)]


def test_fractions_are_rounded_up_to_whole_units_exactly() -> None:
    # usual 7 → target 10.5 → 11 with nothing on hand; usual 1/3 → target 0.5 → 1.
    lines = suggest_order([], {"cola": Fraction(7), "juice": Fraction(1, 3)}, [])
    assert as_pairs(lines) == [("cola", 11), ("juice", 1)]


def test_a_usual_sku_that_was_not_counted_has_nothing_on_hand() -> None:
    assert as_pairs(suggest_order(stock(cola=(1, 0)), {"water": Fraction(2)}, [])) == [("water", 3)]


def test_a_required_sku_missing_from_the_shelf_gets_at_least_the_usual_quantity_or_one() -> None:
    usual = {"cola": Fraction(8)}
    # cola: 12 − 10 = 2 by the stock rule, but it is missing from the shelf: at least 8.
    # water: required, never bought, not counted: 1.  juice: required and on the shelf: nothing.
    lines = suggest_order(stock(cola=(0, 10), juice=(2, 0)), usual, ["cola", "water", "juice"])
    assert as_pairs(lines) == [("cola", 8), ("water", 1)]


def test_a_required_sku_on_the_shelf_follows_the_plain_rule() -> None:
    lines = suggest_order(stock(cola=(1, 0)), {"cola": Fraction(4)}, ["cola"])
    assert as_pairs(lines) == [("cola", 5)]


def test_adopted_when_every_suggested_line_is_ordered_in_at_least_its_quantity() -> None:
    suggested = [SuggestedLine(sku="cola", quantity=4), SuggestedLine(sku="water", quantity=1)]
    assert suggestion_adopted(
        suggested,
        [OrderLine(sku="cola", quantity=4), OrderLine(sku="water", quantity=2), OrderLine(sku="juice", quantity=1)],
    )
    assert not suggestion_adopted(suggested, [OrderLine(sku="cola", quantity=4)])
    assert not suggestion_adopted(suggested, [OrderLine(sku="cola", quantity=3), OrderLine(sku="water", quantity=1)])
    assert not suggestion_adopted([], [OrderLine(sku="cola", quantity=1)])
