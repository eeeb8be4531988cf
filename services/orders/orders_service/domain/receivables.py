"""Receivables (应收账款): an invoice per delivered order, payments applied to invoices, ageing,
collection follow-up (拖欠款催收). Integer fen throughout."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from orders_service.domain.events import (
    Allocation,
    CollectionNoteRecorded,
    InvoiceIssued,
    PaymentReceived,
)
from salesplatform.aggregate import Aggregate
from salesplatform.dues import is_overdue
from salesplatform.errors import DomainError
from salesplatform.events import Event
from salesplatform.ids import uuid5

# Ids derived from the order, so the invoice of an order (and the payment its deposit turns into)
# is the same whether the delivery arrives live, by import, or again after a retry.
_INVOICE_NS = uuid.UUID("6a0f6f52-3d55-4b7e-9a51-5f3e1d4c2b10")
_DEPOSIT_NS = uuid.UUID("0b7f0f0e-2b7c-4f0e-8d5a-1c9e7a3b6d21")


def invoice_id_for(order_id: str) -> str:
    return str(uuid5(_INVOICE_NS, order_id))


def deposit_payment_id_for(order_id: str) -> str:
    return str(uuid5(_DEPOSIT_NS, order_id))


def due_date(issued_on: date, payment_terms_days: int | None) -> date:
    """No agreed terms: payable on delivery."""
    return issued_on + timedelta(days=payment_terms_days or 0)


class Invoice(Aggregate):
    stream_prefix = "invoice"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.order_id = ""
        self.customer_id = ""
        self.amount_fen = 0

    def apply(self, event: Event) -> None:
        if isinstance(event, InvoiceIssued):
            self.order_id, self.customer_id, self.amount_fen = event.order_id, event.customer_id, event.amount_fen

    def issue(self, *, order_id: str, customer_id: str, amount_fen: int, issued_on: date, due_on: date) -> None:
        if self.exists:
            raise DomainError(f"invoice {self.id} is already issued", code="invoice_exists")
        self.record(
            InvoiceIssued(
                invoice_id=self.id,
                order_id=order_id,
                customer_id=customer_id,
                amount_fen=amount_fen,
                issued_on=issued_on,
                due_on=due_on,
            )
        )


@dataclass(frozen=True)
class OpenInvoice:
    invoice_id: str
    issued_on: date
    due_on: date
    open_fen: int


def allocate(
    amount_fen: int,
    open_invoices: Sequence[OpenInvoice],
    requested: Sequence[tuple[str, int]] | None,
) -> list[Allocation]:
    """Apply a payment: to the invoices asked for, or oldest first. Never past what is open."""
    total_open = sum(i.open_fen for i in open_invoices)
    if amount_fen > total_open:
        raise DomainError(
            f"the payment of {amount_fen} fen is more than the {total_open} fen open",
            code="payment_exceeds_open_amount",
            field="amount_fen",
        )
    if requested:
        by_id = {i.invoice_id: i for i in open_invoices}
        wanted: dict[str, int] = {}
        for n, (invoice_id, amount) in enumerate(requested):
            if invoice_id not in by_id:
                raise DomainError(
                    f"invoice {invoice_id} is not an open invoice of this customer",
                    code="invoice_not_open",
                    field=f"allocations.{n}.invoice_id",
                )
            wanted[invoice_id] = wanted.get(invoice_id, 0) + amount
            if wanted[invoice_id] > by_id[invoice_id].open_fen:
                raise DomainError(
                    f"invoice {invoice_id} has {by_id[invoice_id].open_fen} fen open",
                    code="allocation_exceeds_open_amount",
                    field=f"allocations.{n}.amount_fen",
                )
        if sum(wanted.values()) != amount_fen:
            raise DomainError(
                "the allocations must add up to the payment",
                code="allocations_do_not_add_up",
                field="allocations",
            )
        return [Allocation(invoice_id=i, amount_fen=a) for i, a in wanted.items()]
    out = []
    left = amount_fen
    for invoice in sorted(open_invoices, key=lambda i: (i.issued_on, i.invoice_id)):
        if left == 0:
            break
        take = min(left, invoice.open_fen)
        if take > 0:
            out.append(Allocation(invoice_id=invoice.invoice_id, amount_fen=take))
            left -= take
    return out


class Payment(Aggregate):
    stream_prefix = "payment"

    def apply(self, event: Event) -> None:
        pass

    def receive(
        self,
        *,
        customer_id: str,
        amount_fen: int,
        received_on: date,
        allocations: Sequence[Allocation],
    ) -> None:
        if self.exists:
            raise DomainError(f"payment {self.id} is already recorded", code="payment_exists")
        if amount_fen <= 0:
            raise DomainError("a payment must be positive", code="amount_not_positive", field="amount_fen")
        self.record(
            PaymentReceived(
                payment_id=self.id,
                customer_id=customer_id,
                amount_fen=amount_fen,
                received_on=received_on,
                allocations=tuple(allocations),
            )
        )


class CollectionFile(Aggregate):
    """The collection follow-up notes on one customer's debt (stream `collection-<customer_id>`)."""

    stream_prefix = "collection"

    def apply(self, event: Event) -> None:
        pass

    def note(
        self,
        *,
        note_id: str,
        invoice_id: str | None,
        note: str,
        promised_on: date | None,
        next_follow_up_on: date | None,
    ) -> None:
        self.record(
            CollectionNoteRecorded(
                note_id=note_id,
                customer_id=self.id,
                invoice_id=invoice_id,
                note=note,
                promised_on=promised_on,
                next_follow_up_on=next_follow_up_on,
            )
        )


@dataclass(frozen=True)
class Ageing:
    """Open amounts by days since the invoice was issued, and how much is overdue
    (`salesplatform.dues`: from the day after the due date)."""

    open_fen: int = 0
    overdue_fen: int = 0
    days_0_30_fen: int = 0
    days_31_60_fen: int = 0
    days_61_90_fen: int = 0
    days_over_90_fen: int = 0


def ageing(open_invoices: Sequence[OpenInvoice], as_of: date) -> Ageing:
    buckets = [0, 0, 0, 0]
    overdue = 0
    for invoice in open_invoices:
        if invoice.open_fen <= 0:
            continue
        age = (as_of - invoice.issued_on).days
        index = 0 if age <= 30 else 1 if age <= 60 else 2 if age <= 90 else 3
        buckets[index] += invoice.open_fen
        if is_overdue(invoice.due_on, as_of):
            overdue += invoice.open_fen
    return Ageing(sum(buckets), overdue, *buckets)
