"""The events the orders service publishes (orders.event.<type>): the contract others build on.

Flat payloads of primitives. Money is integer fen, quantities integer units, business dates are
dates in the company's time zone. The first groups follow the cross-service contract exactly;
the events marked "own" are additional facts of this service that no other service needs in
order to work (consumers may ignore them).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from orders_service.domain.unit_events import UNIT_EVENTS
from salesplatform.events import Event, EventRegistry

Source = Literal["visit", "phone", "system", "import"]
Scope = Literal["whole_batch", "part"]
ReturnReason = Literal["quality_defect", "wrong_shipment", "selection_error", "transit_damage"]
Resolution = Literal["exchange", "refund", "credit_note", "compensation"]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- catalogue ----------------------------------------------------------------------------------


class SkuDefined(Event):
    event_type = "sku.defined"
    sku: str
    name: str
    brand: str
    product_group: str
    package: str
    list_price_fen: int
    floor_price_fen: int


class SkuPriceSet(Event):
    """A list and floor price, for one area (片区) or, with area_id null, the default."""

    event_type = "sku.price_set"
    sku: str
    area_id: str | None
    list_price_fen: int
    floor_price_fen: int


class RequiredSkusSet(Event):
    """The required-SKU list (必备SKU) of a channel; replaces the previous list."""

    event_type = "required_skus.set"
    channel: str
    skus: tuple[str, ...]


# -- orders -------------------------------------------------------------------------------------


class OrderLine(_Part):
    sku: str
    product_group: str
    quantity: int
    unit_price_fen: int  # what the customer pays per unit, after any promotion discount
    amount_fen: int
    promotion_id: str | None = None
    gift_quantity: int = 0  # free units added by a gift promotion (赠品)


class OrderPlaced(Event):
    event_type = "order.placed"
    order_id: str
    customer_id: str
    rep_id: str | None
    district_id: str | None
    area_id: str | None
    source: Source
    visit_id: str | None
    lines: tuple[OrderLine, ...]
    amount_fen: int
    business_date: date
    placed_at: datetime


class OrderApprovalRequired(Event):
    event_type = "order.approval_required"
    order_id: str
    reasons: tuple[str, ...]
    required_role: str


class OrderApproved(Event):
    event_type = "order.approved"
    order_id: str
    approver_id: str
    reason: str | None = None


class OrderRejected(Event):
    event_type = "order.rejected"
    order_id: str
    reason: str


class OrderConfirmed(Event):
    event_type = "order.confirmed"
    order_id: str
    confirmed_at: datetime
    deliver_by: datetime


class OrderDispatched(Event):
    event_type = "order.dispatched"
    order_id: str


class OrderDelivered(Event):
    event_type = "order.delivered"
    order_id: str
    customer_id: str
    delivered_at: datetime
    on_time: bool


class OrderDeliveryOverdue(Event):
    event_type = "order.delivery_overdue"
    order_id: str
    customer_id: str
    deliver_by: datetime


class OrderDeliveryConfirmed(Event):
    """The rep's confirmation on the next visit (上次订货是否送到)."""

    event_type = "order.delivery_confirmed"
    order_id: str
    delivered: bool


class OrderCancelled(Event):
    event_type = "order.cancelled"
    order_id: str
    reason: str


class OrderPromotionDeclined(Event):
    """Own: a promotion in scope was not applied to the order, and why."""

    event_type = "order.promotion_declined"
    order_id: str
    promotion_id: str
    reason: str


class OrderDepositRecorded(Event):
    """Own: a deposit (定金) paid on an order; due_by is set while it is still partial."""

    event_type = "order.deposit_recorded"
    order_id: str
    customer_id: str
    amount_fen: int
    total_fen: int
    agreed_fen: int
    received_on: date
    due_by: datetime | None


class OrderDepositCompleted(Event):
    """Own: the deposits on an order reached the agreed amount."""

    event_type = "order.deposit_completed"
    order_id: str
    customer_id: str
    total_fen: int


class OrderDepositOverdue(Event):
    """Own: a partial deposit was not completed in time."""

    event_type = "order.deposit_overdue"
    order_id: str
    customer_id: str
    due_by: datetime
    missing_fen: int


# -- receivables --------------------------------------------------------------------------------


class InvoiceIssued(Event):
    event_type = "invoice.issued"
    invoice_id: str
    order_id: str
    customer_id: str
    amount_fen: int
    issued_on: date
    due_on: date


class Allocation(_Part):
    invoice_id: str
    amount_fen: int


class PaymentReceived(Event):
    event_type = "payment.received"
    payment_id: str
    customer_id: str
    amount_fen: int
    received_on: date
    allocations: tuple[Allocation, ...]


class CollectionNoteRecorded(Event):
    """Own: a collection follow-up (拖欠款催收) on a customer's debt."""

    event_type = "collection.note_recorded"
    note_id: str
    customer_id: str
    invoice_id: str | None
    note: str
    promised_on: date | None
    next_follow_up_on: date | None


# -- returns (退回产品处理单) ---------------------------------------------------------------------


class ReturnLine(_Part):
    sku: str
    quantity: int
    amount_fen: int


class ReturnRequested(Event):
    event_type = "return.requested"
    return_id: str
    order_id: str
    customer_id: str
    lines: tuple[ReturnLine, ...]
    scope: Scope
    reason: ReturnReason
    detail: str


class ReturnInspected(Event):
    event_type = "return.inspected"
    return_id: str
    inspector_id: str
    confirmed: bool
    notes: str


class ReturnApproved(Event):
    event_type = "return.approved"
    return_id: str
    approver_id: str
    reason: str | None = None


class ReturnRejected(Event):
    event_type = "return.rejected"
    return_id: str
    reason: str


class ReturnResolved(Event):
    event_type = "return.resolved"
    return_id: str
    resolution: Resolution
    amount_fen: int


class ReturnGoodsReceived(Event):
    event_type = "return.goods_received"
    return_id: str


class CorrectiveActionAssigned(Event):
    """纠正和预防措施: a confirmed quality defect sends an action to a department."""

    event_type = "corrective_action.assigned"
    return_id: str
    department: str
    action: str


# -- promotions (促销) ----------------------------------------------------------------------------


class GiftRule(_Part):
    """Buy `buy` units, get `get` units free."""

    buy: int
    get: int


class PromotionPlanned(Event):
    event_type = "promotion.planned"
    promotion_id: str
    name: str
    starts_on: date
    ends_on: date
    skus: tuple[str, ...]
    channels: tuple[str, ...]  # empty: every channel
    discount_percent: int | None
    gift_rule: GiftRule | None
    budget_fen: int


class PromotionCostIncurred(Event):
    event_type = "promotion.cost_incurred"
    promotion_id: str
    order_id: str
    cost_fen: int


class PromotionCostReleased(Event):
    """Own: an order that used the promotion was cancelled or rejected; its cost is given back."""

    event_type = "promotion.cost_released"
    promotion_id: str
    order_id: str
    cost_fen: int


registry = EventRegistry(
    [
        SkuDefined,
        SkuPriceSet,
        RequiredSkusSet,
        OrderPlaced,
        OrderApprovalRequired,
        OrderApproved,
        OrderRejected,
        OrderConfirmed,
        OrderDispatched,
        OrderDelivered,
        OrderDeliveryOverdue,
        OrderDeliveryConfirmed,
        OrderCancelled,
        OrderPromotionDeclined,
        OrderDepositRecorded,
        OrderDepositCompleted,
        OrderDepositOverdue,
        InvoiceIssued,
        PaymentReceived,
        CollectionNoteRecorded,
        ReturnRequested,
        ReturnInspected,
        ReturnApproved,
        ReturnRejected,
        ReturnResolved,
        ReturnGoodsReceived,
        CorrectiveActionAssigned,
        PromotionPlanned,
        PromotionCostIncurred,
        PromotionCostReleased,
        *UNIT_EVENTS,
    ]
)
