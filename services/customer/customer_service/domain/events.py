"""The events of the customer archive: the contract other services build on (README.md).

Personal data never appears in plain text here: `personal` carries it sealed with the
customer's own key (see adapters/sealing.py), so erasing the key erases it from every stored
and published copy. `personal_fields` names what is sealed (names are not personal).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from customer_service.domain.office_events import OFFICE_EVENTS
from customer_service.domain.values import (
    BaseFacts,
    BusinessStatus,
    Channel,
    Characteristics,
    ContactChannel,
    CreditRating,
    Grade,
    Lifecycle,
    LocationType,
    MergeRule,
    Nature,
    Ownership,
    Position,
    SalesFigures,
    Source,
    StaffRole,
    TradingStatus,
)
from salesplatform.events import Event, EventRegistry

# -- territory and staff (reference data) ---------------------------------------------------


class DivisionDefined(Event):
    event_type = "territory.division_defined"
    division_id: str
    name: str


class AreaDefined(Event):
    event_type = "territory.area_defined"
    area_id: str
    name: str
    division_id: str


class DistrictDefined(Event):
    event_type = "territory.district_defined"
    district_id: str
    name: str
    area_id: str
    division_id: str


class CustomerCodeIssued(Event):
    """The district's next customer number (客编) went to a newly approved customer."""

    event_type = "territory.customer_code_issued"
    district_id: str
    customer_id: str
    customer_code: str
    sequence: int


class StaffAssigned(Event):
    event_type = "staff.assigned"
    staff_id: str
    name: str
    role: StaffRole
    district_id: str | None
    area_id: str | None
    supervisor_id: str | None = None


class StaffDeparted(Event):
    event_type = "staff.departed"
    staff_id: str


# -- the customer card ----------------------------------------------------------------------


class CustomerRegistered(Event):
    event_type = "customer.registered"
    customer_id: str
    name: str
    address: str
    phone: str
    district_id: str
    area_id: str
    division_id: str
    rep_id: str
    channel: Channel
    nature: Nature
    ownership: Ownership | None = None
    location_type: LocationType
    source: Source
    status: Literal["pending"] = "pending"
    verified: bool
    base: BaseFacts
    characteristics: Characteristics
    business_status: BusinessStatus
    trading_status: TradingStatus
    personal: str | None = None
    personal_fields: list[str] = Field(default_factory=list)
    # The outlet's position; null when unknown or sealed (an individual's home: `position` is
    # then among `personal_fields`).
    position: Position | None = None


class CustomerDataVerified(Event):
    """A clerk or supervisor checked what the customer filled in on the form."""

    event_type = "customer.data_verified"
    customer_id: str
    note: str | None = None


class CustomerApproved(Event):
    event_type = "customer.approved"
    customer_id: str
    customer_code: str
    status: Literal["active", "prospect"]
    approved_by: str


class CustomerRejected(Event):
    event_type = "customer.rejected"
    customer_id: str
    reason: str
    rejected_by: str | None = None


class CustomerClassified(Event):
    """All current classification values after the change."""

    event_type = "customer.classified"
    customer_id: str
    nature: Nature
    ownership: Ownership | None
    channel: Channel
    location_type: LocationType
    grade: Grade | None
    basis: Literal["manual", "sales"] = "manual"
    figures: SalesFigures | None = None
    reason: str | None = None


class CreditLimitSet(Event):
    event_type = "customer.credit_limit_set"
    customer_id: str
    credit_rating: CreditRating
    credit_limit_fen: int = Field(ge=0)
    payment_terms_days: int = Field(ge=0)
    reason: str | None = None


class CustomerAssigned(Event):
    event_type = "customer.assigned"
    customer_id: str
    rep_id: str
    district_id: str
    area_id: str
    division_id: str | None = None
    previous_rep_id: str | None
    reason: str


class CustomerStatusChanged(Event):
    event_type = "customer.status_changed"
    customer_id: str
    status: Lifecycle
    reason: str


class CustomerReleased(Event):
    """The 7-day rule: a prospect its rep did not follow up is given up (自动放弃)."""

    event_type = "customer.released"
    customer_id: str
    rep_id: str
    reason: str
    last_follow_up_at: datetime | None = None


class CustomerClaimed(Event):
    event_type = "customer.claimed"
    customer_id: str
    rep_id: str


class ContactLogged(Event):
    """A rep's follow-up other than a visit (phone, WeChat, meeting); the note is sealed."""

    event_type = "customer.contact_logged"
    customer_id: str
    rep_id: str
    at: datetime
    channel: ContactChannel
    personal: str | None = None


class ProfileUpdated(Event):
    """`changes`: the business fields changed (path → new value); personal ones are sealed
    in `personal` and named in `personal_fields`."""

    event_type = "customer.profile_updated"
    customer_id: str
    changes: dict[str, Any]
    reason: str
    personal: str | None = None
    personal_fields: list[str] = Field(default_factory=list)


class CustomerMerged(Event):
    """This card is a duplicate; it now points to the survivor. Its history is kept."""

    event_type = "customer.merged"
    customer_id: str
    survivor_id: str
    reason: str
    rule: MergeRule
    rule_reason: str


class DuplicateAbsorbed(Event):
    """The survivor's side of a merge."""

    event_type = "customer.duplicate_absorbed"
    customer_id: str
    duplicate_id: str
    rule: MergeRule
    reason: str


class PositionSet(Event):
    """Where the outlet is: set on the card, or corrected from a check-in a supervisor
    confirmed (`source: check_in`, with the visit). An individual customer's home position is
    sealed in `personal` (`position` null)."""

    event_type = "customer.position_set"
    customer_id: str
    position: Position | None
    source: Literal["card", "check_in"]
    visit_id: str | None = None
    accuracy_m: float | None = None
    reason: str | None = None
    personal: str | None = None
    personal_fields: list[str] = Field(default_factory=list)


class PersonalDataErased(Event):
    event_type = "customer.personal_data_erased"
    customer_id: str
    reason: str | None = None  # why, for the history; never the person's data itself


registry = EventRegistry(
    [
        DivisionDefined,
        AreaDefined,
        DistrictDefined,
        CustomerCodeIssued,
        StaffAssigned,
        StaffDeparted,
        CustomerRegistered,
        CustomerDataVerified,
        CustomerApproved,
        CustomerRejected,
        CustomerClassified,
        CreditLimitSet,
        CustomerAssigned,
        CustomerStatusChanged,
        CustomerReleased,
        CustomerClaimed,
        ContactLogged,
        ProfileUpdated,
        PositionSet,
        CustomerMerged,
        DuplicateAbsorbed,
        PersonalDataErased,
        *OFFICE_EVENTS,
    ]
)
