"""The sales office (案场) of a property project: the reps' sign-in and the reception rotation
(轮次), duty reception (义务接待), the lead registers (客户登记本), the leads with their 7-day
rules, and who a customer belongs to (业务判定). Pure: aggregates and rules, no I/O.

The procedures' rules, as numbered in README.md ("Sales office"):
- R1 every walk-in and phone enquiry is a line of a register, numbered without gaps, never
  edited in place; a correction is an event with a reason, by the sales manager.
- R2 reps sign in each day; a new customer goes to the next free rep in the rotation, who then
  moves to its end; nobody picks a customer out of turn (抢客) or leaves one being served.
- R3 a returning customer (熟客) goes to the rep who follows them; if that rep is absent or
  busy, the next free rep receives them as duty reception: remark "duty", not a turn, and the
  duty rep does not follow them up.
- R4 a phone (or referral) lead must come to see within 7 days, or the registration lapses and
  a later visit is a new walk-in (a lead with a unit reserved does not lapse).
- R5 a walk-in is followed up at least every 7 days (the rule of `follow_up.py`), or released;
  a released customer who comes again is received as new, and a later sale counts for the rep
  who received them again. A lead with a unit reserved is not released.
- R6 spouses, parents and children are one customer, so are a company's shareholders; siblings
  and other relatives are not. A referral belongs to the rep who first took down the new
  customer's phone number. A dispute the reps do not settle is decided by the sales manager.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from customer_service.domain.follow_up import FOLLOW_UP_WINDOW, follow_up_overdue
from customer_service.domain.office_events import (
    CustomerReceived,
    LeadDetailsCorrected,
    LeadDisputeDecided,
    LeadFollowedUp,
    LeadLapsed,
    LeadMemberAdded,
    LeadPersonalDataErased,
    LeadReceived,
    LeadRegistered,
    LeadReleased,
    ReceptionFinished,
    RegisterEntryCorrected,
    RegisterEntryRecorded,
    RepSignedIn,
    RepSignedOut,
    SalesOfficeOpened,
)
from customer_service.domain.territory import StaffMember, TerritoryUnit
from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Event

# Seals a personal part (name, phone, note) with the lead's key; the result is opaque text.
Seal = Callable[[dict[str, Any]], str]

# R4: a phone lead must come to see within this (电话客户要求7天内上门看房).
VIEWING_WINDOW = timedelta(days=7)
# R6: who buys together and is one customer.
SAME_CUSTOMER = frozenset({"spouse", "parent", "child", "shareholder"})
DUTY_REMARK = "duty"


class UnknownEvent(TypeError):
    """An aggregate was given an event type it does not know: a programming error."""


# -- rules ------------------------------------------------------------------------------------


def phone_lead_lapsed(since: datetime, now: datetime) -> bool:
    """R4: more than 7 days since the call (or referral) without a visit."""
    return now - since > VIEWING_WINDOW


def lapse_due_before(now: datetime) -> datetime:
    """Phone leads registered before this instant and not seen are due to lapse."""
    return now - VIEWING_WINDOW


def same_customer(relation: str) -> bool:
    """R6: whether someone buying with a lead is the same customer."""
    return relation in SAME_CUSTOMER


def choose_receiver(
    queue: Sequence[str], busy: Collection[str], own_rep: str | None, asked: str | None
) -> tuple[str, str]:
    """R2, R3: who receives a customer, and on what basis (turn, own, duty).

    `queue`: the reps signed in, in rotation order (the next turn first); `busy`: reps serving
    a walk-in; `own_rep`: the rep who follows a returning customer (None for a new one);
    `asked`: the rep who wants to receive them (None: the front desk lets the rotation say).
    A new customer goes to the first free rep; a returning one to their rep if present and
    free, else to the first free rep as duty. Asking for anyone else is taking a customer out
    of turn."""
    free = [r for r in queue if r not in busy]
    if own_rep is not None and own_rep in queue and own_rep not in busy:
        chosen, basis = own_rep, "own"
    else:
        if not free:
            raise DomainError("every rep signed in is serving a customer; the customer waits", code="no_rep_free")
        chosen, basis = free[0], "turn" if own_rep is None else "duty"
    if asked is not None and asked != chosen:
        if asked in busy:
            raise DomainError(
                f"rep {asked} is serving a customer and may not leave them for another", code="serving_another_customer"
            )
        if asked not in queue:
            raise DomainError(f"rep {asked} has not signed in today", code="not_signed_in")
        raise DomainError(f"the customer is {chosen}'s ({basis}); {asked} may not take them", code="out_of_turn")
    return chosen, basis


def day_id(project_id: str, day: date) -> str:
    return f"{project_id}@{day.isoformat()}"


def register_id(project_id: str, register: str) -> str:
    return f"{project_id}@{register}"


# -- the sales office ---------------------------------------------------------------------------


class SalesOffice(Aggregate):
    """The sales office (售楼处) of a project; the id is the project's."""

    stream_prefix = "sales_office"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.name = ""
        self.district_id: str | None = None
        self.area_id: str | None = None
        self.division_id: str | None = None

    def apply(self, event: Event) -> None:
        match event:
            case SalesOfficeOpened():
                self.name, self.district_id = event.name, event.district_id
                self.area_id, self.division_id = event.area_id, event.division_id
            case _:
                raise UnknownEvent(event.event_type)

    def open(self, name: str, district: TerritoryUnit) -> None:
        if not district.is_a("district"):
            raise DomainError(f"unknown district {district.id}", code="unknown_district", field="district_id")
        if self.exists and self.district_id != district.id:
            raise DomainError(
                f"the sales office of {self.id} is in district {self.district_id}; it does not move",
                code="office_district_fixed",
                field="district_id",
            )
        if self.exists and self.name == name:
            return
        assert district.area_id is not None and district.division_id is not None
        self.record(
            SalesOfficeOpened(
                project_id=self.id,
                name=name,
                district_id=district.id,
                area_id=district.area_id,
                division_id=district.division_id,
            )
        )

    def require_open(self) -> None:
        if not self.exists:
            raise DomainError(f"project {self.id} has no sales office", code="unknown_office", field="project_id")

    def require_rep_of_office(self, rep: StaffMember) -> None:
        if not rep.is_active_rep:
            raise DomainError(f"{rep.id} is not an active rep", code="unknown_rep", field="rep_id")
        if rep.district_id != self.district_id:
            raise PermissionDenied(
                f"rep {rep.id} works in district {rep.district_id}, not at the office of {self.id}",
                code="not_an_office_rep",
            )


# -- the day's reception ---------------------------------------------------------------------------


class ReceptionDay(Aggregate):
    """One business day of a sales office: the sign-in sheet (签到簿) and the rotation. One
    stream per office and day, so receptions of one office are decided one after the other."""

    stream_prefix = "reception"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.queue: tuple[str, ...] = ()  # reps signed in, next turn first
        self.places: dict[str, int] = {}  # sign-in order of everyone who signed in
        self.serving: dict[str, str] = {}  # rep → lead being served
        self.turns: dict[str, int] = {}

    def apply(self, event: Event) -> None:
        match event:
            case RepSignedIn():
                self.queue = (*self.queue, event.rep_id)
                self.places = {**self.places, event.rep_id: event.place}
            case RepSignedOut():
                self.queue = tuple(r for r in self.queue if r != event.rep_id)
            case CustomerReceived():
                if event.kind == "walk_in":
                    self.serving = {**self.serving, event.rep_id: event.lead_id}
                if event.basis == "turn":
                    # The rep who took a turn goes to the end of the rotation.
                    self.queue = (*(r for r in self.queue if r != event.rep_id), event.rep_id)
                    self.turns = {**self.turns, event.rep_id: self.turns.get(event.rep_id, 0) + 1}
            case ReceptionFinished():
                self.serving = {r: lead for r, lead in self.serving.items() if r != event.rep_id}
            case _:
                raise UnknownEvent(event.event_type)

    def sign_in(self, office: SalesOffice, day: date, rep: StaffMember, at: datetime) -> None:
        office.require_open()
        office.require_rep_of_office(rep)
        if rep.id in self.queue:
            raise DomainError(f"{rep.id} has already signed in today", code="already_signed_in")
        self.record(
            RepSignedIn(project_id=office.id, business_date=day, rep_id=rep.id, place=len(self.places) + 1, at=at)
        )

    def sign_out(self, project_id: str, day: date, rep_id: str, at: datetime) -> None:
        if rep_id not in self.queue:
            raise DomainError(f"{rep_id} is not signed in", code="not_signed_in")
        if rep_id in self.serving:
            raise DomainError(f"{rep_id} is serving a customer; finish first", code="still_serving")
        self.record(RepSignedOut(project_id=project_id, business_date=day, rep_id=rep_id, at=at))

    def receive(
        self,
        project_id: str,
        day: date,
        kind: str,
        lead_id: str,
        *,
        own_rep: str | None,
        asked: str | None,
        at: datetime,
    ) -> tuple[str, str]:
        """Record who receives the customer; returns (rep, basis)."""
        if lead_id in self.serving.values():
            raise DomainError(f"customer {lead_id} is being served already", code="customer_being_served")
        rep, basis = choose_receiver(self.queue, set(self.serving), own_rep, asked)
        self.record(
            CustomerReceived(
                project_id=project_id,
                business_date=day,
                rep_id=rep,
                lead_id=lead_id,
                kind=kind,
                basis=basis,
                at=at,
            )
        )
        return rep, basis

    def finish(self, project_id: str, day: date, rep_id: str, at: datetime) -> str:
        lead_id = self.serving.get(rep_id)
        if lead_id is None:
            raise DomainError(f"{rep_id} is serving nobody", code="not_serving")
        self.record(ReceptionFinished(project_id=project_id, business_date=day, rep_id=rep_id, lead_id=lead_id, at=at))
        return lead_id


# -- the registers --------------------------------------------------------------------------------


class LeadRegister(Aggregate):
    """One register of an office (walk-ins or phone enquiries): lines numbered 1, 2, 3 … with
    no gaps (R1); kept by the sales manager."""

    stream_prefix = "lead_register"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.entries: tuple[str, ...] = ()  # the lead of each line, line n at index n - 1

    def apply(self, event: Event) -> None:
        match event:
            case RegisterEntryRecorded():
                self.entries = (*self.entries, event.lead_id)
            case RegisterEntryCorrected():
                pass
            case _:
                raise UnknownEvent(event.event_type)

    def enter(
        self,
        project_id: str,
        register: str,
        day: date,
        at: datetime,
        *,
        lead_id: str,
        rep_id: str,
        basis: str,
        new_lead: bool,
        first_visit: bool,
        source_channel: str | None,
        personal: dict[str, Any],
        seal: Seal,
    ) -> int:
        entry_no = len(self.entries) + 1
        self.record(
            RegisterEntryRecorded(
                project_id=project_id,
                register_kind=register,
                entry_no=entry_no,
                business_date=day,
                at=at,
                lead_id=lead_id,
                rep_id=rep_id,
                basis=basis,
                new_lead=new_lead,
                first_visit=first_visit,
                remark=DUTY_REMARK if basis == "duty" else None,
                source_channel=source_channel,
                personal=seal(personal) if personal else None,
                personal_fields=sorted(personal),
            )
        )
        return entry_no

    def lead_of(self, entry_no: int) -> str:
        if not 1 <= entry_no <= len(self.entries):
            raise DomainError(f"register line {entry_no} does not exist", code="unknown_entry", field="entry_no")
        return self.entries[entry_no - 1]

    def correct(
        self,
        project_id: str,
        register: str,
        entry_no: int,
        *,
        source_channel: str | None,
        personal: dict[str, Any],
        reason: str,
        corrected_by: str,
        seal: Seal,
    ) -> str:
        lead_id = self.lead_of(entry_no)
        if source_channel is None and not personal:
            raise DomainError("nothing to correct", code="nothing_to_correct")
        self.record(
            RegisterEntryCorrected(
                project_id=project_id,
                register_kind=register,
                entry_no=entry_no,
                lead_id=lead_id,
                source_channel=source_channel,
                personal=seal(personal) if personal else None,
                personal_fields=sorted(personal),
                reason=reason,
                corrected_by=corrected_by,
            )
        )
        return lead_id


# -- the leads ----------------------------------------------------------------------------------------


class Lead(Aggregate):
    """A customer of a sales office (a person, a family, or a company and its shareholders),
    known by the phone numbers registered with them, and the rep who follows them."""

    stream_prefix = "lead"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.project_id = ""
        self.district_id: str | None = None
        self.area_id: str | None = None
        self.source = ""
        self.stage = ""
        self.rep_id: str | None = None
        self.phone_since: datetime | None = None  # when the phone (or referral) registration began
        self.visited_at: datetime | None = None  # first visit
        self.last_follow_up_at: datetime | None = None  # the walk-in's 7 days run from here
        self.erased = False

    def apply(self, event: Event) -> None:
        match event:
            case LeadRegistered():
                self.project_id, self.source, self.rep_id = event.project_id, event.source, event.rep_id
                self.district_id, self.area_id = event.district_id, event.area_id
                self.phone_since = event.at
                if event.source == "walk_in":
                    self.stage, self.visited_at, self.last_follow_up_at = "walk_in", event.at, event.at
                else:
                    self.stage = "phone"
            case LeadReceived():
                self.rep_id = event.following_rep_id
                if event.kind == "walk_in":
                    if self.stage != "walk_in" or event.basis != "duty":
                        # A visit starts (or, by the own rep, restarts) the walk-in's 7 days; a
                        # duty reception of a walk-in is nobody's follow-up.
                        self.last_follow_up_at = event.at
                    self.stage = "walk_in"
                    self.visited_at = self.visited_at or event.at
                elif event.again:
                    self.stage, self.phone_since = "phone", event.at
                elif event.basis == "own" and self.stage == "walk_in":
                    self.last_follow_up_at = event.at
            case LeadFollowedUp():
                self.last_follow_up_at = event.at
            case LeadLapsed():
                self.stage, self.rep_id = "lapsed", None
            case LeadReleased():
                self.stage, self.rep_id = "released", None
            case LeadDisputeDecided():
                self.rep_id = event.rep_id
                if self.stage in ("lapsed", "released"):
                    self.stage = "walk_in" if self.visited_at is not None else "phone"
                self.phone_since = self.last_follow_up_at = event.at
            case LeadMemberAdded() | LeadDetailsCorrected():
                self.erased = False
            case LeadPersonalDataErased():
                self.erased = True
            case _:
                raise UnknownEvent(event.event_type)

    # -- registration --------------------------------------------------------------------------

    def register(
        self,
        office: SalesOffice,
        source: str,
        rep_id: str,
        at: datetime,
        *,
        personal: dict[str, Any],
        seal: Seal,
        referred_by: str | None = None,
    ) -> None:
        if self.exists:
            raise DomainError(f"lead {self.id} already exists", code="lead_exists", field="lead_id")
        assert office.district_id is not None and office.area_id is not None
        self.record(
            LeadRegistered(
                lead_id=self.id,
                project_id=office.id,
                district_id=office.district_id,
                area_id=office.area_id,
                source=source,
                rep_id=rep_id,
                referred_by=referred_by,
                at=at,
                personal=seal(personal) if personal else None,
                personal_fields=sorted(personal),
            )
        )

    # -- who they belong to now --------------------------------------------------------------------

    def due_to_lapse(self, now: datetime, has_deal: bool) -> bool:
        return (
            self.stage == "phone"
            and not has_deal
            and self.phone_since is not None
            and phone_lead_lapsed(self.phone_since, now)
        )

    def due_for_release(self, now: datetime, has_deal: bool) -> bool:
        return (
            self.stage == "walk_in"
            and not has_deal
            and self.last_follow_up_at is not None
            and follow_up_overdue(self.last_follow_up_at, now)
        )

    def settle(self, now: datetime, has_deal: bool) -> None:
        """Before a reception: a registration whose 7 days ran out lapses (R4) or is released
        (R5) now, even if the timer has not come round yet, so the customer is received as new."""
        if self.due_to_lapse(now, has_deal):
            self.lapse(now, has_deal)
        elif self.due_for_release(now, has_deal):
            assert self.rep_id is not None and self.last_follow_up_at is not None
            self.release(self.rep_id, now, has_deal)

    @property
    def following_rep(self) -> str | None:
        """The rep the customer returns to (R3), or None: they are received as new."""
        return self.rep_id if self.stage in ("phone", "walk_in") else None

    def receive(self, kind: str, rep_id: str, basis: str, at: datetime) -> LeadReceived:
        """A reception of this known customer (after `settle`)."""
        self._ensure_known()
        again = self.following_rep is None
        following = rep_id if again else self.rep_id
        assert following is not None
        first_visit = kind == "walk_in" and self.visited_at is None
        event = LeadReceived(
            lead_id=self.id,
            project_id=self.project_id,
            kind=kind,
            basis=basis,
            rep_id=rep_id,
            following_rep_id=following,
            again=again,
            first_visit=first_visit,
            viewing_in_time=kind == "walk_in" and self.stage == "phone" and not again,
            at=at,
        )
        self.record(event)
        return event

    def _ensure_known(self) -> None:
        if not self.exists:
            raise DomainError(f"lead {self.id} does not exist", code="lead_not_found", field="lead_id")

    # -- follow-up, lapse, release (R4, R5) ------------------------------------------------------

    def follow_up(self, rep_id: str, channel: str, at: datetime, note: str | None, seal: Seal) -> None:
        """`rep_id`: the rep who followed up. Only the rep who follows the customer does; a duty
        reception gives no right to (R3)."""
        self._ensure_known()
        if self.following_rep is None:
            raise DomainError(f"lead {self.id} is {self.stage}: nobody follows them", code="lead_not_followed")
        if rep_id != self.rep_id:
            raise PermissionDenied(
                f"lead {self.id} is followed by {self.rep_id}; {rep_id} may not follow them up", code="not_your_lead"
            )
        self.record(
            LeadFollowedUp(
                lead_id=self.id,
                project_id=self.project_id,
                rep_id=rep_id,
                channel=channel,
                at=at,
                personal=seal({"note": note}) if note else None,
            )
        )

    def lapse(self, now: datetime, has_deal: bool) -> None:
        self._ensure_known()
        if has_deal:
            raise DomainError(f"lead {self.id} has a unit reserved", code="lead_has_a_deal")
        if not self.due_to_lapse(now, has_deal):
            raise DomainError(f"lead {self.id} is not a phone lead past its 7 days", code="not_due")
        assert self.rep_id is not None and self.phone_since is not None
        days = VIEWING_WINDOW.days
        self.record(
            LeadLapsed(
                lead_id=self.id,
                project_id=self.project_id,
                rep_id=self.rep_id,
                since=self.phone_since,
                reason=f"did not come to see within {days} days (registered {self.phone_since.isoformat()})",
            )
        )

    def release(self, rep_id: str, now: datetime, has_deal: bool) -> None:
        self._ensure_known()
        if self.rep_id != rep_id or self.stage != "walk_in":
            raise DomainError(f"lead {self.id} is no longer {rep_id}'s walk-in", code="rep_changed")
        if has_deal:
            raise DomainError(f"lead {self.id} has a unit reserved", code="lead_has_a_deal")
        if not self.due_for_release(now, has_deal):
            raise DomainError(f"lead {self.id} was followed up within {FOLLOW_UP_WINDOW.days} days", code="not_due")
        assert self.last_follow_up_at is not None
        self.record(
            LeadReleased(
                lead_id=self.id,
                project_id=self.project_id,
                rep_id=rep_id,
                last_follow_up_at=self.last_follow_up_at,
                reason=f"not followed up for more than {FOLLOW_UP_WINDOW.days} days"
                f" (since {self.last_follow_up_at.isoformat()})",
            )
        )

    # -- who a customer is (R6) -----------------------------------------------------------------------

    def decide_dispute(self, rep: StaffMember, office: SalesOffice, reason: str, decided_by: str, at: datetime) -> None:
        self._ensure_known()
        office.require_rep_of_office(rep)
        if rep.id == self.rep_id:
            raise DomainError(f"lead {self.id} is already {rep.id}'s", code="already_theirs")
        self.record(
            LeadDisputeDecided(
                lead_id=self.id,
                project_id=self.project_id,
                rep_id=rep.id,
                previous_rep_id=self.rep_id,
                reason=reason,
                decided_by=decided_by,
                at=at,
            )
        )

    def add_member(self, relation: str, personal: dict[str, Any], seal: Seal) -> None:
        self._ensure_known()
        if not same_customer(relation):
            raise DomainError(
                f"a {relation} is not the same customer (siblings and other relatives are customers of their own)",
                code="not_same_customer",
                field="relation",
            )
        self.record(
            LeadMemberAdded(
                lead_id=self.id,
                project_id=self.project_id,
                relation=relation,
                personal=seal(personal),
                personal_fields=sorted(personal),
            )
        )

    def correct_details(self, personal: dict[str, Any], reason: str, seal: Seal) -> None:
        self._ensure_known()
        self.record(
            LeadDetailsCorrected(
                lead_id=self.id,
                project_id=self.project_id,
                reason=reason,
                personal=seal(personal),
                personal_fields=sorted(personal),
            )
        )

    def erase_personal_data(self, reason: str | None) -> None:
        self._ensure_known()
        if self.erased:
            raise DomainError(f"the personal data of lead {self.id} is already erased", code="already_erased")
        self.record(LeadPersonalDataErased(lead_id=self.id, project_id=self.project_id, reason=reason))
