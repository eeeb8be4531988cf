"""Pure domain tests: payments applied to invoices and ageing, in integer fen."""

from __future__ import annotations

from datetime import date

import pytest

from orders_service.domain.receivables import (
    OpenInvoice,
    Payment,
    ageing,
    allocate,
    due_date,
    invoice_id_for,
)
from salesplatform.errors import DomainError

pytestmark = pytest.mark.fast

INVOICES = [
    OpenInvoice("inv-b", date(2026, 2, 1), date(2026, 3, 3), 7_001),
    OpenInvoice("inv-a", date(2026, 1, 10), date(2026, 2, 9), 3_333),
    OpenInvoice("inv-c", date(2026, 2, 1), date(2026, 3, 3), 10),
]


def as_pairs(allocations) -> list[tuple[str, int]]:
    return [(a.invoice_id, a.amount_fen) for a in allocations]


def test_a_payment_goes_to_the_oldest_invoice_first() -> None:
    assert as_pairs(allocate(5_000, INVOICES, None)) == [("inv-a", 3_333), ("inv-b", 1_667)]


def test_same_day_invoices_are_paid_in_a_fixed_order() -> None:
    assert as_pairs(allocate(10_344, INVOICES, None)) == [("inv-a", 3_333), ("inv-b", 7_001), ("inv-c", 10)]


def test_a_partial_payment_leaves_the_rest_open() -> None:
    allocations = allocate(1, INVOICES, None)
    assert as_pairs(allocations) == [("inv-a", 1)]
    assert all(isinstance(a.amount_fen, int) for a in allocations)


def test_paying_more_than_is_open_is_refused() -> None:
    with pytest.raises(DomainError) as err:
        allocate(10_345, INVOICES, None)
    assert err.value.code == "payment_exceeds_open_amount"
    with pytest.raises(DomainError):
        allocate(1, [], None)


def test_named_allocations_are_kept_and_checked() -> None:
    assert as_pairs(allocate(7_011, INVOICES, [("inv-b", 7_001), ("inv-c", 10)])) == [("inv-b", 7_001), ("inv-c", 10)]
    cases = [
        ([("inv-b", 7_002)], 7_002, "allocation_exceeds_open_amount"),
        ([("inv-b", 4_000), ("inv-b", 4_000)], 8_000, "allocation_exceeds_open_amount"),
        ([("inv-x", 5)], 5, "invoice_not_open"),
        ([("inv-b", 100)], 200, "allocations_do_not_add_up"),
    ]
    for requested, amount, code in cases:
        with pytest.raises(DomainError) as err:
            allocate(amount, INVOICES, requested)
        assert err.value.code == code


def test_due_date_follows_the_payment_terms() -> None:
    assert due_date(date(2026, 1, 31), 30) == date(2026, 3, 2)
    assert due_date(date(2026, 1, 31), None) == date(2026, 1, 31)


def test_invoice_ids_follow_the_order() -> None:
    assert invoice_id_for("o1") == invoice_id_for("o1") != invoice_id_for("o2")


def test_ageing_buckets_by_days_since_issue_and_overdue_past_due_date() -> None:
    as_of = date(2026, 6, 30)
    invoices = [
        OpenInvoice("a", date(2026, 6, 30), date(2026, 7, 30), 1),  # 0 days
        OpenInvoice("b", date(2026, 5, 31), date(2026, 6, 30), 10),  # 30 days, due today: not overdue
        OpenInvoice("c", date(2026, 5, 30), date(2026, 6, 29), 100),  # 31 days, overdue
        OpenInvoice("d", date(2026, 5, 1), date(2026, 5, 31), 1_000),  # 60
        OpenInvoice("e", date(2026, 4, 30), date(2026, 5, 30), 10_000),  # 61
        OpenInvoice("f", date(2026, 4, 1), date(2026, 5, 1), 100_000),  # 90
        OpenInvoice("g", date(2026, 3, 31), date(2026, 4, 30), 1_000_000),  # 91
        OpenInvoice("h", date(2026, 1, 1), date(2026, 1, 31), 0),  # paid: not counted
    ]
    a = ageing(invoices, as_of)
    assert (a.days_0_30_fen, a.days_31_60_fen, a.days_61_90_fen, a.days_over_90_fen) == (11, 1_100, 110_000, 1_000_000)
    assert a.open_fen == 1_111_111
    assert a.overdue_fen == 1_111_100
    assert all(type(v) is int for v in vars(a).values())


def test_a_payment_is_recorded_once_and_positive() -> None:
    p = Payment("p1")
    p.receive(customer_id="c1", amount_fen=5, received_on=date(2026, 3, 2), allocations=allocate(5, INVOICES, None))
    with pytest.raises(DomainError) as again:
        p.receive(customer_id="c1", amount_fen=5, received_on=date(2026, 3, 2), allocations=[])
    assert again.value.code == "payment_exists"
    with pytest.raises(DomainError):
        Payment("p2").receive(customer_id="c1", amount_fen=0, received_on=date(2026, 3, 2), allocations=[])
