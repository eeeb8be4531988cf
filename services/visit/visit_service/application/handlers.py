"""Command handlers: look up what the decision needs in the local directory, load the
aggregate, check the territory line, let the aggregate decide, save. One transaction each,
one function each, registered on the bus by `build_bus` (a handler's docstring is its
command's summary)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from salesplatform.clock import Clock, business_date
from salesplatform.commands import CommandBus, bound, invalid
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Actor, EventRegistry, Role
from salesplatform.territory import OUTSIDE_LINE
from salesplatform.uow import UnitOfWork
from visit_service.domain.access import Territory, ensure_can_act, ensure_can_approve, ensure_supervises, territory_of
from visit_service.domain.commands import (
    AcknowledgeComplaint,
    AddRouteCustomer,
    ApproveVisit,
    CheckCooler,
    CheckOut,
    CloseComplaint,
    ConfirmDelivery,
    CountStock,
    DefineRoute,
    FileKeyAccountReport,
    FlagApprovalOverdue,
    FlagComplaintBreach,
    MarkVisitMissed,
    ObserveCompetitor,
    PlanVisit,
    ReceiveComplaint,
    RecordCoaching,
    RecordSurvey,
    RefuseOrder,
    RejectVisit,
    RemoveRouteCustomer,
    ReorderRoute,
    RequestUnplannedVisit,
    ResolveComplaint,
    RouteComplaint,
    SetRouteWeekdays,
    SpotCheckDelivery,
    TakeOrder,
)
from visit_service.domain.complaint import Complaint
from visit_service.domain.planning import cycle_offset_for, order_id_for, visit_id_for
from visit_service.domain.records import Coaching, KeyAccountReport, SpotCheck, Survey, half_year, survey_id_for
from visit_service.domain.route import Route
from visit_service.domain.suggestion import usual_quantities
from visit_service.domain.visit import Visit
from visit_service.projections.field import FieldStandards, PhotoBook, RoutePlanBook
from visit_service.projections.visits import ComplaintBook, FieldRecords, RouteBook, VisitBoard
from visit_service.queries import directory
from visit_service.queries.visits import next_unplanned_sequence

Handler = Callable[[Any, UnitOfWork], Awaitable[dict[str, Any]]]

LINE = {Role.rep, Role.supervisor, Role.area_manager, Role.sales_manager, Role.general_manager}
SUPERVISORS = LINE - {Role.rep}
SYSTEM = {Role.system}
# Commands only the service's own timers send.
TIMERS = {Role.service}


def inline_projections() -> list[Any]:
    return [
        VisitBoard(),
        RouteBook(),
        ComplaintBook(),
        FieldRecords(),
        RoutePlanBook(),
        PhotoBook(),
        FieldStandards(),
    ]


def rep_of(cmd_rep_id: str | None, actor: Actor) -> str:
    if cmd_rep_id is not None:
        if actor.role is Role.rep and cmd_rep_id != actor.id:
            raise PermissionDenied(f"rep {actor.id} acts for themselves, not for rep {cmd_rep_id}", code=OUTSIDE_LINE)
        return cmd_rep_id
    if actor.role is Role.rep:
        return actor.id
    raise invalid("rep_id", "name the rep this is for", "missing")


def visit_territory(visit: Visit) -> Territory:
    return Territory(visit.rep_id, visit.district_id, visit.area_id)


def visit_result(visit: Visit) -> dict[str, Any]:
    return {
        "visit_id": visit.id,
        "status": visit.status,
        "approval": visit.approval,
        "version": visit.version,
    }


# -- shared steps of the handlers ----------------------------------------------------------


def today(uow: UnitOfWork, timezone: str) -> date:
    return business_date(uow.clock.now(), timezone)


async def open_visit(uow: UnitOfWork, visit_id: str) -> Visit:
    visit = await uow.get(Visit, visit_id)
    ensure_can_act(uow.actor, visit_territory(visit), f"visit {visit_id}")
    return visit


async def saved(uow: UnitOfWork, visit: Visit, **extra: Any) -> dict[str, Any]:
    await uow.save(visit)
    return visit_result(visit) | extra


async def open_route(uow: UnitOfWork, route_id: str) -> Route:
    route = await uow.get(Route, route_id)
    ensure_can_act(uow.actor, await directory.rep_territory(uow.conn, route.rep_id, uow.actor), f"route {route_id}")
    return route


async def saved_route(uow: UnitOfWork, route: Route) -> dict[str, Any]:
    await uow.save(route)
    return {
        "route_id": route.id,
        "rep_id": route.rep_id,
        "weekdays": route.weekdays,
        "customer_ids": route.customer_ids,
        "version": route.version,
    }


async def changed_route(uow: UnitOfWork, route_id: str, change: Callable[[Route], object]) -> dict[str, Any]:
    """The route, in the actor's line, changed and saved."""
    route = await open_route(uow, route_id)
    change(route)
    return await saved_route(uow, route)


async def changed_complaint(
    uow: UnitOfWork, complaint_id: str, change: Callable[[Complaint], object]
) -> dict[str, Any]:
    """The complaint, in the actor's line, changed and saved."""
    complaint = await uow.get(Complaint, complaint_id)
    ensure_can_act(uow.actor, complaint.territory, f"complaint {complaint_id}")
    change(complaint)
    return await saved_complaint(uow, complaint)


async def saved_complaint(uow: UnitOfWork, complaint: Complaint) -> dict[str, Any]:
    await uow.save(complaint)
    return {
        "complaint_id": complaint.id,
        "status": complaint.status,
        "department": complaint.department,
        "version": complaint.version,
    }


async def visit_of_customer(uow: UnitOfWork, visit_id: str | None, customer_id: str) -> None:
    if visit_id is None:
        return
    visit = await uow.load(Visit, visit_id)
    if not visit.exists or visit.customer_id != customer_id:
        raise DomainError(
            f"visit {visit_id} is not a visit to customer {customer_id}",
            code="visit_not_for_customer",
            field="visit_id",
        )


# -- routes ---------------------------------------------------------------------------------


async def define_route(cmd: DefineRoute, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """Define a route: weekdays and customers in visiting order"""
    rep_id = rep_of(cmd.rep_id, uow.actor)
    ensure_can_act(uow.actor, await directory.rep_territory(uow.conn, rep_id, uow.actor), f"rep {rep_id}'s routes")
    for customer_id in cmd.customer_ids:
        await directory.customer_on_list(uow.conn, customer_id, rep_id)
    route = await uow.load(Route, cmd.route_id or str(uuid.uuid4()))
    route.define(
        rep_id,
        cmd.route_name,
        cmd.weekdays,
        cmd.customer_ids,
        cycle_weeks=cmd.cycle_weeks,
        cycle_offset=cycle_offset_for(cmd.first_week or today(uow, timezone), 1, cmd.cycle_weeks),
    )
    return await saved_route(uow, route)


async def add_route_customer(cmd: AddRouteCustomer, uow: UnitOfWork) -> dict[str, Any]:
    """Put a customer on a route (default: at the end)"""
    route = await open_route(uow, cmd.route_id)
    await directory.customer_on_list(uow.conn, cmd.customer_id, route.rep_id)
    route.add_customer(cmd.customer_id, cmd.position)
    return await saved_route(uow, route)


async def remove_route_customer(cmd: RemoveRouteCustomer, uow: UnitOfWork) -> dict[str, Any]:
    """Take a customer off a route"""
    return await changed_route(uow, cmd.route_id, lambda route: route.remove_customer(cmd.customer_id))


async def reorder_route(cmd: ReorderRoute, uow: UnitOfWork) -> dict[str, Any]:
    """Set a new visiting order (路序) of the route's customers"""
    return await changed_route(uow, cmd.route_id, lambda route: route.reorder(cmd.customer_ids))


async def set_route_weekdays(cmd: SetRouteWeekdays, uow: UnitOfWork) -> dict[str, Any]:
    """Set the weekdays a route is visited on"""
    return await changed_route(uow, cmd.route_id, lambda route: route.set_weekdays(cmd.weekdays))


# -- planning and approvals -----------------------------------------------------------------


async def plan_visit(
    cmd: PlanVisit, uow: UnitOfWork, *, high_value_grades: frozenset[str], high_value_approver: Role
) -> dict[str, Any]:
    """Plan a route visit for a business day (planning timer, or a planning system)"""
    visit_id = visit_id_for(cmd.rep_id, cmd.customer_id, cmd.business_date)
    visit = await uow.load(Visit, visit_id)
    if visit.exists:
        return visit_result(visit) | {"created": False}
    customer = await directory.customer_on_list(uow.conn, cmd.customer_id, cmd.rep_id)
    rep = await directory.staff_member(uow.conn, cmd.rep_id)
    visit.plan(
        rep_id=cmd.rep_id,
        customer_id=cmd.customer_id,
        business_date=cmd.business_date,
        route_id=cmd.route_id,
        sequence=cmd.sequence,
        district_id=(rep or {}).get("district_id") or customer["district_id"],
        area_id=(rep or {}).get("area_id") or customer["area_id"],
        key_account=customer["grade"] == "A",
        now=uow.clock.now(),
        approver_role=high_value_approver if customer["grade"] in high_value_grades else Role.supervisor,
    )
    return await saved(uow, visit, created=True)


async def request_unplanned_visit(cmd: RequestUnplannedVisit, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """Ask for a visit off the route (needs approval)"""
    rep_id = rep_of(cmd.rep_id, uow.actor)
    where = await directory.rep_territory(uow.conn, rep_id, uow.actor)
    ensure_can_act(uow.actor, where, f"rep {rep_id}'s visits")
    customer = await directory.customer_on_list(uow.conn, cmd.customer_id, rep_id)
    day = cmd.business_date or today(uow, timezone)
    if day < today(uow, timezone):
        raise DomainError(f"{day.isoformat()} is in the past", code="date_in_past", field="business_date")
    visit = await uow.load(Visit, visit_id_for(rep_id, cmd.customer_id, day))
    visit.request_unplanned(
        rep_id=rep_id,
        customer_id=cmd.customer_id,
        business_date=day,
        sequence=await next_unplanned_sequence(uow.conn, rep_id, day),
        district_id=where.district_id or customer["district_id"],
        area_id=where.area_id or customer["area_id"],
        requested_by=uow.actor.id,
        now=uow.clock.now(),
    )
    return await saved(uow, visit)


async def approve_visit(cmd: ApproveVisit, uow: UnitOfWork) -> dict[str, Any]:
    """Approve a key-account or unplanned visit"""
    visit = await uow.get(Visit, cmd.visit_id)
    ensure_can_approve(uow.actor, visit_territory(visit), f"visit {cmd.visit_id}")
    visit.approve(uow.actor.id, uow.actor.role, cmd.reason)
    return await saved(uow, visit)


async def reject_visit(cmd: RejectVisit, uow: UnitOfWork) -> dict[str, Any]:
    """Reject a visit approval request (with the reason)"""
    visit = await uow.get(Visit, cmd.visit_id)
    ensure_can_approve(uow.actor, visit_territory(visit), f"visit {cmd.visit_id}")
    visit.reject_approval(uow.actor.id, cmd.reason, uow.actor.role)
    return await saved(uow, visit)


async def flag_approval_overdue(cmd: FlagApprovalOverdue, uow: UnitOfWork) -> dict[str, Any]:
    """Flag an approval unanswered for 24 hours"""
    visit = await uow.get(Visit, cmd.visit_id)
    supervisor = await directory.supervisor_of(uow.conn, visit.rep_id, visit.district_id)
    visit.flag_approval_overdue(uow.clock.now(), supervisor)
    return await saved(uow, visit, supervisor_id=supervisor)


async def mark_visit_missed(cmd: MarkVisitMissed, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """Mark a visit not done by the end of its day missed"""
    visit = await uow.get(Visit, cmd.visit_id)
    visit.miss(uow.clock.now(), timezone)
    return await saved(uow, visit)


# -- the visit ------------------------------------------------------------------------------


async def count_stock(cmd: CountStock, uow: UnitOfWork) -> dict[str, Any]:
    """Step 2: stock per SKU on shelf and in store; suggests the order"""
    visit = await open_visit(uow, cmd.visit_id)
    customer = await directory.known_customer(uow.conn, visit.customer_id)
    visit.count_stock(
        cmd.lines,
        await directory.known_skus(uow.conn, [line.sku for line in cmd.lines]),
        usual_quantities(await directory.recent_orders(uow.conn, visit.customer_id)),
        await directory.required_skus(uow.conn, customer["channel"]),
    )
    return await saved(uow, visit, suggested=[line.model_dump() for line in visit.suggested])


async def check_cooler(cmd: CheckCooler, uow: UnitOfWork) -> dict[str, Any]:
    """Step 4: check one cooler asset"""
    visit = await open_visit(uow, cmd.visit_id)
    visit.check_cooler(
        cmd.cooler_id,
        at_outlet=cmd.at_outlet,
        best_position=cmd.best_position,
        powered=cmd.powered,
        light_on=cmd.light_on,
        clean=cmd.clean,
        working=cmd.working,
        required_packs=cmd.required_packs,
        misused=cmd.misused,
    )
    return await saved(uow, visit)


async def observe_competitor(cmd: ObserveCompetitor, uow: UnitOfWork) -> dict[str, Any]:
    """Step 5: a competitor observation"""
    visit = await open_visit(uow, cmd.visit_id)
    visit.observe_competitor(cmd.brand, cmd.product, cmd.price_fen, cmd.promotion, cmd.stock_age_days)
    return await saved(uow, visit)


async def take_order(cmd: TakeOrder, uow: UnitOfWork) -> dict[str, Any]:
    """Step 7: the order taken (handed to the orders service)"""
    visit = await open_visit(uow, cmd.visit_id)
    order_id = order_id_for(visit.id)
    visit.take_order(order_id, cmd.lines, await directory.known_skus(uow.conn, [line.sku for line in cmd.lines]))
    return await saved(uow, visit, order_id=order_id)


async def refuse_order(cmd: RefuseOrder, uow: UnitOfWork) -> dict[str, Any]:
    """Step 7: no order, with the customer's reason"""
    visit = await open_visit(uow, cmd.visit_id)
    visit.refuse_order(cmd.reason)
    return await saved(uow, visit)


async def confirm_delivery(cmd: ConfirmDelivery, uow: UnitOfWork) -> dict[str, Any]:
    """Step 8: was the previous order delivered?"""
    visit = await open_visit(uow, cmd.visit_id)
    if cmd.order_id is not None:
        previous = await directory.order(uow.conn, cmd.order_id)
        if previous is None or previous["customer_id"] != visit.customer_id:
            raise DomainError(
                f"order {cmd.order_id} is not an order of customer {visit.customer_id}",
                code="order_not_for_customer",
                field="order_id",
            )
    else:
        previous = await directory.previous_order(uow.conn, visit.customer_id, visit.id)
        if previous is None:
            raise DomainError(
                f"customer {visit.customer_id} has no previous order to confirm", code="no_previous_order"
            )
    visit.confirm_delivery(previous["order_id"], cmd.delivered)
    return await saved(uow, visit, order_id=previous["order_id"])


async def check_out(cmd: CheckOut, uow: UnitOfWork) -> dict[str, Any]:
    """Check out; the visit is successful when an order was taken"""
    visit = await open_visit(uow, cmd.visit_id)
    visit.check_out(uow.clock.now())
    return await saved(uow, visit, successful=visit.order_id is not None)


# -- complaints -----------------------------------------------------------------------------


async def receive_complaint(cmd: ReceiveComplaint, uow: UnitOfWork) -> dict[str, Any]:
    """Record a customer's complaint (48 h to acknowledge)"""
    customer = await directory.known_customer(uow.conn, cmd.customer_id)
    ensure_can_act(uow.actor, territory_of(customer), f"customer {cmd.customer_id}")
    now = uow.clock.now()
    received_at = cmd.received_at or now
    if received_at.tzinfo is None:
        raise invalid("received_at", "give a time zone", "timezone_missing")
    if received_at > now:
        raise DomainError(
            "a complaint cannot be received in the future", code="received_in_future", field="received_at"
        )
    complaint = await uow.load(Complaint, cmd.complaint_id or str(uuid.uuid4()))
    complaint.receive(
        customer_id=cmd.customer_id,
        channel=cmd.channel,
        category=cmd.category,
        severity=cmd.severity,
        received_at=received_at,
        rep_id=customer["rep_id"],
        description=cmd.description,
        district_id=customer["district_id"],
        area_id=customer["area_id"],
    )
    return await saved_complaint(uow, complaint)


async def acknowledge_complaint(cmd: AcknowledgeComplaint, uow: UnitOfWork) -> dict[str, Any]:
    """Acknowledge a complaint (someone sent or a letter out)"""
    return await changed_complaint(
        uow, cmd.complaint_id, lambda complaint: complaint.acknowledge(uow.clock.now(), uow.actor.id)
    )


async def route_complaint(cmd: RouteComplaint, uow: UnitOfWork) -> dict[str, Any]:
    """Route a complaint to the responsible department"""
    return await changed_complaint(uow, cmd.complaint_id, lambda complaint: complaint.route(cmd.department))


async def resolve_complaint(cmd: ResolveComplaint, uow: UnitOfWork) -> dict[str, Any]:
    """Resolve a complaint (customer misuse is explained)"""
    return await changed_complaint(
        uow, cmd.complaint_id, lambda complaint: complaint.resolve(cmd.resolution, cmd.customer_misuse)
    )


async def close_complaint(cmd: CloseComplaint, uow: UnitOfWork) -> dict[str, Any]:
    """Close a resolved complaint with the customer's confirmation"""
    return await changed_complaint(uow, cmd.complaint_id, lambda complaint: complaint.close())


async def flag_complaint_breach(cmd: FlagComplaintBreach, uow: UnitOfWork) -> dict[str, Any]:
    """Flag a complaint not acknowledged within 48 hours"""
    complaint = await uow.get(Complaint, cmd.complaint_id)
    complaint.flag_breach(uow.clock.now())
    return await saved_complaint(uow, complaint)


# -- surveys, reports, coaching, spot checks ------------------------------------------------


async def record_survey(cmd: RecordSurvey, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """Record a customer's half-yearly satisfaction survey"""
    customer = await directory.known_customer(uow.conn, cmd.customer_id)
    ensure_can_act(uow.actor, territory_of(customer), f"customer {cmd.customer_id}")
    day = today(uow, timezone)
    period = cmd.period or half_year(day)
    if period > half_year(day):
        raise DomainError(f"period {period} has not begun", code="period_in_future", field="period")
    survey = await uow.load(Survey, survey_id_for(cmd.customer_id, period))
    survey.record_results(
        customer_id=cmd.customer_id,
        period=period,
        scores=cmd.scores,
        satisfied=cmd.satisfied,
        rep_id=customer["rep_id"],
        business_date=day,
        district_id=customer["district_id"],
        area_id=customer["area_id"],
    )
    await uow.save(survey)
    return {"survey_id": survey.id, "period": period}


async def file_key_account_report(cmd: FileKeyAccountReport, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """File a key-account visit report (走访用户报告单)"""
    customer = await directory.known_customer(uow.conn, cmd.customer_id)
    ensure_can_act(uow.actor, territory_of(customer), f"customer {cmd.customer_id}")
    await visit_of_customer(uow, cmd.visit_id, cmd.customer_id)
    report = await uow.load(KeyAccountReport, cmd.report_id or str(uuid.uuid4()))
    report.file(
        customer_id=cmd.customer_id,
        issues=cmd.issues,
        summary=cmd.summary,
        filed_by=uow.actor.id,
        filed_on=today(uow, timezone),
        visit_id=cmd.visit_id,
        district_id=customer["district_id"],
        area_id=customer["area_id"],
    )
    await uow.save(report)
    return {"report_id": report.id}


async def record_coaching(cmd: RecordCoaching, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """Record ride-along coaching of a rep (跟线)"""
    where = await directory.rep_territory(uow.conn, cmd.rep_id, uow.actor)
    ensure_supervises(uow.actor, where, f"coaching of rep {cmd.rep_id}")
    if cmd.visit_id is not None:
        visit = await uow.load(Visit, cmd.visit_id)
        if not visit.exists or visit.rep_id != cmd.rep_id:
            raise DomainError(
                f"visit {cmd.visit_id} is not rep {cmd.rep_id}'s", code="visit_not_for_rep", field="visit_id"
            )
    note = await uow.load(Coaching, str(uuid.uuid4()))
    note.record_note(
        supervisor_id=uow.actor.id,
        rep_id=cmd.rep_id,
        business_date=today(uow, timezone),
        notes=cmd.notes,
        strengths=cmd.strengths,
        improvements=cmd.improvements,
        visit_id=cmd.visit_id,
        customer_id=cmd.customer_id,
    )
    await uow.save(note)
    return {"coaching_id": note.id}


async def spot_check_delivery(cmd: SpotCheckDelivery, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """Record a delivery spot check"""
    customer = await directory.known_customer(uow.conn, cmd.customer_id)
    ensure_supervises(uow.actor, territory_of(customer), f"deliveries to customer {cmd.customer_id}")
    known = await directory.order(uow.conn, cmd.order_id)
    if known is None or known["customer_id"] != cmd.customer_id:
        raise DomainError(
            f"order {cmd.order_id} is not a known order of customer {cmd.customer_id}",
            code="order_not_for_customer",
            field="order_id",
        )
    check = await uow.load(SpotCheck, str(uuid.uuid4()))
    check.record_check(
        order_id=cmd.order_id,
        customer_id=cmd.customer_id,
        checked_by=uow.actor.id,
        business_date=today(uow, timezone),
        delivered=cmd.delivered,
        on_time=cmd.on_time,
        quantities_match=cmd.quantities_match,
        notes=cmd.notes,
    )
    await uow.save(check)
    return {"spot_check_id": check.id}


# -- the bus --------------------------------------------------------------------------------


def build_bus(
    registry: EventRegistry,
    clock: Clock,
    *,
    timezone: str = "Asia/Shanghai",
    high_value_grades: frozenset[str] = frozenset(),
    high_value_approver: Role = Role.area_manager,
) -> CommandBus:
    """The visit commands, one line each. `high_value_grades`: customer grades whose
    key-account visits are approved at director level (`high_value_approver` or above)
    instead of by the supervisor; empty: none."""
    bus = CommandBus(registry, clock, inline_projections=inline_projections())
    tz = {"timezone": timezone}
    bus.command(DefineRoute, roles=LINE)(bound(define_route, **tz))
    bus.command(AddRouteCustomer, roles=LINE)(add_route_customer)
    bus.command(RemoveRouteCustomer, roles=LINE)(remove_route_customer)
    bus.command(ReorderRoute, roles=LINE)(reorder_route)
    bus.command(SetRouteWeekdays, roles=LINE)(set_route_weekdays)
    bus.command(PlanVisit, roles=TIMERS | SYSTEM)(
        bound(plan_visit, high_value_grades=high_value_grades, high_value_approver=high_value_approver)
    )
    bus.command(RequestUnplannedVisit, roles=LINE)(bound(request_unplanned_visit, **tz))
    bus.command(ApproveVisit, roles=SUPERVISORS)(approve_visit)
    bus.command(RejectVisit, roles=SUPERVISORS)(reject_visit)
    bus.command(FlagApprovalOverdue, roles=TIMERS)(flag_approval_overdue)
    bus.command(MarkVisitMissed, roles=TIMERS)(bound(mark_visit_missed, **tz))
    bus.command(CountStock, roles=LINE)(count_stock)
    bus.command(CheckCooler, roles=LINE)(check_cooler)
    bus.command(ObserveCompetitor, roles=LINE)(observe_competitor)
    bus.command(TakeOrder, roles=LINE)(take_order)
    bus.command(RefuseOrder, roles=LINE)(refuse_order)
    bus.command(ConfirmDelivery, roles=LINE)(confirm_delivery)
    bus.command(CheckOut, roles=LINE)(check_out)
    bus.command(ReceiveComplaint, roles=LINE | SYSTEM)(receive_complaint)
    bus.command(AcknowledgeComplaint, roles=LINE)(acknowledge_complaint)
    bus.command(RouteComplaint, roles=LINE)(route_complaint)
    bus.command(ResolveComplaint, roles=LINE)(resolve_complaint)
    bus.command(CloseComplaint, roles=LINE)(close_complaint)
    bus.command(FlagComplaintBreach, roles=TIMERS)(flag_complaint_breach)
    bus.command(RecordSurvey, roles=LINE | SYSTEM)(bound(record_survey, **tz))
    bus.command(FileKeyAccountReport, roles=LINE)(bound(file_key_account_report, **tz))
    bus.command(RecordCoaching, roles=SUPERVISORS)(bound(record_coaching, **tz))
    bus.command(SpotCheckDelivery, roles=SUPERVISORS)(bound(spot_check_delivery, **tz))
    return bus
