"""The events the visit service publishes (subject `visit.event.<type>`).

These payloads are the contract other services build on (README.md lists them). Every visit
event carries `visit_id, rep_id, customer_id, business_date`. A few events carry fields beyond
the cross-service contract (territory of a visit, who asked for an approval and when it falls
due); they are additions, never replacements, and `visit.order_taken` carries exactly the
contract's fields because the orders service creates the order from it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from salesplatform.events import Event, EventRegistry

Weekday = int  # ISO weekday: 1 = Monday … 7 = Sunday
ComplaintCategory = Literal["quality", "technical", "logistics", "service"]
Department = Literal["production", "technical", "logistics", "sales"]
ReportDepartment = Literal["quality", "delivery", "service"]
ApprovalReason = Literal["key_account", "unplanned"]


class Line(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StockLine(Line):
    sku: str = Field(min_length=1, max_length=64)
    shelf_qty: int = Field(ge=0)
    store_qty: int = Field(ge=0)


class SuggestedLine(Line):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0)


class OrderLine(Line):
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0)
    # None: the orders service prices the line from its price list.
    unit_price_fen: int | None = Field(default=None, ge=0)


class ReportIssue(Line):
    department: ReportDepartment
    description: str = Field(min_length=1, max_length=2000)


# -- routes ---------------------------------------------------------------------------------


class RouteDefined(Event):
    event_type = "route.defined"
    route_id: str
    rep_id: str
    name: str
    weekdays: list[Weekday]
    customer_ids: list[str]


class RouteChanged(Event):
    """The route's full state after the change; `reason` says what changed."""

    event_type = "route.changed"
    route_id: str
    rep_id: str
    name: str
    weekdays: list[Weekday]
    customer_ids: list[str]
    reason: Literal["customer_added", "customer_removed", "reordered", "weekdays_changed", "customer_reassigned"]
    customer_id: str | None = None


# -- visits ---------------------------------------------------------------------------------


class VisitEvent(Event):
    visit_id: str
    rep_id: str
    customer_id: str
    business_date: date


class VisitPlanned(VisitEvent):
    event_type = "visit.planned"
    route_id: str | None
    planned: bool
    sequence: int
    district_id: str | None = None
    area_id: str | None = None


class VisitApprovalRequested(VisitEvent):
    event_type = "visit.approval_requested"
    reason: ApprovalReason
    requested_by: str
    requested_at: datetime
    due_at: datetime
    # Who may answer: a supervisor, or higher for high-value accounts (a configured rule).
    approver_role: Literal["supervisor", "area_manager", "sales_manager", "general_manager"] = "supervisor"


class VisitApproved(VisitEvent):
    event_type = "visit.approved"
    approver_id: str


class VisitApprovalRejected(VisitEvent):
    event_type = "visit.approval_rejected"
    approver_id: str
    reason: str


class VisitApprovalOverdue(VisitEvent):
    event_type = "visit.approval_overdue"
    supervisor_id: str | None


class VisitCheckedIn(VisitEvent):
    event_type = "visit.checked_in"
    at: datetime
    latitude: float
    longitude: float


class VisitStockCounted(VisitEvent):
    event_type = "visit.stock_counted"
    lines: list[StockLine]


class VisitMerchandisingAudited(VisitEvent):
    event_type = "visit.merchandising_audited"
    required_skus: list[str]
    present_skus: list[str]
    price_tags_ok: bool
    display_ok: bool


class VisitCoolerChecked(VisitEvent):
    event_type = "visit.cooler_checked"
    cooler_id: str
    at_outlet: bool
    best_position: bool
    powered: bool
    light_on: bool
    clean: bool
    working: bool
    required_packs: bool
    misused: bool
    compliant: bool


class VisitCompetitorObserved(VisitEvent):
    event_type = "visit.competitor_observed"
    brand: str
    product: str
    price_fen: int | None
    promotion: str | None
    stock_age_days: int | None


class VisitOrderSuggested(VisitEvent):
    event_type = "visit.order_suggested"
    lines: list[SuggestedLine]


class VisitOrderTaken(VisitEvent):
    event_type = "visit.order_taken"
    order_id: str
    lines: list[OrderLine]
    suggested_adopted: bool


class VisitOrderRefused(VisitEvent):
    event_type = "visit.order_refused"
    reason: str


class VisitDeliveryConfirmed(VisitEvent):
    event_type = "visit.delivery_confirmed"
    order_id: str
    delivered: bool


class VisitCheckedOut(VisitEvent):
    event_type = "visit.checked_out"
    at: datetime
    successful: bool


class VisitMissed(VisitEvent):
    event_type = "visit.missed"


# -- complaints -----------------------------------------------------------------------------


class ComplaintReceived(Event):
    event_type = "complaint.received"
    complaint_id: str
    customer_id: str
    channel: str
    category: ComplaintCategory
    severity: str
    received_at: datetime
    rep_id: str | None
    description: str
    district_id: str | None = None
    area_id: str | None = None
    acknowledge_by: datetime


class ComplaintAcknowledged(Event):
    event_type = "complaint.acknowledged"
    complaint_id: str
    at: datetime
    within_sla: bool
    by: str


class ComplaintRouted(Event):
    event_type = "complaint.routed"
    complaint_id: str
    department: Department


class ComplaintResolved(Event):
    event_type = "complaint.resolved"
    complaint_id: str
    resolution: str
    customer_misuse: bool


class ComplaintClosed(Event):
    event_type = "complaint.closed"
    complaint_id: str
    customer_confirmed: Literal[True]


class ComplaintSlaBreached(Event):
    event_type = "complaint.sla_breached"
    complaint_id: str
    customer_id: str


# -- surveys, key-account reports, coaching, spot checks --------------------------------------


class SurveyRecorded(Event):
    event_type = "survey.recorded"
    survey_id: str
    customer_id: str
    period: str
    scores: dict[str, int]
    satisfied: bool
    rep_id: str | None
    business_date: date
    district_id: str | None = None
    area_id: str | None = None


class KeyAccountReportFiled(Event):
    event_type = "key_account_report.filed"
    report_id: str
    customer_id: str
    issues: list[ReportIssue]
    summary: str
    filed_by: str
    filed_on: date
    visit_id: str | None = None
    district_id: str | None = None
    area_id: str | None = None


class CoachingRecorded(Event):
    event_type = "coaching.recorded"
    coaching_id: str
    supervisor_id: str
    rep_id: str
    business_date: date
    notes: str
    strengths: list[str]
    improvements: list[str]
    visit_id: str | None = None
    customer_id: str | None = None


class DeliverySpotChecked(Event):
    event_type = "delivery.spot_checked"
    spot_check_id: str
    order_id: str
    customer_id: str
    checked_by: str
    business_date: date
    delivered: bool
    on_time: bool | None
    quantities_match: bool
    notes: str


registry = EventRegistry(
    [
        RouteDefined,
        RouteChanged,
        VisitPlanned,
        VisitApprovalRequested,
        VisitApproved,
        VisitApprovalRejected,
        VisitApprovalOverdue,
        VisitCheckedIn,
        VisitStockCounted,
        VisitMerchandisingAudited,
        VisitCoolerChecked,
        VisitCompetitorObserved,
        VisitOrderSuggested,
        VisitOrderTaken,
        VisitOrderRefused,
        VisitDeliveryConfirmed,
        VisitCheckedOut,
        VisitMissed,
        ComplaintReceived,
        ComplaintAcknowledged,
        ComplaintRouted,
        ComplaintResolved,
        ComplaintClosed,
        ComplaintSlaBreached,
        SurveyRecorded,
        KeyAccountReportFiled,
        CoachingRecorded,
        DeliverySpotChecked,
    ]
)
