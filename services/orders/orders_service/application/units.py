"""Command handlers of sales control (销控): load → check the line → decide → save, one
function each, registered on the bus by `register` (see `handlers.build_bus`).

A unit's stream decides its deals one after the other; every command that changes a unit's
status also claims `unit:<id>`, so commands on one unit in concurrent batches (group commit,
ingest) are taken in turn rather than colliding on the stream: the first deposit wins and the
second sees the unit reserved.
"""

from __future__ import annotations

from typing import Any

from orders_service.domain.customers import CustomerCard, may_act_for
from orders_service.domain.policy import OrderPolicy
from orders_service.domain.unit_commands import (
    CheckSalesControl,
    DefineUnits,
    FillSubscription,
    FlagUnitDepositOverdue,
    HandOver,
    IssuePriceList,
    NameDepositTaker,
    ReleaseReservation,
    ReturnSubscription,
    RevokeDepositTaker,
    SignContract,
    SignSubscription,
    StartMortgage,
    TakeDeposit,
)
from orders_service.domain.units import Project, Unit
from orders_service.queries import sales_control
from orders_service.queries.sales_control import Office
from salesplatform.clock import business_date
from salesplatform.commands import CommandBus, bound
from salesplatform.errors import DomainError, NotFound, PermissionDenied
from salesplatform.events import Actor, Role
from salesplatform.territory import OUTSIDE_LINE
from salesplatform.uow import UnitOfWork

MANAGERS = {Role.sales_manager, Role.general_manager}
# Deposits: the sales manager, someone the manager names (any role), or finance (a system).
DEPOSIT_ROLES = {Role.rep, Role.supervisor, Role.area_manager, Role.clerk, Role.system, *MANAGERS}
ALWAYS_TAKE_DEPOSITS = {*MANAGERS, Role.system}


def unit_claim(unit_id: str) -> str:
    return f"unit:{unit_id}"


def require_project_line(actor: Actor, office: Office, rep_id: str | None = None) -> None:
    """The one place sales control checks the line of command: a rep acts for the deals they
    are credited with (`rep_id`), a supervisor in the office's district, an area manager in its
    area, managers and other systems everywhere."""
    card = CustomerCard(office.project_id, "", district_id=office.district_id, area_id=office.area_id, rep_id=rep_id)
    if not may_act_for(actor, card):
        raise PermissionDenied(
            f"the sales office of {office.project_id} is outside the line of {actor.role} {actor.id}",
            code=OUTSIDE_LINE,
        )


async def _office(uow: UnitOfWork, project_id: str) -> Office:
    office = await sales_control.office(uow.conn, project_id)
    if office is None:
        raise NotFound(f"project {project_id} has no sales office here (yet)", code="unknown_project")
    return office


async def _unit(uow: UnitOfWork, unit_id: str, *, claim: bool = True) -> Unit:
    if claim:
        await uow.claim(unit_claim(unit_id))
    return await uow.get(Unit, unit_id, "unit")


async def _credited_rep(uow: UnitOfWork, unit: Unit) -> str:
    """Whoever follows the buyer now (a dispute decided since the deposit moves the credit),
    else the rep the reservation credited."""
    lead = await sales_control.lead(uow.conn, unit.lead_id or "")
    rep = (lead.rep_id if lead else None) or unit.credited_rep_id
    assert rep is not None
    return rep


def _state(unit: Unit) -> dict[str, Any]:
    return {
        "unit_id": unit.id,
        "project_id": unit.project_id,
        "status": unit.status,
        "lead_id": unit.lead_id,
        "credited_rep_id": unit.credited_rep_id,
    }


# -- units and price lists (U1, U3) --------------------------------------------------------------------


async def define_units(cmd: DefineUnits, uow: UnitOfWork) -> dict[str, Any]:
    """Define units of a sales office's project; unreleased until a price list prices them."""
    office = await _office(uow, cmd.project_id)
    units = await uow.load_many([(Unit, spec.unit_id) for spec in cmd.units])
    defined = 0
    for unit, spec in zip(units, cmd.units, strict=True):
        assert isinstance(unit, Unit)
        defined += unit.define(office.project_id, **spec.model_dump(exclude={"unit_id"}))
    await uow.save(*units)
    return {"project_id": office.project_id, "defined": defined, "unchanged": len(units) - defined}


async def issue_price_list(cmd: IssuePriceList, uow: UnitOfWork) -> dict[str, Any]:
    """Issue or change a release's price list (价目表); a deal already made keeps its price."""
    office = await _office(uow, cmd.project_id)
    units = await uow.load_many([(Unit, p.unit_id) for p in cmd.prices])
    for unit, p in zip(units, cmd.prices, strict=True):
        assert isinstance(unit, Unit)
        unit.price(office.project_id, cmd.release, p.unit_price_fen, p.total_price_fen, cmd.reason)
    changed = sum(1 for u in units if u.pending)
    await uow.save(*units)
    return {"project_id": office.project_id, "release": cmd.release, "units": len(units), "changed": changed}


async def name_deposit_taker(cmd: NameDepositTaker, uow: UnitOfWork) -> dict[str, Any]:
    """The sales manager names someone who may take deposits at the office."""
    office = await _office(uow, cmd.project_id)
    project = await uow.load(Project, office.project_id)
    project.name_deposit_taker(cmd.staff_id)
    await uow.save(project)
    return {"project_id": project.id, "deposit_takers": sorted(project.deposit_takers)}


async def revoke_deposit_taker(cmd: RevokeDepositTaker, uow: UnitOfWork) -> dict[str, Any]:
    office = await _office(uow, cmd.project_id)
    project = await uow.load(Project, office.project_id)
    project.revoke_deposit_taker(cmd.staff_id)
    await uow.save(project)
    return {"project_id": project.id, "deposit_takers": sorted(project.deposit_takers)}


# -- deposits (U2, U4, U5) -----------------------------------------------------------------------------


async def take_deposit(cmd: TakeDeposit, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """A deposit (定金) on a unit for a lead: the first reserves it, the first deposit wins."""
    unit = await _unit(uow, cmd.unit_id)
    project = await uow.load(Project, unit.project_id)
    actor = uow.actor
    if actor.role not in ALWAYS_TAKE_DEPOSITS and not project.may_take_deposits(actor.id):
        raise PermissionDenied(
            f"{actor.id} takes no deposits: the sales manager, someone the manager names, or finance does",
            code="not_a_deposit_taker",
        )
    lead = await sales_control.lead(uow.conn, cmd.lead_id)
    if lead is None:
        raise NotFound(f"lead {cmd.lead_id} is not known here (yet)", code="unknown_lead", field="lead_id")
    if lead.project_id != unit.project_id:
        raise DomainError(f"lead {lead.lead_id} is a customer of {lead.project_id}", code="lead_of_another_project")
    if lead.rep_id is None:
        raise DomainError(
            f"lead {lead.lead_id} is {lead.stage}: receive the customer again first", code="lead_not_followed"
        )
    receipt = unit.take_deposit(
        lead_id=lead.lead_id,
        credited_rep_id=lead.rep_id,
        amount_fen=cmd.amount_fen,
        agreed_fen=cmd.agreed_fen,
        method=cmd.method,
        cheque_no=cmd.cheque_no,
        source_of_funds=cmd.source_of_funds,
        funds_detail=cmd.funds_detail,
        taken_by=actor.id,
        now=uow.clock.now(),
        timezone=policy.timezone,
        hours=policy.deposit_hours,
    )
    await uow.save(unit)
    return {
        **_state(unit),
        "receipt": receipt.model_dump(mode="json", exclude={"unit_id", "project_id"}),
        "deposit_total_fen": unit.deposit_total_fen,
        "deposit_agreed_fen": unit.deposit_agreed_fen,
        "deposit_due_by": unit.deposit_due_by.isoformat() if unit.deposit_due_by else None,
    }


async def flag_unit_deposit_overdue(cmd: FlagUnitDepositOverdue, uow: UnitOfWork) -> dict[str, Any]:
    """Timer: flag a partial deposit past its 24 hours."""
    unit = await _unit(uow, cmd.unit_id)
    unit.flag_deposit_overdue(uow.clock.now())
    await uow.save(unit)
    return {**_state(unit), "deposit_overdue": True}


async def release_reservation(cmd: ReleaseReservation, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """Give up a reservation or subscription with a reason: the unit is available again."""
    unit = await _unit(uow, cmd.unit_id)
    unit.release_reservation(cmd.reason, cmd.deposit, uow.clock.now(), policy.timezone)
    await uow.save(unit)
    return _state(unit)


# -- the subscription (U6), contract, mortgage, handover -----------------------------------------------


async def fill_subscription(cmd: FillSubscription, uow: UnitOfWork) -> dict[str, Any]:
    """The rep credited with the deal fills in the subscription (认购书) (a supervisor or the
    sales manager may too); only the sales manager may fill a price below the list."""
    unit = await _unit(uow, cmd.unit_id)
    office = await _office(uow, unit.project_id)
    require_project_line(uow.actor, office, unit.credited_rep_id)
    unit.fill_subscription(
        subscription_no=cmd.subscription_no,
        price_fen=cmd.price_fen,
        payment_plan=cmd.payment_plan,
        down_payment_fen=cmd.down_payment_fen,
        contract_due_on=cmd.contract_due_on,
        remarks=cmd.remarks,
        filled_by=uow.actor.id,
        may_discount=uow.actor.role in MANAGERS,
    )
    await uow.save(unit)
    return {**_state(unit), "subscription_no": unit.subscription_no, "signed": False}


async def return_subscription(cmd: ReturnSubscription, uow: UnitOfWork) -> dict[str, Any]:
    """The sales manager sends an unsigned subscription back, with the reason."""
    unit = await _unit(uow, cmd.unit_id)
    unit.return_subscription(cmd.reason)
    await uow.save(unit)
    return {**_state(unit), "subscription_no": None}


async def sign_subscription(cmd: SignSubscription, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """The sales manager signs the subscription and keeps it: the unit is subscribed."""
    unit = await _unit(uow, cmd.unit_id)
    unit.sign_subscription(uow.actor.id, await _credited_rep(uow, unit), uow.clock.now(), policy.timezone)
    await uow.save(unit)
    return {**_state(unit), "subscription_no": unit.subscription_no, "signed": True, "kept_by": uow.actor.id}


async def sign_contract(cmd: SignContract, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """The purchase contract (签约) on a subscribed unit."""
    unit = await _unit(uow, cmd.unit_id)
    unit.sign_contract(
        cmd.contract_no, cmd.payment_plan, await _credited_rep(uow, unit), uow.clock.now(), policy.timezone
    )
    await uow.save(unit)
    return {**_state(unit), "contract_no": cmd.contract_no, "payment_plan": unit.payment_plan}


async def start_mortgage(cmd: StartMortgage, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """The buyer's mortgage (按揭) is being arranged with a bank."""
    unit = await _unit(uow, cmd.unit_id)
    unit.start_mortgage(cmd.bank, cmd.loan_fen, uow.clock.now(), policy.timezone)
    await uow.save(unit)
    return _state(unit)


async def hand_over(cmd: HandOver, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """The unit is handed over (交房) to the buyer."""
    unit = await _unit(uow, cmd.unit_id)
    unit.hand_over(uow.clock.now(), policy.timezone)
    await uow.save(unit)
    return _state(unit)


# -- the daily check (当日销控核实) --------------------------------------------------------------------


async def check_sales_control(cmd: CheckSalesControl, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """Someone of the office checked today's sales control; what did not reconcile is noted."""
    office = await _office(uow, cmd.project_id)
    actor = uow.actor
    if actor.role == Role.rep:
        if actor.district != office.district_id:
            raise PermissionDenied(f"rep {actor.id} does not work at this office", code=OUTSIDE_LINE)
    else:
        require_project_line(actor, office)
    units = await sales_control.unit_ids(uow.conn, office.project_id)
    unknown = sorted({d.unit_id for d in cmd.discrepancies} - units)
    if unknown:
        raise DomainError(f"not units of {office.project_id}: {', '.join(unknown)}", code="unknown_unit")
    day = business_date(uow.clock.now(), policy.timezone)
    project = await uow.load(Project, office.project_id)
    project.check_sales_control(
        day, actor.id, actor.role.value, len(units), [d.model_dump() for d in cmd.discrepancies]
    )
    await uow.save(project)
    return {"project_id": office.project_id, "business_date": day.isoformat(), "units": len(units)}


# -- registration on the bus ------------------------------------------------------------------------------


def _on_unit(cmd: Any) -> list[str]:
    return [unit_claim(cmd.unit_id)]


def register(bus: CommandBus, policy: OrderPolicy) -> None:
    """Every command of sales control, one line each."""
    bus.command(DefineUnits, roles={*MANAGERS, Role.system})(define_units)
    bus.command(IssuePriceList, roles={Role.sales_manager})(issue_price_list)
    bus.command(NameDepositTaker, roles={Role.sales_manager})(name_deposit_taker)
    bus.command(RevokeDepositTaker, roles={Role.sales_manager})(revoke_deposit_taker)
    bus.command(TakeDeposit, roles=DEPOSIT_ROLES, batched=True, claims=_on_unit)(bound(take_deposit, policy=policy))
    # The deadline timer, as the service itself.
    bus.command(FlagUnitDepositOverdue, roles={Role.service}, claims=_on_unit)(flag_unit_deposit_overdue)
    bus.command(ReleaseReservation, roles=MANAGERS, claims=_on_unit)(bound(release_reservation, policy=policy))
    bus.command(FillSubscription, roles={Role.rep, Role.supervisor, Role.area_manager, *MANAGERS}, claims=_on_unit)(
        fill_subscription
    )
    bus.command(ReturnSubscription, roles=MANAGERS, claims=_on_unit)(return_subscription)
    bus.command(SignSubscription, roles={Role.sales_manager}, claims=_on_unit)(bound(sign_subscription, policy=policy))
    bus.command(SignContract, roles=MANAGERS, claims=_on_unit)(bound(sign_contract, policy=policy))
    bus.command(StartMortgage, roles={Role.system, *MANAGERS}, claims=_on_unit)(bound(start_mortgage, policy=policy))
    bus.command(HandOver, roles={Role.system, *MANAGERS}, claims=_on_unit)(bound(hand_over, policy=policy))
    bus.command(CheckSalesControl, roles={Role.rep, Role.supervisor, Role.area_manager, *MANAGERS})(
        bound(check_sales_control, policy=policy)
    )
