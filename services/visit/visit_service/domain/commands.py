"""Commands of the visit service (POST /commands/<name>). Constrained fields: bad input is a 422
with field details and changes nothing."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from salesplatform.command import Command
from visit_service.domain.events import (
    ComplaintCategory,
    Department,
    OrderLine,
    PhotoKind,
    ReportIssue,
    StandardItem,
    StockLine,
)

# A supplied distance matrix has at most this many points (the start and the outlets): the
# request carries it in its event, which must stay well under the message size limit.
MATRIX_POINTS = 150

Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Weekdays = Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(min_length=1, max_length=7)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Score = Annotated[int, Field(ge=1, le=5)]


def _unique(values: list[str], what: str) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat")
    return values


# -- routes ---------------------------------------------------------------------------------


class DefineRoute(Command):
    """A rep's new route; a rep defines their own, a supervisor one for a rep of the team."""

    name = "define_route"
    route_id: Id | None = None
    rep_id: Id | None = None  # default: the acting rep
    route_name: Name
    weekdays: Weekdays
    customer_ids: list[Id] = Field(default_factory=list, max_length=500)
    # Every `cycle_weeks` weeks (default every week), first in the week of `first_week`
    # (default this week).
    cycle_weeks: int = Field(default=1, ge=1, le=12)
    first_week: date | None = None

    @field_validator("customer_ids")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return _unique(v, "customer_ids")


class AddRouteCustomer(Command):
    name = "add_route_customer"
    route_id: Id
    customer_id: Id
    position: int | None = Field(default=None, ge=1, description="1-based place in the route order; default last")


class RemoveRouteCustomer(Command):
    name = "remove_route_customer"
    route_id: Id
    customer_id: Id


class ReorderRoute(Command):
    name = "reorder_route"
    route_id: Id
    customer_ids: list[Id] = Field(max_length=500)

    @field_validator("customer_ids")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return _unique(v, "customer_ids")


class SetRouteWeekdays(Command):
    name = "set_route_weekdays"
    route_id: Id
    weekdays: Weekdays


# -- visits ---------------------------------------------------------------------------------


class PlanVisit(Command):
    """A route visit for the business day (the planning timer sends it)."""

    name = "plan_visit"
    rep_id: Id
    customer_id: Id
    business_date: date
    route_id: Id | None = None
    sequence: int = Field(ge=1)


class RequestUnplannedVisit(Command):
    """A visit off the route; the supervisor approves it."""

    name = "request_unplanned_visit"
    customer_id: Id
    rep_id: Id | None = None  # default: the acting rep
    business_date: date | None = None  # default: today (company time zone)


class ApproveVisit(Command):
    name = "approve_visit"
    # Why the approver agreed is kept with the approval; free text, left out of dead letters.
    personal_fields = frozenset({"reason"})
    visit_id: Id
    reason: Text | None = None


class RejectVisit(Command):
    name = "reject_visit"
    # Free text people write may name or describe a person: left out of dead letters.
    personal_fields = frozenset({"reason"})
    visit_id: Id
    reason: Text


class FlagApprovalOverdue(Command):
    name = "flag_approval_overdue"
    visit_id: Id


class CheckIn(Command):
    """The phone's position and its accuracy (the radius in metres it is sure of)."""

    name = "check_in"
    visit_id: Id
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


class ConfirmCheckIn(Command):
    """A supervisor vouches that the rep was at the outlet: its position is corrected to the
    check-in's and the check-in counts as verified."""

    name = "confirm_check_in"
    visit_id: Id
    note: Annotated[str, Field(max_length=2000)] | None = None


class CountStock(Command):
    """Stock per SKU on the shelf and in the store room; computes the suggested order."""

    name = "count_stock"
    visit_id: Id
    lines: list[StockLine] = Field(min_length=1, max_length=500)


class AuditMerchandising(Command):
    """The merchandising audit against the standard picture (生动化): the required SKUs come
    from the customer's channel."""

    name = "audit_merchandising"
    visit_id: Id
    present_skus: list[Id] = Field(max_length=500)
    price_tags_ok: bool
    display_ok: bool
    # The standard picture's items the rep ticked (item code → seen), and the photos behind it.
    checklist: dict[Annotated[str, Field(min_length=1, max_length=64)], bool] | None = Field(
        default=None, max_length=100
    )
    photo_ids: list[Id] = Field(default_factory=list, max_length=20)


class CheckCooler(Command):
    name = "check_cooler"
    visit_id: Id
    cooler_id: Id
    at_outlet: bool
    best_position: bool
    powered: bool
    light_on: bool
    clean: bool
    working: bool
    required_packs: bool
    misused: bool


class ObserveCompetitor(Command):
    name = "observe_competitor"
    visit_id: Id
    brand: Name
    product: Name
    price_fen: int | None = Field(default=None, ge=0)
    promotion: Annotated[str, Field(max_length=500)] | None = None
    stock_age_days: int | None = Field(default=None, ge=0)


class TakeOrder(Command):
    """The order taken on the visit; the visit service names the order and hands it to the
    orders service with `visit.order_taken`."""

    name = "take_order"
    visit_id: Id
    lines: list[OrderLine] = Field(min_length=1, max_length=500)


class RefuseOrder(Command):
    name = "refuse_order"
    personal_fields = frozenset({"reason"})
    visit_id: Id
    reason: Text


class ConfirmDelivery(Command):
    """Whether the previous order arrived; `order_id` defaults to the customer's latest order
    before this visit."""

    name = "confirm_delivery"
    visit_id: Id
    order_id: Id | None = None
    delivered: bool


class CheckOut(Command):
    name = "check_out"
    visit_id: Id


class MarkVisitMissed(Command):
    name = "mark_visit_missed"
    visit_id: Id


# -- complaints -----------------------------------------------------------------------------


class ReceiveComplaint(Command):
    name = "receive_complaint"
    personal_fields = frozenset({"description"})
    complaint_id: Id | None = None
    customer_id: Id
    channel: Literal["phone", "letter", "email", "visit", "web", "in_person", "other"]
    category: ComplaintCategory
    severity: Literal["low", "medium", "high", "critical"]
    description: Text
    received_at: datetime | None = None  # default: now; never in the future


class AcknowledgeComplaint(Command):
    name = "acknowledge_complaint"
    complaint_id: Id


class RouteComplaint(Command):
    name = "route_complaint"
    complaint_id: Id
    department: Department | None = None  # default: by category


class ResolveComplaint(Command):
    name = "resolve_complaint"
    personal_fields = frozenset({"resolution"})
    complaint_id: Id
    resolution: Text
    customer_misuse: bool = False


class CloseComplaint(Command):
    name = "close_complaint"
    complaint_id: Id
    customer_confirmed: Literal[True]


class FlagComplaintBreach(Command):
    name = "flag_complaint_breach"
    complaint_id: Id


# -- surveys, key-account reports, coaching, spot checks --------------------------------------


class RecordSurvey(Command):
    name = "record_survey"
    customer_id: Id
    period: Annotated[str, Field(pattern=r"^20[0-9]{2}H[12]$")] | None = None  # default: this half year
    scores: dict[Annotated[str, Field(min_length=1, max_length=100)], Score] = Field(min_length=1, max_length=50)
    satisfied: bool


class FileKeyAccountReport(Command):
    name = "file_key_account_report"
    personal_fields = frozenset({"summary", "issues"})
    report_id: Id | None = None
    customer_id: Id
    visit_id: Id | None = None
    summary: Text
    issues: list[ReportIssue] = Field(default_factory=list, max_length=50)


class RecordCoaching(Command):
    name = "record_coaching"
    personal_fields = frozenset({"notes", "strengths", "improvements"})
    rep_id: Id
    visit_id: Id | None = None
    customer_id: Id | None = None
    notes: Text
    strengths: list[Name] = Field(default_factory=list, max_length=20)
    improvements: list[Name] = Field(default_factory=list, max_length=20)


# -- photos ---------------------------------------------------------------------------------


class AttachPhoto(Command):
    """A photo already put in the object store (by `POST /visits/{visit_id}/photos`), named by
    its object and digest; the handler checks the store holds exactly that."""

    name = "attach_photo"
    visit_id: Id
    photo_id: Id
    kind: PhotoKind
    object_name: Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[-/_=.a-zA-Z0-9]+$")]
    digest: Annotated[str, Field(min_length=1, max_length=100)]
    size_bytes: int = Field(gt=0)
    content_type: Annotated[str, Field(min_length=1, max_length=100)]


class ReviewPhoto(Command):
    name = "review_photo"
    visit_id: Id
    photo_id: Id
    verdict: Literal["confirmed", "disputed"]
    note: Annotated[str, Field(max_length=2000)] | None = None


class ExpirePhoto(Command):
    """Delete a photo kept its retention time (the retention timer sends it)."""

    name = "expire_photo"
    visit_id: Id
    photo_id: Id


# -- route plans, standard pictures, route cleanup -------------------------------------------------


HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-4]):[0-5][0-9]$")]


class DistanceMatrix(BaseModel):
    """Road distances in metres: `meters[i][j]` from `points[i]` to `points[j]`; the points are
    "start" and every outlet planned."""

    model_config = ConfigDict(extra="forbid")
    points: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=2, max_length=MATRIX_POINTS)
    meters: list[list[Annotated[float, Field(ge=0, allow_inf_nan=False)]]]

    @model_validator(mode="after")
    def _square(self) -> DistanceMatrix:
        n = len(self.points)
        if len(set(self.points)) != n:
            raise ValueError("points must not repeat")
        if len(self.meters) != n or any(len(row) != n for row in self.meters):
            raise ValueError(f"meters must be {n} rows of {n} distances")
        return self

    def as_mapping(self) -> dict[str, dict[str, float]]:
        return {a: dict(zip(self.points, row, strict=True)) for a, row in zip(self.points, self.meters, strict=True)}


class RequestRoutePlan(Command):
    """Ask the planner for a rep's routes; numbers not given come from the settings."""

    name = "request_route_plan"
    plan_id: Id | None = None
    rep_id: Id | None = None  # default: the acting rep
    start_latitude: float = Field(ge=-90, le=90)
    start_longitude: float = Field(ge=-180, le=180)
    effective_from: date | None = None  # a Monday; default: next Monday
    frequency_weeks: dict[Annotated[str, Field(pattern=r"^[A-Z]$")], Annotated[int, Field(ge=1, le=12)]] | None = Field(
        default=None, min_length=1, max_length=10
    )
    visit_minutes: int | None = Field(default=None, ge=1, le=480)
    day_start: HHMM | None = None
    day_end: HHMM | None = None
    workdays: Weekdays | None = None
    speed_kmh: float | None = Field(default=None, gt=0, le=200)
    time_limit_seconds: float | None = Field(default=None, gt=0, le=600)
    distance_matrix: DistanceMatrix | None = None

    @field_validator("workdays")
    @classmethod
    def _distinct_days(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("workdays must not repeat")
        return v


class PlannedDay(BaseModel):
    model_config = ConfigDict(extra="forbid")
    week: int = Field(ge=1, le=52)
    weekday: int = Field(ge=1, le=7)
    customer_ids: list[Id] = Field(max_length=200)


class ProposeRoutePlan(Command):
    """The planner's result (sent by the planning timer): each day's outlets in order."""

    name = "propose_route_plan"
    plan_id: Id
    days: list[PlannedDay] = Field(max_length=400)
    solver: dict[str, Any] = Field(default_factory=dict)


class FailRoutePlan(Command):
    name = "fail_route_plan"
    plan_id: Id
    reason: Text


class AdoptRoutePlan(Command):
    name = "adopt_route_plan"
    plan_id: Id


class RejectRoutePlan(Command):
    name = "reject_route_plan"
    plan_id: Id
    reason: Text


class DefineStandardPicture(Command):
    """A channel's standard success picture (成功图象) as the checklist the audit ticks."""

    name = "define_standard_picture"
    channel: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+$")]
    items: list[StandardItem] = Field(min_length=1, max_length=50)


class CloseRouteCleanup(Command):
    """Close a district's monthly route cleanup (线路清理); the report as it stands is kept."""

    name = "close_route_cleanup"
    district_id: Id | None = None  # default: the supervisor's district
    month: Annotated[str, Field(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$")]
    notes: Annotated[str, Field(max_length=2000)] | None = None


class SpotCheckDelivery(Command):
    name = "spot_check_delivery"
    personal_fields = frozenset({"notes"})
    order_id: Id
    customer_id: Id
    delivered: bool
    on_time: bool | None = None
    quantities_match: bool
    notes: Annotated[str, Field(max_length=2000)] = ""
