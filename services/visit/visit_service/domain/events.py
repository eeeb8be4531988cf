"""The events the visit service publishes (subject `visit.event.<type>`).

These payloads are the contract other services build on (README.md lists them). Every visit
event carries `visit_id, rep_id, customer_id, business_date`. A few events carry fields beyond
the cross-service contract (territory of a visit, who asked for an approval and when it falls
due); they are additions, never replacements, and `visit.order_taken` carries exactly the
contract's fields because the orders service creates the order from it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from salesplatform.events import Event, EventRegistry

Weekday = int  # ISO weekday: 1 = Monday … 7 = Sunday
ComplaintCategory = Literal["quality", "technical", "logistics", "service"]
Department = Literal["production", "technical", "logistics", "sales"]
ReportDepartment = Literal["quality", "delivery", "service"]
ApprovalReason = Literal["key_account", "unplanned"]
PhotoKind = Literal["shelf", "cooler", "display"]


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
    """A route runs on its weekdays every `cycle_weeks` weeks (1: every week), in the weeks
    whose number (weeks since Monday 1 January 2024) modulo `cycle_weeks` is `cycle_offset`;
    `plan_id` names the adopted route plan it comes from."""

    event_type = "route.defined"
    route_id: str
    rep_id: str
    name: str
    weekdays: list[Weekday]
    customer_ids: list[str]
    cycle_weeks: int = 1
    cycle_offset: int = 0
    plan_id: str | None = None


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
    cycle_weeks: int = 1
    cycle_offset: int = 0
    plan_id: str | None = None


class RouteRetired(Event):
    """The route is no longer run (its rep adopted a route plan that replaces it)."""

    event_type = "route.retired"
    route_id: str
    rep_id: str
    reason: str
    plan_id: str | None = None


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
    reason: str | None = None


class VisitApprovalRejected(VisitEvent):
    event_type = "visit.approval_rejected"
    approver_id: str
    reason: str


class VisitApprovalOverdue(VisitEvent):
    event_type = "visit.approval_overdue"
    supervisor_id: str | None


class VisitCheckedIn(VisitEvent):
    """Step 1. The position check (domain/check_in.py): `distance_m` from the outlet (null when
    its position is unknown), `flags`, `position_verified` (true, false, or null: could not be
    judged), `repeated_at`: other visits checked in at exactly these coordinates."""

    event_type = "visit.checked_in"
    at: datetime
    latitude: float
    longitude: float
    accuracy_m: float | None = None
    distance_m: float | None = None
    position_verified: bool | None = None
    flags: list[str] = Field(default_factory=list)
    repeated_at: list[str] = Field(default_factory=list)


class VisitCheckInConfirmed(VisitEvent):
    """A supervisor confirmed the rep was at the outlet: the check-in's position becomes the
    outlet's (the customer service corrects the card) and the check-in counts as verified."""

    event_type = "visit.check_in_confirmed"
    latitude: float
    longitude: float
    accuracy_m: float | None = None
    confirmed_by: str
    previously_verified: bool | None = None
    note: str | None = None


class VisitStockCounted(VisitEvent):
    event_type = "visit.stock_counted"
    lines: list[StockLine]


class VisitMerchandisingAudited(VisitEvent):
    """Step 3. With the channel's standard picture (成功图象): its items, the checklist the rep
    ticked, whether every item was met and which were not, and the photos backing it."""

    event_type = "visit.merchandising_audited"
    required_skus: list[str]
    present_skus: list[str]
    price_tags_ok: bool
    display_ok: bool
    standard_items: list[str] | None = None
    checklist: dict[str, bool] | None = None
    standard_met: bool | None = None
    missing_items: list[str] = Field(default_factory=list)
    photo_ids: list[str] = Field(default_factory=list)


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


class VisitPhotoAttached(VisitEvent):
    """A photo taken on the visit, kept in the object store under `object_name`; `digest` is
    the store's SHA-256 digest of its bytes."""

    event_type = "visit.photo_attached"
    photo_id: str
    kind: PhotoKind
    object_name: str
    digest: str
    size_bytes: int
    content_type: str
    taken_by: str
    taken_at: datetime


class VisitPhotoReviewed(VisitEvent):
    event_type = "visit.photo_reviewed"
    photo_id: str
    verdict: Literal["confirmed", "disputed"]
    note: str | None = None
    reviewed_by: str


class VisitPhotoRemoved(VisitEvent):
    """The photo's bytes were deleted from the object store: kept its retention time, or the
    customer's personal data was erased."""

    event_type = "visit.photo_removed"
    photo_id: str
    object_name: str
    reason: Literal["retention", "erasure"]


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


# -- route plans, standard pictures, route cleanup ----------------------------------------------


class PlanDay(Line):
    week: int = Field(ge=1)
    weekday: int = Field(ge=1, le=7)
    customer_ids: list[str]
    distance_m: float = Field(ge=0)
    minutes: float = Field(ge=0)


class PlanRules(Line):
    frequency_weeks: dict[str, int]
    visit_minutes: int
    day_start: str  # HH:MM
    day_end: str
    workdays: list[int]
    speed_kmh: float
    time_limit_seconds: float


class Unplaced(Line):
    customer_id: str
    reason: str


class RoutePlanRequested(Event):
    """A route plan asked for; the planner proposes one (or says why it cannot)."""

    event_type = "route_plan.requested"
    plan_id: str
    rep_id: str
    district_id: str | None = None
    area_id: str | None = None
    requested_by: str
    start_latitude: float
    start_longitude: float
    effective_from: date  # the Monday of the plan's first week
    rules: PlanRules
    # Metres between points (customer ids and "start"), when supplied; else haversine.
    matrix: dict[str, dict[str, float]] | None = None


class RoutePlanProposed(Event):
    """The planner's proposal: each working day of the cycle with its outlets in order, and the
    travel distance of the current and the proposed routes over the same weeks."""

    event_type = "route_plan.proposed"
    plan_id: str
    rep_id: str
    cycle_weeks: int
    effective_from: date
    days: list[PlanDay]
    current_distance_m: float
    proposed_distance_m: float
    unplaced: list[Unplaced] = Field(default_factory=list)
    unmeasured: list[str] = Field(default_factory=list)
    solver: dict[str, Any] = Field(default_factory=dict)


class RoutePlanFailed(Event):
    event_type = "route_plan.failed"
    plan_id: str
    rep_id: str
    reason: str


class RoutePlanAdopted(Event):
    """A supervisor adopted the proposal: the rep's routes are replaced by the plan's days."""

    event_type = "route_plan.adopted"
    plan_id: str
    rep_id: str
    adopted_by: str
    effective_from: date
    route_ids: list[str]
    retired_route_ids: list[str]


class RoutePlanRejected(Event):
    event_type = "route_plan.rejected"
    plan_id: str
    rep_id: str
    rejected_by: str
    reason: str


class StandardItem(Line):
    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = Field(min_length=1, max_length=500)


class StandardPictureDefined(Event):
    """The channel's standard success picture (成功图象) as a checklist of what must be seen."""

    event_type = "standard_picture.defined"
    channel: str
    items: list[StandardItem]
    defined_by: str


class RouteCleanupClosed(Event):
    """The month's route cleanup (线路清理) of a district is done; what the report held then."""

    event_type = "route_cleanup.closed"
    cleanup_id: str
    district_id: str
    month: str  # YYYY-MM
    closed_by: str
    closed_on: date
    counts: dict[str, int]
    outlets: dict[str, list[str]]
    notes: str | None = None


registry = EventRegistry(
    [
        RouteDefined,
        RouteChanged,
        RouteRetired,
        RoutePlanRequested,
        RoutePlanProposed,
        RoutePlanFailed,
        RoutePlanAdopted,
        RoutePlanRejected,
        StandardPictureDefined,
        RouteCleanupClosed,
        VisitCheckInConfirmed,
        VisitPhotoAttached,
        VisitPhotoReviewed,
        VisitPhotoRemoved,
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
