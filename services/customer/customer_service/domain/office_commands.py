"""The commands of the sales offices (案场). Shape errors are 422 with field details; rules are
checked by the aggregates of `reception.py`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from customer_service.domain.values import (
    FollowUpChannel,
    Id,
    Name,
    Phone,
    Reason,
    RegisterKind,
    Relation,
    Text,
)
from salesplatform.command import Command


class RelatedTo(BaseModel):
    """The visitor comes with (or for) a known lead: a spouse, parent or child, or a shareholder
    of the buying company, is that customer; a sibling or other relative is a customer of their
    own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lead_id: Id
    relation: Relation


class OpenSalesOffice(Command):
    """Open (or rename) the sales office (售楼处) of a project in a district."""

    name = "open_sales_office"
    project_id: Id
    office_name: Name = Field(alias="name")
    district_id: Id


class SignIn(Command):
    """A rep signs the day's sign-in sheet (签到): the rotation follows arrival order."""

    name = "sign_in"
    project_id: Id
    rep_id: Id | None = None  # a rep signs in for self; an attendance system names the rep


class SignOut(Command):
    """A rep leaves the office for the day (or for now): out of the rotation."""

    name = "sign_out"
    project_id: Id
    rep_id: Id | None = None


class _Reception(Command):
    # A visitor's phone, name and the note about them: left out of a dead letter no key seals.
    personal_fields = frozenset({"phone", "name", "note"})
    project_id: Id
    phone: Phone
    customer_name: Name | None = Field(None, alias="name")
    note: Text | None = None
    source_channel: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    related_to: RelatedTo | None = None
    # A rep receiving asks for self; the front desk may name a rep, who must be the one the
    # rotation gives (or is left to the rotation when not named).
    rep_id: Id | None = None


class ReceiveWalkIn(_Reception):
    """A walk-in (上门): the next rep in turn, or the customer's own rep (duty if absent or busy)
    receives them and serves them until `finish_reception`; a line of the walk-in register."""

    name = "receive_walk_in"


class ReceivePhoneEnquiry(_Reception):
    """A phone enquiry (来电), taken like a walk-in (in turn, or by the customer's own rep); a line
    of the phone register. The caller must come to see within 7 days."""

    name = "receive_phone_enquiry"


class FinishReception(Command):
    """The walk-in a rep was serving has left: the rep is free for the next customer."""

    name = "finish_reception"
    project_id: Id
    rep_id: Id | None = None


class RegisterReferral(Command):
    """A customer refers someone: the referring customer's rep takes down the new customer's
    phone number, and the new customer is theirs (熟客介绍, 以取得新客户的联系电话为准)."""

    name = "register_referral"
    personal_fields = frozenset({"phone", "name", "note"})
    project_id: Id
    referrer_lead_id: Id
    phone: Phone
    customer_name: Name | None = Field(None, alias="name")
    note: Text | None = None


class AddLeadMember(Command):
    """Someone who is the same customer as a lead (spouse, parent, child, shareholder)."""

    name = "add_lead_member"
    personal_fields = frozenset({"name", "phone"})
    lead_id: Id
    relation: Relation
    member_name: Name = Field(alias="name")
    phone: Phone | None = None


class LogLeadFollowUp(Command):
    """A follow-up of a lead by its rep, as written in the follow-up book (跟踪本)."""

    name = "log_lead_follow_up"
    personal_fields = frozenset({"note"})
    lead_id: Id
    channel: FollowUpChannel
    note: Text | None = None


class CorrectRegisterEntry(Command):
    """Correct a register line (its name, phone, note or source channel), with a reason: the
    line stays as written, the correction is recorded beside it."""

    name = "correct_register_entry"
    personal_fields = frozenset({"name", "phone", "note"})
    project_id: Id
    register_kind: RegisterKind = Field(alias="register")
    entry_no: Annotated[int, Field(ge=1)]
    customer_name: Name | None = Field(None, alias="name")
    phone: Phone | None = None
    note: Text | None = None
    source_channel: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    reason: Reason


class DecideLeadDispute(Command):
    """The sales manager decides which rep a disputed customer belongs to."""

    name = "decide_lead_dispute"
    lead_id: Id
    rep_id: Id
    reason: Reason


class LapseLead(Command):
    """Run by the follow-up timer: a phone lead not seen within 7 days lapses."""

    name = "lapse_lead"
    lead_id: Id


class ReleaseLead(Command):
    """Run by the follow-up timer: a walk-in not followed up for more than 7 days is released."""

    name = "release_lead"
    lead_id: Id
    rep_id: Id


class EraseLeadPersonalData(Command):
    """Erase a lead's names and phone numbers on request; the figures stay."""

    name = "erase_lead_personal_data"
    lead_id: Id
    reason: Reason | None = None
