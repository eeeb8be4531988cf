"""The events of the sales offices (案场): the office, the day's reception, the lead registers
and the leads. Flat records; the contract is in README.md ("Events published").

Names and phone numbers of leads are personal data: they appear only sealed in `personal`
(with the lead's own key, see adapters/sealing.py), named in `personal_fields`.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from customer_service.domain.values import (
    FollowUpChannel,
    LeadSource,
    ReceptionBasis,
    RegisterKind,
    Relation,
)
from salesplatform.events import Event


class SalesOfficeOpened(Event):
    """A project's sales office (售楼处) in a district; its reps are the district's reps."""

    event_type = "sales_office.opened"
    project_id: str
    name: str
    district_id: str
    area_id: str
    division_id: str


# -- the day's reception (签到, 轮次) ---------------------------------------------------------


class RepSignedIn(Event):
    """A rep signed the day's sign-in sheet; `place` is the order of arrival (1 = first)."""

    event_type = "reception.signed_in"
    project_id: str
    business_date: date
    rep_id: str
    place: int
    at: datetime


class RepSignedOut(Event):
    event_type = "reception.signed_out"
    project_id: str
    business_date: date
    rep_id: str
    at: datetime


class CustomerReceived(Event):
    """A rep took a walk-in (now serving them) or a phone enquiry. `basis`: turn (counted in
    the rotation), own (the customer's own rep) or duty (义务接待, not a turn)."""

    event_type = "reception.customer_received"
    project_id: str
    business_date: date
    rep_id: str
    lead_id: str
    kind: RegisterKind
    basis: ReceptionBasis
    at: datetime


class ReceptionFinished(Event):
    """The walk-in a rep was serving has left: the rep is free again."""

    event_type = "reception.finished"
    project_id: str
    business_date: date
    rep_id: str
    lead_id: str
    at: datetime


# -- the lead registers (客户登记本) ------------------------------------------------------------


class RegisterEntryRecorded(Event):
    """The next line of a register: numbered without gaps, never edited in place. `remark` is
    "duty" for a duty reception (备注栏注明“义务”). `new_lead`: received as a new customer (not
    known before, or their registration lapsed or they were released); `first_visit`: a walk-in
    who never visited before (a phone lead coming to see)."""

    event_type = "lead_register.entry_recorded"
    project_id: str
    register_kind: RegisterKind
    entry_no: int
    business_date: date
    at: datetime
    lead_id: str
    rep_id: str
    basis: ReceptionBasis
    new_lead: bool
    first_visit: bool
    remark: str | None = None
    source_channel: str | None = None  # how the customer heard of the project (media, signs, …)
    personal: str | None = None  # sealed: name, phone, note
    personal_fields: list[str] = Field(default_factory=list)


class RegisterEntryCorrected(Event):
    """A correction of a register line, with its reason (the line itself stays as written)."""

    event_type = "lead_register.entry_corrected"
    project_id: str
    register_kind: RegisterKind
    entry_no: int
    lead_id: str
    source_channel: str | None = None
    personal: str | None = None  # sealed: the corrected name, phone or note
    personal_fields: list[str] = Field(default_factory=list)
    reason: str
    corrected_by: str


# -- the leads ----------------------------------------------------------------------------------


class LeadRegistered(Event):
    """A customer of the office, known from now on by the phone numbers sealed here."""

    event_type = "lead.registered"
    lead_id: str
    project_id: str
    district_id: str
    area_id: str
    source: LeadSource
    rep_id: str
    referred_by: str | None = None
    at: datetime
    personal: str | None = None  # sealed: name, phone
    personal_fields: list[str] = Field(default_factory=list)


class LeadReceived(Event):
    """A known customer came again (walk_in) or called (phone). `rep_id` received them;
    `following_rep_id` follows them afterwards (a duty rep does not). `again`: they had
    lapsed or been released and were received as a new customer, in turn. `viewing_in_time`:
    a phone lead came to see within its 7 days."""

    event_type = "lead.received"
    lead_id: str
    project_id: str
    kind: RegisterKind
    basis: ReceptionBasis
    rep_id: str
    following_rep_id: str
    again: bool
    first_visit: bool
    viewing_in_time: bool
    at: datetime


class LeadFollowedUp(Event):
    """A follow-up by the lead's rep, written in the follow-up book (跟踪本); the note is sealed."""

    event_type = "lead.followed_up"
    lead_id: str
    project_id: str
    rep_id: str
    channel: FollowUpChannel
    at: datetime
    personal: str | None = None


class LeadLapsed(Event):
    """A phone (or referral) lead who did not come to see within 7 days: the registration is
    void (客户登记属作废); a later visit is a new walk-in."""

    event_type = "lead.lapsed"
    lead_id: str
    project_id: str
    rep_id: str
    since: datetime
    reason: str


class LeadReleased(Event):
    """A walk-in not followed up for more than 7 days is given up (视为自动放弃); if they buy
    later, the sale counts for the rep who receives them again."""

    event_type = "lead.released"
    lead_id: str
    project_id: str
    rep_id: str
    last_follow_up_at: datetime
    reason: str


class LeadDisputeDecided(Event):
    """Reps did not settle who a customer belongs to; the sales manager decided (判定准则1)."""

    event_type = "lead.dispute_decided"
    lead_id: str
    project_id: str
    rep_id: str
    previous_rep_id: str | None
    reason: str
    decided_by: str
    at: datetime


class LeadMemberAdded(Event):
    """Someone who buys with the lead and is the same customer (spouse, parent, child, a
    shareholder of the buying company); their name and phone are sealed."""

    event_type = "lead.member_added"
    lead_id: str
    project_id: str
    relation: Relation
    personal: str | None = None
    personal_fields: list[str] = Field(default_factory=list)


class LeadDetailsCorrected(Event):
    """The lead's name or phone corrected (from a register correction), sealed."""

    event_type = "lead.details_corrected"
    lead_id: str
    project_id: str
    reason: str
    personal: str | None = None
    personal_fields: list[str] = Field(default_factory=list)


class LeadPersonalDataErased(Event):
    event_type = "lead.personal_data_erased"
    lead_id: str
    project_id: str
    reason: str | None = None


OFFICE_EVENTS: tuple[type[Event], ...] = (
    SalesOfficeOpened,
    RepSignedIn,
    RepSignedOut,
    CustomerReceived,
    ReceptionFinished,
    RegisterEntryRecorded,
    RegisterEntryCorrected,
    LeadRegistered,
    LeadReceived,
    LeadFollowedUp,
    LeadLapsed,
    LeadReleased,
    LeadDisputeDecided,
    LeadMemberAdded,
    LeadDetailsCorrected,
    LeadPersonalDataErased,
)
