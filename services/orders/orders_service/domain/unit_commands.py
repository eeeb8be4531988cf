"""The commands of sales control (销控). Shape rules live here so bad input is refused with
field details; the rules of `units.py` decide the rest."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from orders_service.domain.commands import Fen, Id, Name, PositiveFen, Text, _Part, _unique
from orders_service.domain.unit_events import (
    DepositHandling,
    FundsSource,
    Orientation,
    PaymentMethod,
    PaymentPlan,
)
from salesplatform.command import Command

Short = Annotated[str, Field(min_length=1, max_length=40)]
Area = Annotated[Decimal, Field(gt=0, le=100_000, max_digits=8, decimal_places=2)]


class UnitSpec(_Part):
    """A unit (房号): building, number, floor, layout (户型: rooms, halls, bathrooms), area in
    square metres (two decimals), orientation (朝向) and position (所在位置, e.g. 楼王, 边套)."""

    unit_id: Id
    building: Short
    unit_no: Short
    floor: Annotated[int, Field(ge=-10, le=300)]
    layout_name: Short
    rooms: Annotated[int, Field(ge=0, le=20)]
    halls: Annotated[int, Field(ge=0, le=10)]
    bathrooms: Annotated[int, Field(ge=0, le=10)]
    area_sqm: Area
    orientation: Orientation
    position: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class DefineUnits(Command):
    """Define units of a sales office's project (up to 1,000 at a time); unreleased until priced."""

    name = "define_units"
    project_id: Id
    units: Annotated[list[UnitSpec], Field(min_length=1, max_length=1000)]

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        _unique([u.unit_id for u in self.units], "unit_id")
        return self


class UnitPrice(_Part):
    unit_id: Id
    unit_price_fen: PositiveFen  # per square metre
    total_price_fen: PositiveFen


class IssuePriceList(Command):
    """Issue (or change) a release's price list (价目表): the sales manager only."""

    name = "issue_price_list"
    project_id: Id
    release: Annotated[str, Field(min_length=1, max_length=60)]
    prices: Annotated[list[UnitPrice], Field(min_length=1, max_length=2000)]
    reason: Text | None = None

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        _unique([p.unit_id for p in self.prices], "unit_id")
        return self


class NameDepositTaker(Command):
    """The sales manager names someone who may take deposits at the office."""

    name = "name_deposit_taker"
    project_id: Id
    staff_id: Id


class RevokeDepositTaker(Command):
    name = "revoke_deposit_taker"
    project_id: Id
    staff_id: Id


class TakeDeposit(Command):
    """Take a deposit (定金) on a unit for a lead: the first reserves it (the first deposit wins),
    later ones complete it; a partial deposit is completed within 24 hours. The receipt states
    the unit, the amount (in words too), the method, the source of funds, a cheque's number."""

    name = "take_deposit"
    unit_id: Id
    lead_id: Id
    amount_fen: PositiveFen
    agreed_fen: PositiveFen | None = None
    method: PaymentMethod
    cheque_no: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    source_of_funds: FundsSource
    funds_detail: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _cheque(self) -> Self:
        if self.method == "cheque" and self.cheque_no is None:
            raise PydanticCustomError("cheque_number_required", "a cheque's number is written on the receipt")
        if self.method != "cheque" and self.cheque_no is not None:
            raise PydanticCustomError("cheque_number_without_cheque", "only a cheque has a number")
        return self


class ReleaseReservation(Command):
    """Give up a reservation or subscription with a reason (退定): the unit is available again."""

    name = "release_reservation"
    personal_fields = frozenset({"reason"})
    unit_id: Id
    reason: Text
    deposit: DepositHandling


class FlagUnitDepositOverdue(Command):
    """Timer: flag a partial deposit past its 24 hours."""

    name = "flag_unit_deposit_overdue"
    unit_id: Id


class FillSubscription(Command):
    """The rep fills in the subscription (认购书); valid once the sales manager signs it."""

    name = "fill_subscription"
    unit_id: Id
    subscription_no: Short
    price_fen: PositiveFen | None = None  # default: the list price the deal started from
    payment_plan: PaymentPlan
    down_payment_fen: Fen | None = None
    contract_due_on: date
    remarks: Annotated[str, Field(min_length=1, max_length=500)] | None = None


class ReturnSubscription(Command):
    """The sales manager sends an unsigned subscription back (wrongly filled), with the reason."""

    name = "return_subscription"
    personal_fields = frozenset({"reason"})
    unit_id: Id
    reason: Text


class SignSubscription(Command):
    """The sales manager signs the subscription and keeps it: the unit is subscribed."""

    name = "sign_subscription"
    unit_id: Id


class SignContract(Command):
    """The purchase contract (签约) on a subscribed unit."""

    name = "sign_contract"
    unit_id: Id
    contract_no: Short
    payment_plan: PaymentPlan | None = None  # default: the subscription's


class StartMortgage(Command):
    """The buyer's mortgage (按揭) is being arranged."""

    name = "start_mortgage"
    unit_id: Id
    bank: Name
    loan_fen: PositiveFen


class HandOver(Command):
    """The unit is handed over (交房)."""

    name = "hand_over"
    unit_id: Id


class Discrepancy(_Part):
    unit_id: Id
    note: Annotated[str, Field(min_length=1, max_length=500)]


class CheckSalesControl(Command):
    """Record the day's sales-control check (当日销控核实): what did not reconcile, if anything."""

    name = "check_sales_control"
    project_id: Id
    discrepancies: Annotated[list[Discrepancy], Field(max_length=500, default_factory=list)]
