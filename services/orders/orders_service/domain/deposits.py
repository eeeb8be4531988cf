"""Deposits (定金), wherever they are taken (an order, a unit of a sales office): the first
payment fixes the agreed amount; while the total is below it, the deposit is due within 24 hours
of the first payment (the hours are a setting, `ORDERS_DEPOSIT_HOURS`), and later instalments
do not restart them. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from salesplatform.errors import DomainError


@dataclass(frozen=True)
class DepositStep:
    """Where the deposit stands after a payment."""

    agreed_fen: int
    total_fen: int
    due_by: datetime | None  # while partial: when it must be complete

    @property
    def complete(self) -> bool:
        return self.total_fen == self.agreed_fen


def next_deposit(
    *,
    agreed_so_far: int,
    total_so_far: int,
    due_by_so_far: datetime | None,
    amount_fen: int,
    agreed_fen: int | None,
    ceiling_fen: int,
    ceiling: str,
    ceiling_code: str,
    now: datetime,
    hours: int,
) -> DepositStep:
    """A payment of `amount_fen` on a deposit. `agreed_so_far` is 0 before the first payment;
    `agreed_fen` the amount agreed, if the payer names one (default: the ceiling); `ceiling_fen`
    what a deposit may not exceed, `ceiling` what it is ("order amount", "unit's price") and
    `ceiling_code` the refusal's code."""
    if agreed_so_far:
        if agreed_fen is not None and agreed_fen != agreed_so_far:
            raise DomainError("the agreed deposit is already fixed", code="deposit_agreed_fixed", field="agreed_fen")
        agreed = agreed_so_far
    else:
        agreed = agreed_fen if agreed_fen is not None else ceiling_fen
    if agreed > ceiling_fen:
        raise DomainError(f"a deposit cannot exceed the {ceiling}", code=ceiling_code, field="agreed_fen")
    total = total_so_far + amount_fen
    if total > agreed:
        raise DomainError(
            f"{amount_fen} fen would bring the deposit to {total}, above the agreed {agreed}",
            code="deposit_exceeds_agreed",
            field="amount_fen",
        )
    # The 24 hours run from the first partial payment; later instalments do not restart them.
    due_by = None
    if total < agreed:
        due_by = due_by_so_far or now + timedelta(hours=hours)
    return DepositStep(agreed, total, due_by)


def deposit_overdue(due_by: datetime | None, now: datetime) -> bool:
    """A partial deposit not completed by its time."""
    return due_by is not None and now > due_by
