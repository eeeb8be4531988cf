"""What the visit queries answer, as the OpenAPI document describes it: ids are strings,
money integer fen, days and times ISO 8601, a field that may be empty is `null`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from visit_service.domain.events import PlanRules, ReportIssue, StandardItem, Unplaced


class VisitApproval(BaseModel):
    """An unplanned visit's approval by the supervisor."""

    status: str = Field(description="`pending`, `approved` or `rejected`")
    reason: str | None
    requested_by: str | None
    requested_at: datetime | None
    due_at: datetime | None
    overdue: bool
    supervisor_id: str | None = Field(description="the supervisor it went overdue with")
    approver_id: str | None
    decided_at: datetime | None
    rejection_reason: str | None


class Visit(BaseModel):
    visit_id: str
    rep_id: str
    customer_id: str
    business_date: date
    route_id: str | None
    planned: bool
    sequence: int = Field(description="the stop's place on the route; unplanned visits after")
    district_id: str | None
    area_id: str | None
    status: str
    successful: bool | None
    approval: VisitApproval | None


class CheckIn(BaseModel):
    at: datetime
    latitude: float | None
    longitude: float | None
    accuracy_m: float | None
    distance_m: float | None = Field(description="from the outlet's position, where known")
    position_verified: bool | None
    flags: list[Any]
    repeated_at: list[Any]
    confirmed_by: str | None


class CheckOut(BaseModel):
    at: datetime


class VisitOrder(BaseModel):
    order_id: str
    lines: Any
    suggested_adopted: bool | None


class VisitCard(BaseModel):
    """The visit card (ODC卡) step by step."""

    check_in: CheckIn | None
    stock: Any
    merchandising: Any
    coolers: list[Any]
    competitors: list[Any]
    suggested_order: Any
    order: VisitOrder | None
    refusal_reason: str | None
    previous_delivery: Any
    check_out: CheckOut | None
    missed_at: datetime | None


class VisitWithCard(Visit):
    customer_name: str | None
    card: VisitCard


class PlannedStop(BaseModel):
    """A visit of the day plan; a route stop the planning timer has not planned yet has
    `status: not_yet_planned` and no district, area, result or approval."""

    visit_id: str
    rep_id: str
    customer_id: str
    customer_name: str | None
    business_date: date
    route_id: str | None
    planned: bool
    sequence: int
    district_id: str | None = None
    area_id: str | None = None
    status: str
    successful: bool | None = None
    approval: VisitApproval | None = None


class DayPlan(BaseModel):
    rep_id: str
    business_date: date
    visits: list[PlannedStop]


class RepVisits(BaseModel):
    rep_id: str
    from_: date = Field(alias="from")
    to: date
    total: int
    limit: int
    offset: int
    visits: list[Visit]


class CustomerVisit(Visit):
    card: VisitCard


class CustomerVisits(BaseModel):
    customer_id: str
    limit: int
    offset: int
    visits: list[CustomerVisit]


class ApprovalQueue(BaseModel):
    district_id: str | None
    area_id: str | None
    approvals: list[Visit]


class OverdueApprovals(BaseModel):
    approvals: list[Visit]


class Route(BaseModel):
    route_id: str
    rep_id: str
    name: str
    weekdays: list[int] = Field(description="ISO weekdays, 1 Monday to 7 Sunday")
    customer_ids: list[str] = Field(description="the stops in order")
    defined_at: datetime
    changed_at: datetime
    cycle_weeks: int
    cycle_offset: int
    plan_id: str | None = Field(description="the route plan it came from")


class RepRoutes(BaseModel):
    rep_id: str
    routes: list[Route]


class Complaint(BaseModel):
    complaint_id: str
    customer_id: str
    rep_id: str | None
    district_id: str | None
    area_id: str | None
    channel: str
    category: str
    severity: str
    description: str
    received_at: datetime
    acknowledge_by: datetime = Field(description="48 hours after it was received")
    status: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    within_sla: bool | None
    sla_breached: bool
    department: str | None = Field(description="where it was routed; null before")
    resolution: str | None
    customer_misuse: bool | None
    resolved_at: datetime | None
    closed_at: datetime | None


class OverdueComplaints(BaseModel):
    complaints: list[Complaint]


class OpenComplaints(BaseModel):
    departments: dict[str, list[Complaint]] = Field(description="per department; `unrouted` for those not routed")


class SatisfactionGoal(BaseModel):
    share: float
    met: bool


class QuestionScore(BaseModel):
    question: str
    average: float
    answers: int


class SurveyResults(BaseModel):
    period: str
    district_id: str | None
    area_id: str | None
    surveys: int
    satisfied: int
    satisfied_share: float | None = Field(description="null without surveys")
    goals: dict[str, SatisfactionGoal] = Field(description="`year_1`, `year_2`, `year_3`")
    questions: list[QuestionScore]


class KeyAccount(BaseModel):
    customer_id: str
    name: str | None
    rep_id: str | None
    district_id: str | None
    area_id: str | None
    last_report_on: date | None


class KeyAccountsWithoutReport(BaseModel):
    as_of: date
    since: date
    customers: list[KeyAccount]


class KeyAccountReport(BaseModel):
    report_id: str
    customer_id: str
    visit_id: str | None
    summary: str
    issues: list[ReportIssue]
    filed_by: str
    filed_on: date
    district_id: str | None
    area_id: str | None


class KeyAccountReports(BaseModel):
    customer_id: str
    reports: list[KeyAccountReport]


class CoachingNote(BaseModel):
    coaching_id: str
    supervisor_id: str
    rep_id: str
    business_date: date
    visit_id: str | None
    customer_id: str | None
    notes: str
    strengths: list[str]
    improvements: list[str]


class RepCoaching(BaseModel):
    rep_id: str
    coaching: list[CoachingNote]


class DirectoryCustomer(BaseModel):
    """What this service knows of a customer; `registered: false` marks a placeholder."""

    customer_id: str
    registered: bool
    name: str | None
    address: str | None
    customer_code: str | None
    district_id: str | None
    area_id: str | None
    division_id: str | None
    rep_id: str | None
    channel: str | None
    grade: str | None
    status: str | None
    merged_into: str | None
    approved_on: date | None
    latitude: float | None
    longitude: float | None


class DirectorySku(BaseModel):
    sku: str
    defined: bool
    name: str | None
    brand: str | None
    product_group: str | None
    package: str | None
    list_price_fen: int | None
    floor_price_fen: int | None


class DirectorySkus(BaseModel):
    skus: list[DirectorySku]
    required_skus: dict[str, list[str]] = Field(description="per channel")


class FlaggedCheckIn(BaseModel):
    """A check-in not verified where the outlet is, and why (`flags`)."""

    visit_id: str
    rep_id: str
    customer_id: str
    business_date: date
    district_id: str | None
    at: datetime
    latitude: float | None
    longitude: float | None
    accuracy_m: float | None
    distance_m: float | None
    position_verified: bool | None
    flags: list[Any]
    repeated_at: list[Any]
    confirmed_by: str | None


class RepeatedCoordinates(BaseModel):
    """Identical coordinates checked in at more than one outlet (likely faked)."""

    latitude: float | None
    longitude: float | None
    visit_ids: list[str]
    customer_ids: list[str]


class FlaggedCheckIns(BaseModel):
    from_: date = Field(alias="from")
    to: date
    district_id: str | None
    area_id: str | None
    max_distance_m: float
    check_ins: list[FlaggedCheckIn]
    repeated_coordinates: list[RepeatedCoordinates]


class PlannedCustomer(BaseModel):
    customer_id: str
    name: str | None = Field(description="null in a list of plans")


class ProposedDay(BaseModel):
    week: int
    weekday: int
    customer_ids: list[str] = Field(description="the outlets in visiting order")
    distance_m: float
    minutes: float
    customers: list[PlannedCustomer]


class PlanDistance(BaseModel):
    current_m: float = Field(description="travel of the current routes over the plan's weeks")
    proposed_m: float
    saved_m: float
    saved_share: float | None


class RoutePlan(BaseModel):
    plan_id: str
    rep_id: str
    district_id: str | None
    area_id: str | None
    status: str
    requested_by: str
    requested_at: datetime
    effective_from: date
    start_latitude: float
    start_longitude: float
    rules: PlanRules
    matrix_supplied: bool
    cycle_weeks: int | None
    days: list[ProposedDay] | None = Field(description="null until proposed")
    distance: PlanDistance | None
    unplaced: list[Unplaced] | None
    unmeasured: list[str] | None
    solver: dict[str, Any] | None
    proposed_at: datetime | None
    failure: str | None
    decided_by: str | None
    decided_at: datetime | None
    rejection_reason: str | None
    route_ids: list[str] | None = Field(description="the routes made when adopted")
    retired_route_ids: list[str] | None


class RepRoutePlans(BaseModel):
    rep_id: str
    plans: list[RoutePlan]


class CleanupRules(BaseModel):
    unvisited_days: int
    new_outlet_days: int


class CleanupOutlet(BaseModel):
    customer_id: str
    name: str | None
    rep_id: str | None
    status: str | None
    route_ids: list[str]
    last_visit_on: date | None
    approved_on: date | None


class CleanupClosed(BaseModel):
    closed_by: str
    closed_on: date
    counts: dict[str, int]
    notes: str | None


class RouteCleanup(BaseModel):
    district_id: str
    month: str
    as_of: date
    rules: CleanupRules
    counts: dict[str, int] = Field(description="outlets per section")
    sections: dict[str, list[CleanupOutlet]] = Field(
        description="`no_route`, `unvisited`, `inactive_on_route`, `new_waiting`"
    )
    closed: CleanupClosed | None = Field(description="null while the month's cleanup is open")


class StandardPicture(BaseModel):
    channel: str
    items: list[StandardItem]
    defined_by: str
    defined_at: datetime


class StandardPictures(BaseModel):
    standard_pictures: list[StandardPicture]


class Photo(BaseModel):
    photo_id: str
    visit_id: str
    rep_id: str
    customer_id: str
    business_date: date
    district_id: str | None
    area_id: str | None
    kind: str
    object_name: str
    digest: str
    size_bytes: int
    content_type: str
    taken_by: str
    taken_at: datetime
    verdict: str | None = Field(description="the supervisor's review; null until reviewed")
    review_note: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    removed: str | None = Field(description="`retention` or `erasure`, once the image is gone")
    removed_at: datetime | None
    content_url: str | None = Field(description="where the image is read; null once removed")


class VisitPhotos(BaseModel):
    visit_id: str
    photos: list[Photo]


class PhotoAudit(BaseModel):
    """The visit's merchandising audit against the channel's standard picture."""

    standard_met: bool | None
    missing_items: list[Any]
    checklist: Any
    cites_this_photo: bool


class PhotoToReview(Photo):
    audit: PhotoAudit


class PhotoReview(BaseModel):
    from_: date = Field(alias="from")
    to: date
    district_id: str | None
    area_id: str | None
    photos: list[PhotoToReview]
