"""What the customer queries answer, as the OpenAPI document describes it: ids are strings,
money integer fen, times ISO 8601, a field that may be empty is `null`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from customer_service.domain.values import RegisterKind


class CustomerSummary(BaseModel):
    """A customer in a list (an individual under their label: open the card for the rest)."""

    customer_id: str
    customer_code: str | None
    name: str
    address: str
    phone: str
    status: str
    nature: str
    channel: str
    location_type: str
    grade: str | None
    district_id: str
    area_id: str
    rep_id: str | None
    credit_rating: str | None
    verified: bool
    merged_into: str | None
    registered_at: datetime


class PoolCustomer(CustomerSummary):
    """A released prospect waiting in the pool."""

    released_from: str | None = Field(description="the rep who released it")


class Composition(BaseModel):
    total: int
    by_grade: dict[str, int] = Field(description="customers per grade; `ungraded` for none")
    by_channel: dict[str, int]
    by_district: dict[str, int]


class Classification(BaseModel):
    nature: str
    ownership: str | None
    channel: str
    location_type: str
    grade: str | None
    grade_basis: str | None
    grade_figures: dict[str, Any] | None


class CardTerritory(BaseModel):
    district_id: str
    area_id: str
    division_id: str | None


class Credit(BaseModel):
    credit_rating: str
    credit_limit_fen: int | None
    payment_terms_days: int | None


class Card(BaseModel):
    """The customer card; personal data only as far as the reader may see it."""

    customer_id: str
    customer_code: str | None
    status: str
    name: str
    address: str
    phone: str
    classification: Classification
    territory: CardTerritory
    position: dict[str, Any] | None = Field(description="`latitude` and `longitude`, where known")
    rep_id: str | None
    released_from: str | None
    source: str
    verified: bool
    credit: Credit | None
    merged_into: str | None
    base: dict[str, Any]
    characteristics: dict[str, Any] | None
    business_status: dict[str, Any] | None
    trading_status: dict[str, Any] | None
    contacts: list[dict[str, Any]]
    personal_data: str = Field(description="`present`, `none` or `erased`")
    restricted_fields: str = Field(description="`shown` or `hidden`")
    rejection_reason: str | None
    last_contact_at: datetime | None
    registered_at: datetime
    registered_by: str
    approved_at: datetime | None
    approved_by: str | None
    updated_at: datetime
    version: int


class ActorRef(BaseModel):
    id: str
    role: str


class CardChange(BaseModel):
    version: int
    event_type: str
    at: datetime
    by: ActorRef
    reason: str | None
    data: dict[str, Any]
    personal: dict[str, Any] | str | None = Field(
        None, description="the personal part the change sealed, or `erased`; absent where it sealed none"
    )


class CardHistory(BaseModel):
    customer_id: str
    events: list[CardChange]


class District(BaseModel):
    district_id: str
    name: str


class Area(BaseModel):
    area_id: str
    name: str
    districts: list[District]


class Division(BaseModel):
    division_id: str
    name: str
    areas: list[Area]


class Territory(BaseModel):
    divisions: list[Division]


class StaffMember(BaseModel):
    staff_id: str
    name: str
    role: str
    district_id: str | None
    area_id: str | None
    supervisor_id: str | None
    active: bool
    since: datetime


class StaffList(BaseModel):
    items: list[StaffMember]


class Office(BaseModel):
    """A sales office (案场) of a project."""

    project_id: str
    name: str
    district_id: str
    area_id: str
    division_id: str | None
    opened_at: datetime


class OfficeList(BaseModel):
    items: list[Office]


class RepOnBoard(BaseModel):
    rep_id: str
    name: str | None
    place: int = Field(description="the place on the day's sign-in sheet")
    signed_in_at: datetime
    signed_out_at: datetime | None
    present: bool
    serving_lead_id: str | None
    serving_since: datetime | None
    turns: int
    own_customers: int
    duty_receptions: int


class BoardCounts(BaseModel):
    walk_ins: int
    calls: int
    new_customers: int
    duty_receptions: int


class Board(BaseModel):
    """The day's sign-in sheet, rotation and receptions of an office."""

    project_id: str
    name: str
    business_date: date
    queue: list[str] = Field(description="the reps signed in, the next turn first")
    next_in_turn: str | None = Field(description="who receives the next new customer")
    reps: list[RepOnBoard]
    counts: BoardCounts


class Written(BaseModel):
    name: str | None
    phone: str | None
    note: str | None


class Correction(BaseModel):
    reason: str
    by: str
    at: datetime
    fields: list[str] = Field(description="the fields corrected")


class RegisterLine(BaseModel):
    entry_no: int
    business_date: date
    at: datetime
    lead_id: str
    rep_id: str
    rep_name: str | None
    basis: str
    remark: str | None
    new_lead: bool
    first_visit: bool
    source_channel: str | None
    written: Written = Field(description="what was written first")
    corrected: Written | None = Field(description="what it reads after its corrections, if any")
    corrections: list[Correction]
    personal_data: str = Field(description="`present` or `erased`")


class Register(BaseModel):
    project_id: str
    register_: RegisterKind = Field(alias="register")
    total: int
    limit: int
    offset: int
    items: list[RegisterLine]


class LeadMember(BaseModel):
    relation: str
    name: str | None
    phone: str | None


class Lead(BaseModel):
    lead_id: str
    project_id: str
    source: str
    stage: str
    rep_id: str | None
    rep_name: str | None
    referred_by: str | None
    name: str | None
    phones: list[str]
    members: list[LeadMember]
    personal_data: str = Field(description="`present` or `erased`")
    registered_at: datetime
    visited_at: datetime | None
    last_follow_up_at: datetime | None
    come_to_see_by: datetime | None = Field(description="a phone registration lapses then unless the lead comes")
    follow_up_by: datetime | None = Field(description="a walk-in is released then unless followed up")
    receptions: int
    follow_ups: int


class LeadStep(BaseModel, extra="allow"):
    """One step of a lead's history; with the event's `rep_id`, `kind`, `basis`, `again`,
    `reason`, `channel`, `relation` or `previous_rep_id` where it has them."""

    event: str
    at: datetime
    by: str


class LeadWithHistory(Lead):
    history: list[LeadStep]
