"""Command handlers: load → check the line of command → decide → save. One handler serves
HTTP, NATS request/reply and ingest alike (the platform's bus)."""

from __future__ import annotations

import uuid
from typing import Any

from customer_service.adapters import sealing
from customer_service.application import positions, reception
from customer_service.domain import card
from customer_service.domain.access import require_in_line, require_over_district
from customer_service.domain.commands import (
    ApproveCustomer,
    AssignCustomer,
    AssignStaff,
    ChangeStatus,
    ClaimCustomer,
    ClassifyCustomer,
    DefineArea,
    DefineDistrict,
    DefineDivision,
    ErasePersonalData,
    LogContact,
    MarkStaffDeparted,
    MergeCustomers,
    ReassignAll,
    RecomputeGrade,
    RegisterCustomer,
    RejectCustomer,
    ReleaseCustomer,
    SetCreditLimit,
    SetPosition,
    UpdateProfile,
    VerifyCustomerData,
)
from customer_service.domain.customer import Customer, Registration
from customer_service.domain.merging import first_buyer
from customer_service.domain.territory import StaffMember, TerritoryUnit
from customer_service.projections.customers import CustomerDirectory
from customer_service.projections.offices import OfficeDirectory
from customer_service.projections.territory import TerritoryDirectory
from customer_service.queries import customers as archive
from salesplatform.clock import Clock
from salesplatform.commands import CommandBus, Request, invalid
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import EventRegistry, Role
from salesplatform.territory import OUTSIDE_LINE, Place
from salesplatform.uow import UnitOfWork

MANAGERS = {Role.sales_manager, Role.general_manager}
LINE_MANAGERS = {Role.supervisor, Role.area_manager, *MANAGERS}
TERRITORY_KEEPERS = {*MANAGERS, Role.system}


def line_of(customer: Customer) -> Place:
    return Place(rep_id=customer.rep_id, district_id=customer.district_id, area_id=customer.area_id)


async def _customer(uow: UnitOfWork, customer_id: str) -> Customer:
    return await uow.get(Customer, customer_id, what="customer")


async def _rep_and_district(uow: UnitOfWork, rep_id: str) -> tuple[StaffMember, TerritoryUnit]:
    rep = await uow.load(StaffMember, rep_id)
    if not rep.is_active_rep or rep.district_id is None:
        raise DomainError(f"unknown rep {rep_id}", code="unknown_rep", field="rep_id")
    return rep, await uow.load(TerritoryUnit, rep.district_id)


async def define_division(cmd: DefineDivision, uow: UnitOfWork) -> dict[str, Any]:
    division = await uow.load(TerritoryUnit, cmd.division_id)
    division.define_division(cmd.division_name)
    await uow.save(division)
    return {"division_id": cmd.division_id, "version": division.version}


async def define_area(cmd: DefineArea, uow: UnitOfWork) -> dict[str, Any]:
    area = await uow.load(TerritoryUnit, cmd.area_id)
    area.define_area(cmd.area_name, await uow.load(TerritoryUnit, cmd.division_id))
    await uow.save(area)
    return {"area_id": cmd.area_id, "version": area.version}


async def define_district(cmd: DefineDistrict, uow: UnitOfWork) -> dict[str, Any]:
    district = await uow.load(TerritoryUnit, cmd.district_id)
    district.define_district(cmd.district_name, await uow.load(TerritoryUnit, cmd.area_id))
    await uow.save(district)
    return {"district_id": cmd.district_id, "version": district.version}


async def assign_staff(cmd: AssignStaff, uow: UnitOfWork) -> dict[str, Any]:
    """Put a rep or supervisor in a district; area managers place staff in their own area."""
    district = await uow.load(TerritoryUnit, cmd.district_id) if cmd.district_id else None
    area_id = cmd.area_id or (district.area_id if district is not None else None)
    area = await uow.load(TerritoryUnit, area_id) if area_id else None
    staff = await uow.load(StaffMember, cmd.staff_id)
    if uow.actor.role == Role.area_manager:
        require_in_line(uow.actor, Place(area_id=area_id))
        if staff.active and staff.area_id != area_id:
            require_in_line(uow.actor, Place(area_id=staff.area_id))
    supervisor = await uow.load(StaffMember, cmd.supervisor_id) if cmd.supervisor_id else None
    staff.assign(
        cmd.staff_name,
        cmd.role,
        district=district,
        area=area,
        supervisor=supervisor,
        customers_owned=await archive.count_held_by(uow.conn, cmd.staff_id),
    )
    await uow.save(staff)
    return {"staff_id": cmd.staff_id, "district_id": staff.district_id, "area_id": staff.area_id}


async def staff_departed(cmd: MarkStaffDeparted, uow: UnitOfWork) -> dict[str, Any]:
    staff = await uow.load(StaffMember, cmd.staff_id)
    if uow.actor.role == Role.area_manager:
        require_in_line(uow.actor, Place(area_id=staff.area_id))
    staff.depart(customers_owned=await archive.count_held_by(uow.conn, cmd.staff_id))
    await uow.save(staff)
    return {"staff_id": cmd.staff_id, "active": False}


async def register_customer(cmd: RegisterCustomer, uow: UnitOfWork) -> dict[str, Any]:
    """A rep registers own outlets; others name the rep (nothing without an owner)."""
    actor = uow.actor
    rep_id = cmd.rep_id
    if actor.role == Role.rep:
        rep_id = rep_id or actor.id
        if rep_id != actor.id:
            raise PermissionDenied(f"rep {actor.id} registers customers for self only", code=OUTSIDE_LINE)
    if rep_id is None:
        raise invalid("rep_id", "name the rep who will own the customer", code="rep_required")
    rep, rep_district = await _rep_and_district(uow, rep_id)
    district = (
        rep_district if cmd.district_id in (None, rep.district_id) else await uow.load(TerritoryUnit, cmd.district_id)
    )
    require_in_line(actor, Place(rep_id=rep.id, district_id=district.id, area_id=district.area_id))
    customer_id = cmd.customer_id or str(uuid.uuid4())
    key = await sealing.key_for_writing(uow, customer_id)
    customer = await uow.load(Customer, customer_id)
    reg = Registration(
        name=cmd.customer_name,
        address=cmd.address,
        phone=cmd.phone,
        nature=cmd.nature,
        ownership=cmd.ownership,
        channel=cmd.channel,
        location_type=cmd.location_type,
        source=cmd.source,
        base=cmd.base,
        characteristics=cmd.characteristics,
        business_status=cmd.business_status,
        trading_status=cmd.trading_status,
        contacts=list(cmd.contacts),
        position=cmd.position,
    )
    customer.register(reg, district=district, rep=rep, seal=key.seal)
    await uow.save(customer)
    await sealing.keep(uow, key)
    return {"customer_id": customer_id, "status": customer.status, "verified": customer.verified}


async def verify_customer_data(cmd: VerifyCustomerData, uow: UnitOfWork) -> dict[str, Any]:
    customer = await _customer(uow, cmd.customer_id)
    require_in_line(uow.actor, line_of(customer))
    customer.verify_data(cmd.note)
    await uow.save(customer)
    return {"customer_id": customer.id, "verified": True}


async def approve_customer(cmd: ApproveCustomer, uow: UnitOfWork) -> dict[str, Any]:
    """The supervisor of the district, or above in line, approves a new outlet (审批)."""
    customer = await _customer(uow, cmd.customer_id)
    require_over_district(uow.actor, customer.district_id, customer.area_id)
    district = await uow.load(TerritoryUnit, customer.district_id or "")
    code = customer.approve(district, cmd.status, approved_by=uow.actor.id)
    # The district's stream first: two approvals drawing the same number collide there (a
    # concurrency conflict, retried) before either code reaches the read side.
    await uow.save(district, customer)
    return {"customer_id": customer.id, "customer_code": code, "status": customer.status}


async def reject_customer(cmd: RejectCustomer, uow: UnitOfWork) -> dict[str, Any]:
    customer = await _customer(uow, cmd.customer_id)
    require_over_district(uow.actor, customer.district_id, customer.area_id)
    customer.reject(cmd.reason, rejected_by=uow.actor.id)
    await uow.save(customer)
    return {"customer_id": customer.id, "status": customer.status}


async def classify_customer(cmd: ClassifyCustomer, uow: UnitOfWork) -> dict[str, Any]:
    customer = await _customer(uow, cmd.customer_id)
    require_over_district(uow.actor, customer.district_id, customer.area_id)
    given = cmd.model_dump(include=cmd.model_fields_set - {"customer_id", "reason"})
    # nature, channel and location type always have a value: null means "leave as is"
    values = {k: v for k, v in given.items() if v is not None or k in ("grade", "ownership")}
    customer.classify(values, cmd.reason)
    await uow.save(customer)
    return {
        "customer_id": customer.id,
        "grade": customer.grade,
        "channel": customer.channel,
        "nature": customer.nature,
    }


async def recompute_grade(cmd: RecomputeGrade, uow: UnitOfWork) -> dict[str, Any]:
    customer = await _customer(uow, cmd.customer_id)
    grade, changed = customer.recompute_grade(cmd.figures)
    await uow.save(customer)
    return {"customer_id": customer.id, "grade": grade, "changed": changed}


async def change_status(cmd: ChangeStatus, uow: UnitOfWork) -> dict[str, Any]:
    customer = await _customer(uow, cmd.customer_id)
    require_over_district(uow.actor, customer.district_id, customer.area_id)
    customer.change_status(cmd.status, cmd.reason)
    await uow.save(customer)
    return {"customer_id": customer.id, "status": customer.status}


async def set_credit_limit(cmd: SetCreditLimit, uow: UnitOfWork) -> dict[str, Any]:
    """Credit rating, limit and payment terms: sales manager and up only."""
    customer = await _customer(uow, cmd.customer_id)
    customer.set_credit(cmd.credit_rating, cmd.credit_limit_fen, cmd.payment_terms_days, cmd.reason)
    await uow.save(customer)
    return {
        "customer_id": customer.id,
        "credit_rating": cmd.credit_rating,
        "credit_limit_fen": cmd.credit_limit_fen,
        "payment_terms_days": cmd.payment_terms_days,
    }


async def assign_customer(cmd: AssignCustomer, uow: UnitOfWork) -> dict[str, Any]:
    customer = await _customer(uow, cmd.customer_id)
    require_over_district(uow.actor, customer.district_id, customer.area_id)
    rep, district = await _rep_and_district(uow, cmd.rep_id)
    require_over_district(uow.actor, district.id, district.area_id)
    customer.assign(rep, district, cmd.reason)
    await uow.save(customer)
    return {"customer_id": customer.id, "rep_id": rep.id, "district_id": district.id}


async def reassign_all(cmd: ReassignAll, uow: UnitOfWork) -> dict[str, Any]:
    """Every customer of a (departing) rep to another rep, or spread in turn over several."""
    targets = [await _rep_and_district(uow, rep_id) for rep_id in cmd.targets()]
    for _, district in targets:
        require_over_district(uow.actor, district.id, district.area_id)
    held = await archive.customers_held_by(uow.conn, cmd.from_rep_id)
    customers = [await _customer(uow, cid) for cid in held]
    moved: dict[str, list[str]] = {rep.id: [] for rep, _ in targets}
    for i, customer in enumerate(customers):
        require_over_district(uow.actor, customer.district_id, customer.area_id)
        rep, district = targets[i % len(targets)]
        customer.assign(rep, district, cmd.reason)
        moved[rep.id].append(customer.id)
    await uow.save(*customers)
    return {"from_rep_id": cmd.from_rep_id, "reassigned": len(customers), "to": moved}


async def release_customer(cmd: ReleaseCustomer, uow: UnitOfWork) -> dict[str, Any]:
    customer = await _customer(uow, cmd.customer_id)
    last = await archive.last_follow_up(uow.conn, customer.id, cmd.rep_id)
    now = uow.clock.now()
    customer.release(cmd.rep_id, last or now, now)
    await uow.save(customer)
    return {"customer_id": customer.id, "released_from": cmd.rep_id}


async def claim_customer(cmd: ClaimCustomer, uow: UnitOfWork) -> dict[str, Any]:
    customer = await _customer(uow, cmd.customer_id)
    rep = await uow.load(StaffMember, uow.actor.id)
    customer.claim(rep)
    await uow.save(customer)
    return {"customer_id": customer.id, "rep_id": rep.id}


async def log_contact(cmd: LogContact, uow: UnitOfWork) -> dict[str, Any]:
    customer = await _customer(uow, cmd.customer_id)
    require_in_line(uow.actor, line_of(customer))
    key = await sealing.key_for_writing(uow, customer.id)
    customer.log_contact(uow.clock.now(), cmd.channel, cmd.note, seal=key.seal)
    await uow.save(customer)
    await sealing.keep(uow, key)
    return {"customer_id": customer.id, "rep_id": customer.rep_id}


async def update_profile(cmd: UpdateProfile, uow: UnitOfWork) -> dict[str, Any]:
    changes = card.validate_changes(cmd.changes)
    customer = await _customer(uow, cmd.customer_id)
    require_in_line(uow.actor, line_of(customer))
    key = await sealing.key_for_writing(uow, customer.id)
    customer.update_profile(changes, cmd.reason, seal=key.seal)
    await uow.save(customer)
    await sealing.keep(uow, key)
    return {"customer_id": customer.id, "changed": sorted(changes), "version": customer.version}


async def merge_customers(cmd: MergeCustomers, uow: UnitOfWork) -> dict[str, Any]:
    duplicate = await _customer(uow, cmd.customer_id)
    survivor = duplicate if cmd.survivor_id == duplicate.id else await _customer(uow, cmd.survivor_id)
    if uow.actor.role != Role.clerk:  # the archive clerk keeps the whole archive
        for customer in (duplicate, survivor):
            require_over_district(uow.actor, customer.district_id, customer.area_id)
    winner, rule_reason = first_buyer(
        await archive.buying_record(uow.conn, duplicate.id), await archive.buying_record(uow.conn, survivor.id)
    )
    duplicate.merge_into(survivor, cmd.rule, cmd.reason, winner, rule_reason)
    await uow.save(duplicate, survivor)
    return {"customer_id": duplicate.id, "survivor_id": survivor.id, "rule_reason": rule_reason}


async def erase_personal_data(cmd: ErasePersonalData, uow: UnitOfWork) -> dict[str, Any]:
    """Crypto-shredding: the event empties the read side, deleting the keys makes every
    sealed copy in the log (and in JetStream) unreadable."""
    customer = await _customer(uow, cmd.customer_id)
    customer.erase_personal_data(cmd.reason)
    await uow.save(customer)
    keys = await sealing.shred(uow.conn, customer.id)
    return {"customer_id": customer.id, "keys_destroyed": keys}


async def read_customers_ahead(uow: UnitOfWork, items: list[tuple[Request, Any]]) -> None:
    """A batch of contacts reads its customers' streams and keys once."""
    ids = sorted({cmd.customer_id for _, cmd in items})
    await uow.preload_streams([Customer.stream_id_for(i) for i in ids])
    await sealing.preload_keys(uow, ids)


def build_bus(registry: EventRegistry, clock: Clock, timezone: str = "Asia/Shanghai") -> CommandBus:
    """Every command of the service, one line each; the sales offices' are in `reception`."""
    bus = CommandBus(registry, clock, inline_projections=[TerritoryDirectory(), CustomerDirectory(), OfficeDirectory()])
    reception.register(bus, timezone)
    # territory and staff
    bus.command(DefineDivision, roles=TERRITORY_KEEPERS)(define_division)
    bus.command(DefineArea, roles=TERRITORY_KEEPERS)(define_area)
    bus.command(DefineDistrict, roles=TERRITORY_KEEPERS)(define_district)
    bus.command(AssignStaff, roles={Role.area_manager, *TERRITORY_KEEPERS})(assign_staff)
    bus.command(MarkStaffDeparted, roles={Role.area_manager, *TERRITORY_KEEPERS})(staff_departed)
    # registration and approval
    bus.command(RegisterCustomer, roles={Role.rep, Role.clerk, Role.system, *LINE_MANAGERS})(register_customer)
    bus.command(VerifyCustomerData, roles={Role.clerk, *LINE_MANAGERS})(verify_customer_data)
    bus.command(ApproveCustomer, roles=LINE_MANAGERS)(approve_customer)
    bus.command(RejectCustomer, roles=LINE_MANAGERS)(reject_customer)
    # classification, credit, lifecycle
    bus.command(ClassifyCustomer, roles={Role.system, *LINE_MANAGERS})(classify_customer)
    bus.command(RecomputeGrade, roles={Role.system, *MANAGERS})(recompute_grade)
    bus.command(ChangeStatus, roles={Role.system, *LINE_MANAGERS})(change_status)
    bus.command(SetCreditLimit, roles=MANAGERS)(set_credit_limit)
    # ownership
    bus.command(AssignCustomer, roles=LINE_MANAGERS)(assign_customer)
    bus.command(ReassignAll, roles=LINE_MANAGERS)(reassign_all)
    bus.command(ReleaseCustomer, roles={Role.service})(release_customer)  # the follow-up timer
    bus.command(ClaimCustomer, roles={Role.rep})(claim_customer)
    bus.command(LogContact, roles={Role.rep, *LINE_MANAGERS}, batched=True, preload=read_customers_ahead)(log_contact)
    # the card
    bus.command(UpdateProfile, roles={Role.rep, Role.clerk, Role.system, *LINE_MANAGERS})(update_profile)
    bus.command(SetPosition, roles={Role.rep, Role.clerk, Role.system, *LINE_MANAGERS})(positions.set_position)
    bus.command(MergeCustomers, roles={Role.clerk, *LINE_MANAGERS})(merge_customers)
    bus.command(ErasePersonalData, roles={Role.clerk, *MANAGERS})(erase_personal_data)
    return bus
