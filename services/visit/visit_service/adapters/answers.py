"""What the visit queries answer, as the OpenAPI document describes it: ids are strings,
money integer fen, days and times ISO 8601, a field that may be empty is `null`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field


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
