"""The events of sales control (销控): a project's units, their prices, deposits, subscriptions
(认购书), contracts and handover. Flat records; the contract is in README.md.

Buyers appear by their lead id only (the customer service's sales office keeps who they are):
no personal data in these events.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from salesplatform.events import Event

Orientation = Literal[
    "south", "north", "east", "west", "southeast", "southwest", "northeast", "northwest", "south_north", "east_west"
]
UnitStatus = Literal["unreleased", "available", "reserved", "subscribed", "contracted", "mortgage", "handed_over"]
PaymentMethod = Literal["cash", "card", "transfer", "cheque"]
FundsSource = Literal["own_funds", "family_funds", "loan", "company_funds", "other"]
PaymentPlan = Literal["full", "mortgage", "instalments"]
DepositHandling = Literal["refunded", "forfeited"]


class UnitDefined(Event):
    """A unit of a project: building, number, layout (户型), area and where it lies."""

    event_type = "unit.defined"
    unit_id: str
    project_id: str
    building: str
    unit_no: str
    floor: int
    layout_name: str
    rooms: int
    halls: int
    bathrooms: int
    area_sqm: Decimal = Field(decimal_places=2)
    orientation: Orientation
    position: str | None = None


class UnitPriced(Event):
    """The unit's price in a release's price list (价目表): per square metre and in total. Set
    only by the sales manager; a deal already made keeps its price."""

    event_type = "unit.priced"
    unit_id: str
    project_id: str
    release: str
    unit_price_fen: int
    total_price_fen: int
    reason: str | None = None


class UnitReserved(Event):
    """The first deposit reserved the unit for a lead (the first deposit wins)."""

    event_type = "unit.reserved"
    unit_id: str
    project_id: str
    lead_id: str
    credited_rep_id: str
    price_fen: int  # the list price the deal starts from
    reserved_at: datetime
    business_date: date


class UnitDepositReceived(Event):
    """A deposit payment and its receipt (收据): unit, amount in figures and words, method,
    source of funds, a cheque's number. `due_by` while the deposit is partial."""

    event_type = "unit.deposit_received"
    unit_id: str
    project_id: str
    lead_id: str
    receipt_no: str
    unit_no: str
    amount_fen: int
    amount_in_words: str
    total_fen: int
    agreed_fen: int
    method: PaymentMethod
    cheque_no: str | None = None
    source_of_funds: FundsSource
    funds_detail: str | None = None
    taken_by: str
    received_on: date
    due_by: datetime | None = None


class UnitDepositCompleted(Event):
    event_type = "unit.deposit_completed"
    unit_id: str
    project_id: str
    lead_id: str
    total_fen: int


class UnitDepositOverdue(Event):
    """A partial deposit not completed within its 24 hours."""

    event_type = "unit.deposit_overdue"
    unit_id: str
    project_id: str
    lead_id: str
    due_by: datetime
    missing_fen: int


class SubscriptionFilled(Event):
    """The rep filled in the subscription (认购书); it is not valid until the sales manager signs."""

    event_type = "unit.subscription_filled"
    unit_id: str
    project_id: str
    lead_id: str
    subscription_no: str
    price_fen: int
    payment_plan: PaymentPlan
    down_payment_fen: int | None = None
    contract_due_on: date
    remarks: str | None = None
    filled_by: str


class SubscriptionReturned(Event):
    """The sales manager sent an unsigned subscription back, with the reason; it is void."""

    event_type = "unit.subscription_returned"
    unit_id: str
    project_id: str
    subscription_no: str
    reason: str


class UnitSubscribed(Event):
    """The sales manager signed the subscription: the unit is subscribed (认购), and the signed
    subscription is in the sales manager's keeping."""

    event_type = "unit.subscribed"
    unit_id: str
    project_id: str
    lead_id: str
    subscription_no: str
    price_fen: int
    payment_plan: PaymentPlan
    credited_rep_id: str
    signed_by: str
    kept_by: str
    business_date: date


class UnitContracted(Event):
    """The purchase contract (签约) signed."""

    event_type = "unit.contracted"
    unit_id: str
    project_id: str
    lead_id: str
    contract_no: str
    price_fen: int
    payment_plan: PaymentPlan
    credited_rep_id: str
    business_date: date


class UnitMortgageStarted(Event):
    """The buyer's mortgage (按揭) is being arranged with a bank."""

    event_type = "unit.mortgage_started"
    unit_id: str
    project_id: str
    lead_id: str
    bank: str
    loan_fen: int
    business_date: date


class UnitHandedOver(Event):
    """The unit was handed over (交房) to the buyer."""

    event_type = "unit.handed_over"
    unit_id: str
    project_id: str
    lead_id: str
    business_date: date


class ReservationReleased(Event):
    """A reservation (or an unsigned or signed subscription) given up, with the reason: the unit
    is available again; the deposit was refunded or forfeited."""

    event_type = "unit.reservation_released"
    unit_id: str
    project_id: str
    lead_id: str
    previous_status: UnitStatus
    deposit_fen: int
    deposit: DepositHandling
    reason: str
    business_date: date


class DepositTakerNamed(Event):
    """Someone the sales manager names may take deposits at the office (定金由销售经理指定人员收取)."""

    event_type = "project.deposit_taker_named"
    project_id: str
    staff_id: str


class DepositTakerRevoked(Event):
    event_type = "project.deposit_taker_revoked"
    project_id: str
    staff_id: str


class SalesControlChecked(Event):
    """Someone checked the day's sales control (当日销控核实) against what they know, with the
    discrepancies found (none: it reconciles)."""

    event_type = "sales_control.checked"
    project_id: str
    business_date: date
    checked_by: str
    role: str
    units: int
    discrepancies: list[dict[str, str]] = Field(default_factory=list)


UNIT_EVENTS: tuple[type[Event], ...] = (
    UnitDefined,
    UnitPriced,
    UnitReserved,
    UnitDepositReceived,
    UnitDepositCompleted,
    UnitDepositOverdue,
    SubscriptionFilled,
    SubscriptionReturned,
    UnitSubscribed,
    UnitContracted,
    UnitMortgageStarted,
    UnitHandedOver,
    ReservationReleased,
    DepositTakerNamed,
    DepositTakerRevoked,
    SalesControlChecked,
)
