"""Command handlers: load → decide → save, in the transaction the bus opens (a command's own,
or a group commit's shared with other commands of its batch). One function each, registered
on the bus by `build_bus`; sales control's are in `units`."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from orders_service.application import ordering, units
from orders_service.application.history import import_records
from orders_service.domain import commands as c
from orders_service.domain.catalogue import RequiredSkuList, Sku
from orders_service.domain.customers import CustomerCard, may_act_for, require_territory
from orders_service.domain.events import Allocation, GiftRule
from orders_service.domain.order import Order
from orders_service.domain.ordering import RequestedLine
from orders_service.domain.policy import OrderPolicy
from orders_service.domain.promotion import Promotion
from orders_service.domain.receivables import (
    CollectionFile,
    Invoice,
    Payment,
    allocate,
    deposit_payment_id_for,
    due_date,
    invoice_id_for,
)
from orders_service.domain.returns import ReturnRequest, delivered_lines
from orders_service.queries import catalogue, receivables, returns
from orders_service.queries.customers import customer_card
from salesplatform.clock import Clock, business_date
from salesplatform.commands import CommandBus, bound
from salesplatform.errors import NotFound, PermissionDenied
from salesplatform.events import EventRegistry, Role
from salesplatform.projections import Projection
from salesplatform.territory import OUTSIDE_LINE
from salesplatform.uow import UnitOfWork

APPROVERS = {Role.supervisor, Role.area_manager, Role.sales_manager, Role.general_manager}
SELLERS = {Role.rep, *APPROVERS, Role.system}
OPERATIONS = {*APPROVERS, Role.system}  # dispatch and delivery: the team or the logistics system
CATALOGUE = {Role.sales_manager, Role.general_manager, Role.system}


async def known_customer(uow: UnitOfWork, customer_id: str) -> CustomerCard:
    card = await customer_card(uow.conn, customer_id)
    if card is None:
        raise NotFound(f"customer {customer_id} is not known here", code="unknown_customer", field="customer_id")
    return card


async def require_order_territory(uow: UnitOfWork, order: Order) -> CustomerCard | None:
    """The order's customer as it is now, or as it was when ordered: either line may act (a
    rep keeps the orders they took even after the customer moves on)."""
    current = await customer_card(uow.conn, order.customer_id)
    then = CustomerCard(
        order.customer_id,
        "",
        district_id=order.district_id,
        area_id=order.area_id,
        rep_id=order.rep_id,
    )
    if not any(may_act_for(uow.actor, card) for card in (current, then) if card is not None):
        require_territory(uow.actor, then)
    return current


async def release_promotions(uow: UnitOfWork, order: Order) -> list[Promotion]:
    promotions = [await uow.load(Promotion, pid) for pid in order.promotion_ids]
    for promotion in promotions:
        promotion.release(order.id)
    return promotions


async def return_in_territory(uow: UnitOfWork, return_id: str) -> ReturnRequest:
    """The return, if the caller may act on its order (inspectors and systems: every return)."""
    ret = await uow.get(ReturnRequest, return_id, "return")
    if uow.actor.role not in (Role.inspector, Role.system):
        await require_order_territory(uow, await uow.get(Order, ret.order_id, "order"))
    return ret


def _return_summary(ret: ReturnRequest) -> dict[str, Any]:
    route = ret.route
    return {
        "return_id": ret.id,
        "order_id": ret.order_id,
        "status": ret.status,
        "amount_fen": ret.amount_fen,
        "inspection_required": route.inspection_required,
        "approver_role": route.approver_role.value,
        "lines": [line.model_dump() for line in ret.lines],
    }


def _customer_of(cmd: c.PlaceOrder) -> list[str]:
    return [ordering.customer_claim(cmd.customer_id)]


async def define_sku(cmd: c.DefineSku, uow: UnitOfWork) -> dict[str, Any]:
    """Define a SKU with its default list and floor price."""
    sku = await uow.load(Sku, cmd.sku)
    sku.define(
        name=cmd.sku_name,
        brand=cmd.brand,
        product_group=cmd.product_group,
        package=cmd.package,
        list_price_fen=cmd.list_price_fen,
        floor_price_fen=cmd.floor_price_fen,
    )
    await uow.save(sku)
    return {"sku": sku.id}


async def set_sku_price(cmd: c.SetSkuPrice, uow: UnitOfWork) -> dict[str, Any]:
    """Set a SKU's list and floor price for an area (area managers: their own area) or the default."""
    if uow.actor.role == Role.area_manager and (cmd.area_id is None or cmd.area_id != uow.actor.area):
        raise PermissionDenied("an area manager sets prices of their own area only", code=OUTSIDE_LINE)
    sku = await uow.get(Sku, cmd.sku, "SKU")
    sku.set_price(area_id=cmd.area_id, list_price_fen=cmd.list_price_fen, floor_price_fen=cmd.floor_price_fen)
    await uow.save(sku)
    return {"sku": sku.id, "area_id": cmd.area_id}


async def set_required_skus(cmd: c.SetRequiredSkus, uow: UnitOfWork) -> dict[str, Any]:
    """Set the required-SKU list (必备SKU) of a channel."""
    required = await uow.load(RequiredSkuList, cmd.channel)
    required.set(cmd.skus, await catalogue.known_skus(uow.conn, cmd.skus))
    await uow.save(required)
    return {"channel": cmd.channel, "skus": list(required.skus)}


async def place_order(cmd: c.PlaceOrder, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """Place an order; it is confirmed at once unless a rule sends it for approval."""
    order_id = ordering.requested_order_id(cmd, uow.actor.id)
    return await ordering.place(
        uow,
        order_id=order_id or str(uuid.uuid4()),
        new_id=order_id is None,
        customer_id=cmd.customer_id,
        lines=[RequestedLine(x.sku, x.quantity, x.unit_price_fen) for x in cmd.lines],
        source=cmd.source,
        visit_id=cmd.visit_id,
        policy=policy,
        authorize=lambda card: require_territory(uow.actor, card),
    )


async def approve_order(cmd: c.ApproveOrder, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """Approve an order awaiting approval (rights tiered by role)."""
    order = await uow.get(Order, cmd.order_id, "order")
    await require_order_territory(uow, order)
    order.approve(uow.actor, uow.clock.now(), policy.delivery_hours, cmd.reason)
    await uow.save(order)
    return ordering.summary(order)


async def reject_order(cmd: c.RejectOrder, uow: UnitOfWork) -> dict[str, Any]:
    """Reject an order awaiting approval, with a reason."""
    order = await uow.get(Order, cmd.order_id, "order")
    await require_order_territory(uow, order)
    order.reject(uow.actor, cmd.reason)
    promotions = await release_promotions(uow, order)
    await uow.save(order, *promotions)
    return ordering.summary(order)


async def dispatch_order(cmd: c.DispatchOrder, uow: UnitOfWork) -> dict[str, Any]:
    """Record that a confirmed order left the warehouse."""
    order = await uow.get(Order, cmd.order_id, "order")
    await require_order_territory(uow, order)
    order.dispatch()
    await uow.save(order)
    return ordering.summary(order)


async def deliver_order(cmd: c.DeliverOrder, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """Record a delivery; issues the invoice (due after the customer's payment terms)."""
    order = await uow.get(Order, cmd.order_id, "order")
    card = await require_order_territory(uow, order)
    now = uow.clock.now()
    order.deliver(cmd.delivered_at or now, now)
    assert order.delivered_at is not None
    issued_on = business_date(order.delivered_at, policy.timezone)
    invoice = await uow.load(Invoice, invoice_id_for(order.id))
    invoice.issue(
        order_id=order.id,
        customer_id=order.customer_id,
        amount_fen=order.amount_fen,
        issued_on=issued_on,
        due_on=due_date(issued_on, card.payment_terms_days if card else None),
    )
    saved = [order, invoice]
    if order.deposit_total_fen:
        # The deposit was paid ahead: it settles the invoice as far as it goes.
        deposit = await uow.load(Payment, deposit_payment_id_for(order.id))
        deposit.receive(
            customer_id=order.customer_id,
            amount_fen=order.deposit_total_fen,
            received_on=order.deposit_last_on or issued_on,
            allocations=[Allocation(invoice_id=invoice.id, amount_fen=order.deposit_total_fen)],
        )
        saved.append(deposit)
    await uow.save(*saved)
    return ordering.summary(order, invoice_id=invoice.id, on_time=order.on_time)


async def confirm_delivery(cmd: c.ConfirmDelivery, uow: UnitOfWork) -> dict[str, Any]:
    """The rep confirms on the next visit whether the order arrived (上次订货是否送到)."""
    order = await uow.get(Order, cmd.order_id, "order")
    await require_order_territory(uow, order)
    order.confirm_delivery(cmd.delivered)
    await uow.save(order)
    return ordering.summary(order, delivery_confirmed=cmd.delivered)


async def cancel_order(cmd: c.CancelOrder, uow: UnitOfWork) -> dict[str, Any]:
    """Cancel an order before dispatch, with a reason."""
    order = await uow.get(Order, cmd.order_id, "order")
    await require_order_territory(uow, order)
    order.cancel(cmd.reason)
    promotions = await release_promotions(uow, order)
    await uow.save(order, *promotions)
    return ordering.summary(order)


async def record_deposit(cmd: c.RecordDeposit, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """Record a deposit (定金) on an order; a partial one must be completed within 24 hours."""
    order = await uow.get(Order, cmd.order_id, "order")
    await require_order_territory(uow, order)
    order.record_deposit(cmd.amount_fen, cmd.agreed_fen, uow.clock.now(), policy.timezone, policy.deposit_hours)
    await uow.save(order)
    return ordering.summary(
        order,
        deposit_total_fen=order.deposit_total_fen,
        deposit_agreed_fen=order.deposit_agreed_fen,
        deposit_due_by=order.deposit_due_by.isoformat() if order.deposit_due_by else None,
    )


async def flag_delivery_overdue(cmd: c.FlagDeliveryOverdue, uow: UnitOfWork) -> dict[str, Any]:
    """Timer: flag a delivery past its 24 hours."""
    order = await uow.get(Order, cmd.order_id, "order")
    order.flag_delivery_overdue(uow.clock.now())
    await uow.save(order)
    return {"order_id": order.id, "delivery_overdue": True}


async def flag_deposit_overdue(cmd: c.FlagDepositOverdue, uow: UnitOfWork) -> dict[str, Any]:
    """Timer: flag a partial deposit past its 24 hours."""
    order = await uow.get(Order, cmd.order_id, "order")
    order.flag_deposit_overdue(uow.clock.now())
    await uow.save(order)
    return {"order_id": order.id, "deposit_overdue": True}


async def record_payment(cmd: c.RecordPayment, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """Record a payment (partial too), applied oldest invoice first unless allocations are given."""
    card = await known_customer(uow, cmd.customer_id)
    require_territory(uow.actor, card)
    await uow.claim(f"receivables:{card.customer_id}")
    open_now = await receivables.open_invoices(uow.conn, card.customer_id)
    requested = [(a.invoice_id, a.amount_fen) for a in cmd.allocations] if cmd.allocations else None
    allocations = allocate(cmd.amount_fen, open_now, requested)
    payment = await uow.load(Payment, cmd.payment_id or str(uuid.uuid4()))
    payment.receive(
        customer_id=card.customer_id,
        amount_fen=cmd.amount_fen,
        received_on=cmd.received_on or business_date(uow.clock.now(), policy.timezone),
        allocations=allocations,
    )
    await uow.save(payment)
    return {
        "payment_id": payment.id,
        "amount_fen": cmd.amount_fen,
        "allocations": [a.model_dump() for a in allocations],
    }


async def add_collection_note(cmd: c.AddCollectionNote, uow: UnitOfWork) -> dict[str, Any]:
    """Note a collection follow-up (拖欠款催收) on a customer's debt."""
    card = await known_customer(uow, cmd.customer_id)
    require_territory(uow.actor, card)
    notes = await uow.load(CollectionFile, card.customer_id)
    note_id = str(uuid.uuid4())
    notes.note(
        note_id=note_id,
        invoice_id=cmd.invoice_id,
        note=cmd.note,
        promised_on=cmd.promised_on,
        next_follow_up_on=cmd.next_follow_up_on,
    )
    await uow.save(notes)
    return {"note_id": note_id, "customer_id": card.customer_id}


async def plan_promotion(cmd: c.PlanPromotion, uow: UnitOfWork) -> dict[str, Any]:
    """Plan a promotion (促销): period, SKUs, channels, discount or gift rule, cost budget."""
    await uow.claim(ordering.PROMOTIONS_CLAIM)  # orders of this batch read promotions again
    unknown = set(cmd.skus) - await catalogue.known_skus(uow.conn, cmd.skus)
    if unknown:
        raise NotFound(f"unknown SKUs: {', '.join(sorted(unknown))}", code="unknown_sku", field="skus")
    promotion = await uow.load(Promotion, cmd.promotion_id or str(uuid.uuid4()))
    promotion.plan(
        name=cmd.promotion_name,
        starts_on=cmd.starts_on,
        ends_on=cmd.ends_on,
        skus=cmd.skus,
        channels=list(cmd.channels),
        discount_percent=cmd.discount_percent,
        gift_rule=GiftRule(buy=cmd.gift_rule.buy, get=cmd.gift_rule.get) if cmd.gift_rule else None,
        budget_fen=cmd.budget_fen,
    )
    await uow.save(promotion)
    return {"promotion_id": promotion.id}


async def request_return(cmd: c.RequestReturn, uow: UnitOfWork) -> dict[str, Any]:
    """Request a return (退回产品处理单) of delivered goods: lines, scope, reason."""
    order = await uow.get(Order, cmd.order_id, "order")
    await require_order_territory(uow, order)
    await uow.claim(f"returns:{order.id}")
    ret = await uow.load(ReturnRequest, cmd.return_id or str(uuid.uuid4()))
    detail = f"{cmd.wrong_shipment_kind}: {cmd.detail}".strip() if cmd.wrong_shipment_kind else cmd.detail
    ret.request(
        order_id=order.id,
        customer_id=order.customer_id,
        order_delivered=order.delivered_at is not None,
        delivered=delivered_lines(order.lines),
        returned=await returns.returned_so_far(uow.conn, order.id),
        lines=[(x.sku, x.quantity) for x in cmd.lines] if cmd.lines else None,
        scope=cmd.scope,
        reason=cmd.reason,
        detail=detail,
    )
    await uow.save(ret)
    return _return_summary(ret)


async def record_return_inspection(cmd: c.RecordReturnInspection, uow: UnitOfWork) -> dict[str, Any]:
    """The inspector's re-inspection result; a confirmed quality defect assigns a corrective action."""
    ret = await return_in_territory(uow, cmd.return_id)
    ret.inspect(
        uow.actor, confirmed=cmd.confirmed, notes=cmd.notes, department=cmd.department, action=cmd.corrective_action
    )
    await uow.save(ret)
    return _return_summary(ret)


async def approve_return(cmd: c.ApproveReturn, uow: UnitOfWork) -> dict[str, Any]:
    """Approve a return (the role its reason and scope require)."""
    ret = await return_in_territory(uow, cmd.return_id)
    ret.approve(uow.actor, cmd.reason)
    await uow.save(ret)
    return _return_summary(ret)


async def reject_return(cmd: c.RejectReturn, uow: UnitOfWork) -> dict[str, Any]:
    """Reject a return; the reason is kept."""
    ret = await return_in_territory(uow, cmd.return_id)
    ret.reject(uow.actor, cmd.reason)
    await uow.save(ret)
    return _return_summary(ret)


async def resolve_return(cmd: c.ResolveReturn, uow: UnitOfWork) -> dict[str, Any]:
    """Resolve an approved return: exchange, refund, credit note or compensation."""
    ret = await return_in_territory(uow, cmd.return_id)
    ret.resolve(uow.actor, cmd.resolution, cmd.amount_fen)
    await uow.save(ret)
    return _return_summary(ret)


async def receive_returned_goods(cmd: c.ReceiveReturnedGoods, uow: UnitOfWork) -> dict[str, Any]:
    """Record that the returned goods arrived back."""
    ret = await return_in_territory(uow, cmd.return_id)
    ret.receive_goods()
    await uow.save(ret)
    return _return_summary(ret)


async def import_history(cmd: c.ImportHistory, uow: UnitOfWork, *, policy: OrderPolicy) -> dict[str, Any]:
    """Import historical orders, deliveries, cancellations and payments; answers with the
    rejected records."""
    report = await import_records(uow.conn, cmd.records, actor=uow.actor, clock=uow.clock, policy=policy)
    return report.to_dict()


def build_bus(registry: EventRegistry, clock: Clock, policy: OrderPolicy, inline: list[Projection]) -> CommandBus:
    """Every command of the service, one line each; sales control's are registered by `units`."""
    bus = CommandBus(registry, clock, inline_projections=inline)
    units.register(bus, policy)
    bus.command(c.DefineSku, roles=CATALOGUE)(define_sku)
    bus.command(c.SetSkuPrice, roles={Role.area_manager, *CATALOGUE})(set_sku_price)
    bus.command(c.SetRequiredSkus, roles=CATALOGUE)(set_required_skus)
    bus.command(
        c.PlaceOrder, roles=SELLERS, batched=True, claims=_customer_of, preload=partial(ordering.preload, policy=policy)
    )(bound(place_order, policy=policy))
    bus.command(c.ApproveOrder, roles=APPROVERS)(bound(approve_order, policy=policy))
    bus.command(c.RejectOrder, roles=APPROVERS)(reject_order)
    bus.command(c.DispatchOrder, roles=OPERATIONS)(dispatch_order)
    bus.command(c.DeliverOrder, roles=OPERATIONS)(bound(deliver_order, policy=policy))
    bus.command(c.ConfirmDelivery, roles=SELLERS)(confirm_delivery)
    bus.command(c.CancelOrder, roles=SELLERS)(cancel_order)
    bus.command(c.RecordDeposit, roles=SELLERS)(bound(record_deposit, policy=policy))
    bus.command(c.FlagDeliveryOverdue, roles={Role.service})(flag_delivery_overdue)
    bus.command(c.FlagDepositOverdue, roles={Role.service})(flag_deposit_overdue)
    bus.command(c.RecordPayment, roles=SELLERS)(bound(record_payment, policy=policy))
    bus.command(c.AddCollectionNote, roles=SELLERS)(add_collection_note)
    bus.command(c.PlanPromotion, roles=CATALOGUE)(plan_promotion)
    bus.command(c.RequestReturn, roles=SELLERS)(request_return)
    bus.command(c.RecordReturnInspection, roles={Role.inspector})(record_return_inspection)
    bus.command(c.ApproveReturn, roles=APPROVERS)(approve_return)
    bus.command(c.RejectReturn, roles=APPROVERS)(reject_return)
    bus.command(c.ResolveReturn, roles={Role.area_manager, Role.sales_manager, Role.general_manager, Role.system})(
        resolve_return
    )
    bus.command(c.ReceiveReturnedGoods, roles={*OPERATIONS, Role.inspector})(receive_returned_goods)
    bus.command(c.ImportHistory, roles={Role.sales_manager, Role.general_manager, Role.system})(
        bound(import_history, policy=policy)
    )
    return bus
