"""What the orders queries answer, as the OpenAPI document describes it: ids are strings,
money integer fen, days and times ISO 8601, a field that may be empty is `null`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from orders_service.domain.unit_commands import Discrepancy
from salesplatform.events import Actor


class Order(BaseModel):
    """An order as the order board holds it."""

    order_id: str
    customer_id: str
    rep_id: str | None
    district_id: str | None
    area_id: str | None
    source: str
    visit_id: str | None
    status: str
    amount_fen: int
    business_date: date
    placed_at: datetime
    placed_by: str
    approval_reasons: list[str]
    required_role: str | None = Field(description="the role whose approval it waits for")
    approved_by: str | None
    reject_reason: str | None
    cancel_reason: str | None
    confirmed_at: datetime | None
    deliver_by: datetime | None
    dispatched_at: datetime | None
    delivered_at: datetime | None
    on_time: bool | None
    delivery_overdue: bool
    delivery_confirmed: bool | None
    deposit_agreed_fen: int
    deposit_total_fen: int
    deposit_due_by: datetime | None
    deposit_overdue: bool
    promotion_notes: list[dict[str, Any]]
    updated_at: datetime


class OrderList(BaseModel):
    total: int = Field(description="orders matching, past this page")
    limit: int
    offset: int
    orders: list[Order]


class ApprovalQueue(BaseModel):
    role: str = Field(description="whose queue this is")
    orders: list[Order]


class OverdueDeliveries(BaseModel):
    as_of: datetime
    orders: list[Order]


class AgeingAnswer(BaseModel):
    """Open amounts by days since the invoice was issued, and how much is overdue."""

    open_fen: int
    overdue_fen: int
    days_0_30_fen: int
    days_31_60_fen: int
    days_61_90_fen: int
    days_over_90_fen: int


class CustomerReceivable(AgeingAnswer):
    customer_id: str
    name: str | None = Field(description="null where the directory does not know the customer")
    rep_id: str | None
    open_invoices: int


class Receivables(BaseModel):
    as_of: date
    customers: list[CustomerReceivable]
    totals: AgeingAnswer


class OrderLine(BaseModel):
    order_id: str
    line_no: int
    sku: str
    product_group: str
    quantity: int
    unit_price_fen: int
    amount_fen: int
    promotion_id: str | None
    gift_quantity: int


class Invoice(BaseModel):
    invoice_id: str
    order_id: str
    customer_id: str
    amount_fen: int
    paid_fen: int
    credited_fen: int = Field(description="lowered by credit notes resolving returns")
    open_fen: int
    issued_on: date
    due_on: date


class ReturnOfOrder(BaseModel):
    return_id: str
    status: str
    reason: str
    scope: str
    amount_fen: int


class ActorRef(BaseModel):
    id: str
    role: str


class Change(BaseModel):
    """One event of a stream's history."""

    event_type: str
    stream_version: int
    occurred_at: datetime
    actor: Actor
    data: dict[str, Any]


class OrderDetail(BaseModel):
    order: Order
    lines: list[OrderLine]
    invoice: Invoice | None
    returns: list[ReturnOfOrder]
    history: list[Change]


class Allocation(BaseModel):
    invoice_id: str
    amount_fen: int


class Payment(BaseModel):
    payment_id: str
    customer_id: str
    amount_fen: int
    received_on: date
    recorded_by: str
    allocations: list[Allocation]


class CollectionNote(BaseModel):
    note_id: str
    customer_id: str
    invoice_id: str | None
    note: str
    promised_on: date | None
    next_follow_up_on: date | None
    noted_by: str
    noted_at: datetime


class CustomerReceivables(BaseModel):
    customer_id: str
    as_of: date
    ageing: AgeingAnswer
    invoices: list[Invoice]
    payments: list[Payment]
    collection_notes: list[CollectionNote]


class Return(BaseModel):
    return_id: str
    order_id: str
    customer_id: str
    scope: str
    reason: str
    detail: str
    status: str
    amount_fen: int
    approver_role: str
    inspection_required: bool
    requested_by: str
    requested_at: datetime
    inspector_id: str | None
    inspection_confirmed: bool | None
    inspection_notes: str | None
    approver_id: str | None
    rejected_reason: str | None
    resolution: str | None
    resolution_amount_fen: int | None
    updated_at: datetime


class ReturnCount(BaseModel):
    status: str
    reason: str
    n: int = Field(description="returns of this status and reason")
    amount_fen: int


class ReturnList(BaseModel):
    counts: list[ReturnCount] = Field(description="per status and reason, over the whole territory")
    returns: list[Return]


class ReturnLine(BaseModel):
    sku: str
    quantity: int
    amount_fen: int


class CorrectiveAction(BaseModel):
    department: str
    action: str
    assigned_at: datetime


class ReturnDetail(BaseModel):
    return_: Return = Field(alias="return")
    lines: list[ReturnLine]
    corrective_actions: list[CorrectiveAction]
    history: list[Change]


class QueuedReturn(Return):
    """A return waiting for a decision, with its order's territory and its lines."""

    rep_id: str | None
    district_id: str | None
    area_id: str | None
    lines: list[ReturnLine]


class ReturnApprovalQueue(BaseModel):
    role: str
    returns: list[QueuedReturn]


class AreaPrice(BaseModel):
    area_id: str
    list_price_fen: int
    floor_price_fen: int


class CatalogueSku(BaseModel):
    sku: str
    name: str
    brand: str
    product_group: str
    package: str
    list_price_fen: int = Field(description="the default price")
    floor_price_fen: int
    updated_at: datetime
    area_prices: list[AreaPrice]


class CatalogueSkus(BaseModel):
    skus: list[CatalogueSku]


class RequiredSkus(BaseModel):
    channels: dict[str, list[str]] = Field(description="the required SKUs of each channel")


class Promotion(BaseModel):
    promotion_id: str
    name: str
    starts_on: date
    ends_on: date
    skus: list[str]
    channels: list[str]
    discount_percent: int | None
    gift_buy: int | None = Field(description="buy this many …")
    gift_get: int | None = Field(description="… get this many free")
    budget_fen: int
    spent_fen: int
    orders: int = Field(description="orders that drew on the budget")
    gifts_issued: int


class Promotions(BaseModel):
    promotions: list[Promotion]


class ParkedOrder(BaseModel):
    order_id: str
    customer_id: str
    parked_at: datetime
    reason: str
    outcome: str | None
    settled_at: datetime | None


class RefusedVisitMessage(BaseModel):
    event_id: UUID
    event_type: str
    order_id: str | None
    customer_id: str | None
    code: str = Field(description="the rule it broke")
    detail: dict[str, Any]
    at: datetime


class VisitOrderProblems(BaseModel):
    parked: list[ParkedOrder] = Field(description="visit orders waiting for an unknown customer")
    refused: list[RefusedVisitMessage]


class Unit(BaseModel):
    """A unit of the inventory (销控表) and the deal on it."""

    unit_id: str
    project_id: str
    building: str
    unit_no: str
    floor: int
    layout_name: str
    rooms: int
    halls: int
    bathrooms: int
    layout: str = Field(description="室厅卫, from rooms, halls and bathrooms")
    area_sqm: float
    orientation: str
    position: str | None
    status: str
    release: str | None
    unit_price_fen: int | None
    total_price_fen: int | None
    lead_id: str | None
    credited_rep_id: str | None
    deal_price_fen: int | None
    deposit_agreed_fen: int
    deposit_total_fen: int
    deposit_due_by: datetime | None
    deposit_overdue: bool
    subscription_no: str | None
    subscription_state: str | None = Field(description="`filled` or `signed`; null without one")
    subscription_price_fen: int | None
    payment_plan: str | None
    contract_no: str | None
    status_since: datetime


class UnitInventory(BaseModel):
    project_id: str
    counts: dict[str, int] = Field(description="units per status over the project, building or layout asked")
    total: int
    limit: int
    offset: int
    items: list[Unit]


class UnitChange(BaseModel):
    event_type: str
    at: datetime
    by: ActorRef
    data: dict[str, Any]


class UnitDetail(Unit):
    receipts: list[dict[str, Any]]
    history: list[UnitChange]


class ListedPrice(BaseModel):
    unit_id: str
    building: str
    unit_no: str
    layout_name: str
    area_sqm: float
    unit_price_fen: int
    total_price_fen: int
    set_at: datetime
    set_by: str
    reason: str | None


class Release(BaseModel):
    release: str
    prices: list[ListedPrice]


class PriceLists(BaseModel):
    project_id: str
    releases: list[Release]


class ControlledUnit(BaseModel):
    unit_id: str
    building: str
    unit_no: str
    layout_name: str
    status: str
    lead_id: str | None
    credited_rep_id: str | None
    deposit_total_fen: int
    deposit_agreed_fen: int
    deposit_due_by: datetime | None
    deposit_overdue: bool
    subscription_state: str | None


class UnitChangeOfDay(BaseModel):
    at: datetime
    unit_id: str
    building: str
    unit_no: str
    event_type: str
    status_before: str | None
    status_after: str | None
    lead_id: str | None
    rep_id: str | None
    amount_fen: int | None
    by: str


class SalesControlCheck(BaseModel):
    checked_by: str
    role: str
    at: datetime
    units: int = Field(description="units checked")
    discrepancies: list[Discrepancy]


class SalesControl(BaseModel):
    """The day's sales-control check (当日销控核实)."""

    project_id: str
    name: str
    business_date: date
    counts: dict[str, int]
    units: list[ControlledUnit]
    changes: list[UnitChangeOfDay]
    checks: list[SalesControlCheck]


class Range(BaseModel):
    min: float
    max: float


class ExampleUnit(BaseModel):
    unit_id: str
    building: str
    unit_no: str
    area_sqm: float
    orientation: str
    total_price_fen: int


class RecommendedLayout(BaseModel):
    layout_name: str
    rooms: int
    halls: int
    bathrooms: int
    layout: str
    area_sqm: Range
    orientations: list[str]
    positions: list[str]
    total_price_fen: Range
    available_units: int
    example_unit: ExampleUnit = Field(description="the cheapest fitting unit")


class Needs(BaseModel):
    """The needs given; those not given are left out."""

    rooms: int | None = None
    area_min: float | None = None
    area_max: float | None = None
    budget_fen: int | None = None
    orientation: str | None = None


class Recommendations(BaseModel):
    project_id: str
    needs: Needs
    layouts: list[RecommendedLayout]


class DepositDue(BaseModel):
    unit_id: str
    building: str
    unit_no: str
    lead_id: str | None
    credited_rep_id: str | None
    deposit_agreed_fen: int
    deposit_total_fen: int
    missing_fen: int
    deposit_due_by: datetime
    deposit_overdue: bool


class DepositsDue(BaseModel):
    project_id: str
    items: list[DepositDue]
