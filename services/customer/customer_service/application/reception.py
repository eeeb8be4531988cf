"""Command handlers of the sales offices (案场): load → check the line → decide → save, one
function each, registered on the bus by `register` (see `handlers.build_bus`).

A reception touches the day's rotation, the lead and a register in one transaction; the day's
stream orders the receptions of an office, and a claim on the phone number orders every command
that gives that number to a lead (see `adapters/lead_phones.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from customer_service.adapters import lead_phones, sealing
from customer_service.adapters.sealing import LEADS, open_sealed
from customer_service.domain.access import require_in_line
from customer_service.domain.office_commands import (
    AddLeadMember,
    CorrectRegisterEntry,
    DecideLeadDispute,
    EraseLeadPersonalData,
    FinishReception,
    LapseLead,
    LogLeadFollowUp,
    OpenSalesOffice,
    ReceivePhoneEnquiry,
    ReceiveWalkIn,
    RegisterReferral,
    ReleaseLead,
    SignIn,
    SignOut,
    _Reception,
)
from customer_service.domain.reception import (
    Lead,
    LeadRegister,
    ReceptionDay,
    SalesOffice,
    day_id,
    register_id,
    same_customer,
)
from customer_service.domain.territory import StaffMember, TerritoryUnit
from customer_service.queries import offices
from salesplatform.clock import business_date
from salesplatform.commands import CommandBus, bound, invalid
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Actor, Role
from salesplatform.territory import Place
from salesplatform.uow import UnitOfWork

Handler = Callable[[Any, UnitOfWork], Awaitable[dict[str, Any]]]

MANAGERS = {Role.sales_manager, Role.general_manager}
LINE = {Role.supervisor, Role.area_manager, *MANAGERS}
FRONT_DESK = {Role.rep, Role.clerk, Role.system, *LINE}


# -- lines of command ------------------------------------------------------------------------------


def require_office_line(actor: Actor, office: SalesOffice, rep_id: str | None = None) -> None:
    """The one place the office's commands check the line of command: a rep acts only for
    self (or their own lead, `rep_id`), a supervisor for the office's district, an area manager
    for its area; managers, the clerk and other systems for every office."""
    require_in_line(
        actor,
        Place(
            rep_id=rep_id if actor.role == Role.rep else None, district_id=office.district_id, area_id=office.area_id
        ),
    )


async def _office(uow: UnitOfWork, project_id: str) -> SalesOffice:
    office = await uow.load(SalesOffice, project_id)
    office.require_open()
    return office


async def _office_rep(uow: UnitOfWork, office: SalesOffice, rep_id: str) -> StaffMember:
    rep = await uow.load(StaffMember, rep_id)
    office.require_rep_of_office(rep)
    return rep


async def _rep_acting(uow: UnitOfWork, office: SalesOffice, named: str | None) -> str:
    """The rep a sign-in, sign-out or finish is about: a rep for self, others name the rep."""
    actor = uow.actor
    if actor.role == Role.rep:
        if named not in (None, actor.id):
            raise PermissionDenied(f"rep {actor.id} acts for self only", code="not_yourself")
        rep_id = actor.id
    else:
        if named is None:
            raise invalid("rep_id", "name the rep", code="rep_required")
        rep_id = named
    require_office_line(actor, office, rep_id)
    await _office_rep(uow, office, rep_id)
    return rep_id


async def _lead(uow: UnitOfWork, lead_id: str) -> tuple[Lead, SalesOffice]:
    lead = await uow.get(Lead, lead_id, what="lead")
    office = await _office(uow, lead.project_id)
    return lead, office


def _day(uow: UnitOfWork, timezone: str) -> date:
    return business_date(uow.clock.now(), timezone)


def _personal(**values: str | None) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# -- the office and the day ----------------------------------------------------------------------


async def open_sales_office(cmd: OpenSalesOffice, uow: UnitOfWork) -> dict[str, Any]:
    """Open (or rename) the sales office of a project in a district."""
    office = await uow.load(SalesOffice, cmd.project_id)
    office.open(cmd.office_name, await uow.load(TerritoryUnit, cmd.district_id))
    await uow.save(office)
    return {"project_id": office.id, "district_id": office.district_id, "name": office.name}


async def sign_in(cmd: SignIn, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """A rep signs the day's sign-in sheet (签到); the rotation follows the order of arrival."""
    office = await _office(uow, cmd.project_id)
    rep_id = await _rep_acting(uow, office, cmd.rep_id)
    day = _day(uow, timezone)
    reception = await uow.load(ReceptionDay, day_id(office.id, day))
    reception.sign_in(office, day, await uow.load(StaffMember, rep_id), uow.clock.now())
    await uow.save(reception)
    return {"project_id": office.id, "business_date": day.isoformat(), "rep_id": rep_id, "queue": list(reception.queue)}


async def sign_out(cmd: SignOut, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """A rep leaves the office: out of the rotation (their customers get duty reception)."""
    office = await _office(uow, cmd.project_id)
    rep_id = await _rep_acting(uow, office, cmd.rep_id)
    day = _day(uow, timezone)
    reception = await uow.load(ReceptionDay, day_id(office.id, day))
    reception.sign_out(office.id, day, rep_id, uow.clock.now())
    await uow.save(reception)
    return {"project_id": office.id, "rep_id": rep_id, "queue": list(reception.queue)}


async def finish_reception(cmd: FinishReception, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """The walk-in a rep was serving has left: the rep is free again."""
    office = await _office(uow, cmd.project_id)
    rep_id = await _rep_acting(uow, office, cmd.rep_id)
    day = _day(uow, timezone)
    reception = await uow.load(ReceptionDay, day_id(office.id, day))
    lead_id = reception.finish(office.id, day, rep_id, uow.clock.now())
    await uow.save(reception)
    return {"project_id": office.id, "rep_id": rep_id, "lead_id": lead_id}


# -- receptions ------------------------------------------------------------------------------------


async def _receive(cmd: _Reception, uow: UnitOfWork, kind: str, timezone: str) -> dict[str, Any]:
    office = await _office(uow, cmd.project_id)
    actor = uow.actor
    if actor.role == Role.rep:
        if cmd.rep_id not in (None, actor.id):
            raise PermissionDenied(f"rep {actor.id} receives customers for self only", code="not_yourself")
        await _office_rep(uow, office, actor.id)
        asked: str | None = actor.id
    else:
        require_office_line(actor, office)
        asked = cmd.rep_id
    now = uow.clock.now()
    day = business_date(now, timezone)
    term = await lead_phones.claim(uow, office.id, cmd.phone)
    known = await lead_phones.lead_of(uow.conn, office.id, term)
    member_of: str | None = None
    if cmd.related_to is not None and same_customer(cmd.related_to.relation):
        if known is not None and known != cmd.related_to.lead_id:
            raise DomainError(
                f"phone {cmd.phone} is another customer's (lead {known})", code="phone_of_another_lead", field="phone"
            )
        member_of = None if known is not None else cmd.related_to.lead_id
    reception = await uow.load(ReceptionDay, day_id(office.id, day))
    lead_id = known or member_of
    new_lead = lead_id is None
    if lead_id is not None:
        lead = await uow.get(Lead, lead_id, what="lead")
        if lead.project_id != office.id:
            raise DomainError(f"lead {lead_id} is a customer of {lead.project_id}", code="lead_of_another_project")
        lead.settle(now, await offices.lead_has_deal(uow.conn, lead.id))
        rep_id, basis = reception.receive(
            office.id, day, kind, lead.id, own_rep=lead.following_rep, asked=asked, at=now
        )
        key = await sealing.key_for_writing(uow, lead.id, LEADS)
        received = lead.receive(kind, rep_id, basis, now)
        # A customer whose registration lapsed or who was released is received as new.
        first_visit, new_lead = received.first_visit, received.again
        if member_of is not None:
            assert cmd.related_to is not None
            lead.add_member(cmd.related_to.relation, _personal(name=cmd.customer_name, phone=cmd.phone), key.seal)
    else:
        lead = await uow.load(Lead, str(uuid.uuid4()))
        rep_id, basis = reception.receive(office.id, day, kind, lead.id, own_rep=None, asked=asked, at=now)
        key = await sealing.key_for_writing(uow, lead.id, LEADS)
        lead.register(
            office, kind, rep_id, now, personal=_personal(name=cmd.customer_name, phone=cmd.phone), seal=key.seal
        )
        first_visit = kind == "walk_in"
    register = await uow.load(LeadRegister, register_id(office.id, kind))
    entry_no = register.enter(
        office.id,
        kind,
        day,
        now,
        lead_id=lead.id,
        rep_id=rep_id,
        basis=basis,
        new_lead=new_lead,
        first_visit=first_visit,
        source_channel=cmd.source_channel,
        personal=_personal(name=cmd.customer_name, phone=cmd.phone, note=cmd.note),
        seal=key.seal,
    )
    # The events first: they are the transaction's first write (the log's order needs it).
    await uow.save(reception, lead, register)
    if known is None:
        await lead_phones.keep(uow, office.id, term, lead.id)
    await sealing.keep(uow, key)
    return {
        "project_id": office.id,
        "lead_id": lead.id,
        "rep_id": rep_id,
        "basis": basis,
        "following_rep_id": lead.rep_id,
        "register": kind,
        "entry_no": entry_no,
        "new_lead": new_lead,
        "first_visit": first_visit,
        "remark": "duty" if basis == "duty" else None,
    }


async def receive_walk_in(cmd: ReceiveWalkIn, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """A walk-in (上门): in turn, or to their own rep (duty if absent or busy); a register line."""
    return await _receive(cmd, uow, "walk_in", timezone)


async def receive_phone_enquiry(cmd: ReceivePhoneEnquiry, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """A phone enquiry (来电), taken like a walk-in; a line of the phone register."""
    return await _receive(cmd, uow, "phone", timezone)


async def register_referral(cmd: RegisterReferral, uow: UnitOfWork) -> dict[str, Any]:
    """A customer refers someone: the referring customer's rep, who took down the number, gets them."""
    referrer, office = await _lead(uow, cmd.referrer_lead_id)
    if referrer.project_id != cmd.project_id:
        raise DomainError(f"lead {referrer.id} is a customer of {referrer.project_id}", code="lead_of_another_project")
    rep_id = referrer.following_rep
    if rep_id is None:
        raise DomainError(f"lead {referrer.id} is {referrer.stage}: nobody follows them", code="lead_not_followed")
    require_office_line(uow.actor, office, rep_id)
    term = await lead_phones.claim(uow, office.id, cmd.phone)
    known = await lead_phones.lead_of(uow.conn, office.id, term)
    if known is not None:
        raise DomainError(
            f"phone {cmd.phone} was registered first for lead {known}", code="phone_already_registered", field="phone"
        )
    lead = await uow.load(Lead, str(uuid.uuid4()))
    key = await sealing.key_for_writing(uow, lead.id, LEADS)
    lead.register(
        office,
        "referral",
        rep_id,
        uow.clock.now(),
        personal=_personal(name=cmd.customer_name, phone=cmd.phone, note=cmd.note),
        seal=key.seal,
        referred_by=referrer.id,
    )
    await uow.save(lead)
    await lead_phones.keep(uow, office.id, term, lead.id)
    await sealing.keep(uow, key)
    return {"lead_id": lead.id, "rep_id": rep_id, "referred_by": referrer.id}


# -- the leads --------------------------------------------------------------------------------------


async def add_lead_member(cmd: AddLeadMember, uow: UnitOfWork) -> dict[str, Any]:
    """Someone who is the same customer as a lead: spouse, parent, child or shareholder."""
    lead, office = await _lead(uow, cmd.lead_id)
    require_office_line(uow.actor, office, lead.rep_id)
    key = await sealing.key_for_writing(uow, lead.id, LEADS)
    new_term: bytes | None = None
    if cmd.phone is not None:
        term = await lead_phones.claim(uow, office.id, cmd.phone)
        known = await lead_phones.lead_of(uow.conn, office.id, term)
        if known not in (None, lead.id):
            raise DomainError(
                f"phone {cmd.phone} is another customer's (lead {known})", code="phone_of_another_lead", field="phone"
            )
        new_term = term if known is None else None
    lead.add_member(cmd.relation, _personal(name=cmd.member_name, phone=cmd.phone), key.seal)
    await uow.save(lead)
    if new_term is not None:
        await lead_phones.keep(uow, office.id, new_term, lead.id)
    await sealing.keep(uow, key)
    return {"lead_id": lead.id, "relation": cmd.relation}


async def log_lead_follow_up(cmd: LogLeadFollowUp, uow: UnitOfWork) -> dict[str, Any]:
    """A follow-up by the lead's rep (a supervisor may write it in for them)."""
    lead, office = await _lead(uow, cmd.lead_id)
    actor = uow.actor
    if actor.role == Role.rep:
        rep_id = actor.id
    else:
        require_office_line(actor, office)
        rep_id = lead.rep_id or ""
    key = await sealing.key_for_writing(uow, lead.id, LEADS)
    lead.follow_up(rep_id, cmd.channel, uow.clock.now(), cmd.note, key.seal)
    await uow.save(lead)
    await sealing.keep(uow, key)
    return {"lead_id": lead.id, "rep_id": rep_id, "last_follow_up_at": uow.clock.now().isoformat()}


async def lapse_lead(cmd: LapseLead, uow: UnitOfWork) -> dict[str, Any]:
    """Timer: a phone lead not seen within 7 days lapses."""
    lead, _ = await _lead(uow, cmd.lead_id)
    lead.lapse(uow.clock.now(), await offices.lead_has_deal(uow.conn, lead.id))
    await uow.save(lead)
    return {"lead_id": lead.id, "stage": lead.stage}


async def release_lead(cmd: ReleaseLead, uow: UnitOfWork) -> dict[str, Any]:
    """Timer: a walk-in not followed up for more than 7 days is released."""
    lead, _ = await _lead(uow, cmd.lead_id)
    lead.release(cmd.rep_id, uow.clock.now(), await offices.lead_has_deal(uow.conn, lead.id))
    await uow.save(lead)
    return {"lead_id": lead.id, "stage": lead.stage, "released_from": cmd.rep_id}


async def decide_lead_dispute(cmd: DecideLeadDispute, uow: UnitOfWork) -> dict[str, Any]:
    """The sales manager decides which rep a disputed customer belongs to, with a reason."""
    lead, office = await _lead(uow, cmd.lead_id)
    rep = await uow.load(StaffMember, cmd.rep_id)
    lead.decide_dispute(rep, office, cmd.reason, uow.actor.id, uow.clock.now())
    await uow.save(lead)
    return {"lead_id": lead.id, "rep_id": lead.rep_id}


async def correct_register_entry(cmd: CorrectRegisterEntry, uow: UnitOfWork) -> dict[str, Any]:
    """Correct a register line with a reason; a corrected name or phone is the lead's too."""
    office = await _office(uow, cmd.project_id)
    register = await uow.get(LeadRegister, register_id(office.id, cmd.register_kind), what="register")
    lead = await uow.get(Lead, register.lead_of(cmd.entry_no), what="lead")
    key = await sealing.key_for_writing(uow, lead.id, LEADS)
    details = _personal(name=cmd.customer_name, phone=cmd.phone)
    dropped: bytes | None = None
    added: bytes | None = None
    if cmd.phone is not None:
        term = await lead_phones.claim(uow, office.id, cmd.phone)
        known = await lead_phones.lead_of(uow.conn, office.id, term)
        if known not in (None, lead.id):
            raise DomainError(
                f"phone {cmd.phone} is another customer's (lead {known})", code="phone_of_another_lead", field="phone"
            )
        written = await _written_phone(uow, office.id, cmd.register_kind, cmd.entry_no, lead.id)
        if written is not None and written != cmd.phone:
            # The number written wrongly is not the customer's: it leaves the index.
            dropped = await lead_phones.term_of(uow.conn, written)
        added = term if known is None else None
    register.correct(
        office.id,
        cmd.register_kind,
        cmd.entry_no,
        source_channel=cmd.source_channel,
        personal=_personal(name=cmd.customer_name, phone=cmd.phone, note=cmd.note),
        reason=cmd.reason,
        corrected_by=uow.actor.id,
        seal=key.seal,
    )
    if details:
        lead.correct_details(details, cmd.reason, key.seal)
    await uow.save(register, lead)
    if dropped is not None:
        await lead_phones.drop(uow, office.id, dropped, lead.id)
    if added is not None:
        await lead_phones.keep(uow, office.id, added, lead.id)
    await sealing.keep(uow, key)
    return {"project_id": office.id, "register": cmd.register_kind, "entry_no": cmd.entry_no, "lead_id": lead.id}


async def _written_phone(uow: UnitOfWork, project_id: str, register: str, entry_no: int, lead_id: str) -> str | None:
    """The phone a register line shows now (its last sealed part naming one)."""
    parts = await offices.register_line_parts(uow.conn, project_id, register, entry_no)
    keys = await sealing.keys_of(uow.conn, [lead_id], LEADS)
    phone = None
    for token in parts:
        part = open_sealed(token, keys, lead_id, LEADS)
        if part is not None and part.get("phone"):
            phone = part["phone"]
    return phone


async def erase_lead_personal_data(cmd: EraseLeadPersonalData, uow: UnitOfWork) -> dict[str, Any]:
    """Crypto-shredding of a lead: the event empties the read side, deleting the keys makes
    every sealed copy unreadable, and the lead's phone numbers leave the index."""
    lead, _ = await _lead(uow, cmd.lead_id)
    lead.erase_personal_data(cmd.reason)
    await uow.save(lead)
    keys = await sealing.shred(uow.conn, lead.id, LEADS)
    phones = await lead_phones.forget(uow.conn, lead.id)
    return {"lead_id": lead.id, "keys_destroyed": keys, "phones_forgotten": phones}


# -- registration on the bus --------------------------------------------------------------------------


def register(bus: CommandBus, timezone: str) -> None:
    """Every command of the sales offices, one line each."""
    bus.command(OpenSalesOffice, roles={*MANAGERS, Role.system})(open_sales_office)
    bus.command(SignIn, roles={Role.rep, Role.system})(bound(sign_in, timezone=timezone))
    bus.command(SignOut, roles={Role.rep, Role.system, *LINE})(bound(sign_out, timezone=timezone))
    bus.command(ReceiveWalkIn, roles=FRONT_DESK)(bound(receive_walk_in, timezone=timezone))
    bus.command(ReceivePhoneEnquiry, roles=FRONT_DESK)(bound(receive_phone_enquiry, timezone=timezone))
    bus.command(FinishReception, roles=FRONT_DESK)(bound(finish_reception, timezone=timezone))
    bus.command(RegisterReferral, roles={Role.rep, *LINE})(register_referral)
    bus.command(AddLeadMember, roles={Role.rep, Role.clerk, *LINE})(add_lead_member)
    bus.command(LogLeadFollowUp, roles={Role.rep, Role.supervisor})(log_lead_follow_up)
    bus.command(LapseLead, roles={Role.service})(lapse_lead)  # the follow-up timer
    bus.command(ReleaseLead, roles={Role.service})(release_lead)
    bus.command(DecideLeadDispute, roles=MANAGERS)(decide_lead_dispute)
    bus.command(CorrectRegisterEntry, roles=MANAGERS)(correct_register_entry)
    bus.command(EraseLeadPersonalData, roles={Role.clerk, *MANAGERS})(erase_lead_personal_data)
