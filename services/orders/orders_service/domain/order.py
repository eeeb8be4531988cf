"""The order: placed → (approval) → confirmed → dispatched → delivered → confirmed by the rep on the
next visit; cancelled with a reason before dispatch; deposits (定金) on the way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from orders_service.domain.deposits import deposit_overdue, next_deposit
from orders_service.domain.events import (
    OrderApprovalRequired,
    OrderApproved,
    OrderCancelled,
    OrderConfirmed,
    OrderDelivered,
    OrderDeliveryConfirmed,
    OrderDeliveryOverdue,
    OrderDepositCompleted,
    OrderDepositOverdue,
    OrderDepositRecorded,
    OrderDispatched,
    OrderLine,
    OrderPlaced,
    OrderPromotionDeclined,
    OrderRejected,
    Source,
)
from salesplatform.aggregate import Aggregate
from salesplatform.clock import business_date
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Actor, Event, Role

PENDING = "pending_approval"
CONFIRMED = "confirmed"
DISPATCHED = "dispatched"
DELIVERED = "delivered"
REJECTED = "rejected"
CANCELLED = "cancelled"
# Orders in these states still count against the customer's credit until they are invoiced.
OPEN_STATES = (CONFIRMED, DISPATCHED)


class Order(Aggregate):
    stream_prefix = "order"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.customer_id = ""
        self.rep_id: str | None = None
        self.district_id: str | None = None
        self.area_id: str | None = None
        self.source: str = ""
        self.lines: tuple[OrderLine, ...] = ()
        self.amount_fen = 0
        self.business_date: date | None = None
        self.status = ""
        self.reasons: tuple[str, ...] = ()
        self.required_role: Role | None = None
        self.confirmed_at: datetime | None = None
        self.deliver_by: datetime | None = None
        self.delivered_at: datetime | None = None
        self.on_time: bool | None = None
        self.delivery_overdue = False
        self.delivery_confirmed: bool | None = None
        self.deposit_agreed_fen = 0
        self.deposit_total_fen = 0
        self.deposit_due_by: datetime | None = None
        self.deposit_last_on: date | None = None
        self.deposit_overdue = False

    @property
    def promotion_ids(self) -> list[str]:
        return sorted({line.promotion_id for line in self.lines if line.promotion_id})

    def apply(self, event: Event) -> None:
        match event:
            case OrderPlaced():
                self.customer_id, self.rep_id = event.customer_id, event.rep_id
                self.district_id, self.area_id = event.district_id, event.area_id
                self.source, self.lines, self.amount_fen = event.source, event.lines, event.amount_fen
                self.business_date = event.business_date
                self.status = "placed"
            case OrderApprovalRequired():
                self.status = PENDING
                self.reasons, self.required_role = event.reasons, Role(event.required_role)
            case OrderApproved():
                self.status = "approved"
            case OrderRejected():
                self.status = REJECTED
            case OrderConfirmed():
                self.status = CONFIRMED
                self.confirmed_at, self.deliver_by = event.confirmed_at, event.deliver_by
            case OrderDispatched():
                self.status = DISPATCHED
            case OrderDelivered():
                self.status = DELIVERED
                self.delivered_at, self.on_time = event.delivered_at, event.on_time
            case OrderDeliveryOverdue():
                self.delivery_overdue = True
            case OrderDeliveryConfirmed():
                self.delivery_confirmed = event.delivered
            case OrderCancelled():
                self.status = CANCELLED
            case OrderDepositRecorded():
                self.deposit_agreed_fen, self.deposit_total_fen = event.agreed_fen, event.total_fen
                self.deposit_due_by = event.due_by
                self.deposit_last_on = event.received_on
            case OrderDepositCompleted():
                self.deposit_due_by = None
            case OrderDepositOverdue():
                self.deposit_overdue = True
            case OrderPromotionDeclined():
                pass

    # -- decisions ------------------------------------------------------------------------

    def place(
        self,
        *,
        customer_id: str,
        rep_id: str | None,
        district_id: str | None,
        area_id: str | None,
        source: Source,
        visit_id: str | None,
        lines: Sequence[OrderLine],
        business_date: date,
        placed_at: datetime,
        declined: Sequence[tuple[str, str]],
        reasons: Sequence[str],
        required_role: Role | None,
        now: datetime,
        delivery_hours: int,
    ) -> None:
        if self.exists:
            raise DomainError(f"order {self.id} already exists", code="order_exists")
        self.record(
            OrderPlaced(
                order_id=self.id,
                customer_id=customer_id,
                rep_id=rep_id,
                district_id=district_id,
                area_id=area_id,
                source=source,
                visit_id=visit_id,
                lines=tuple(lines),
                amount_fen=sum(line.amount_fen for line in lines),
                business_date=business_date,
                placed_at=placed_at,
            )
        )
        for promotion_id, why in declined:
            self.record(OrderPromotionDeclined(order_id=self.id, promotion_id=promotion_id, reason=why))
        if reasons:
            assert required_role is not None
            self.record(
                OrderApprovalRequired(
                    order_id=self.id,
                    reasons=tuple(reasons),
                    required_role=required_role.value,
                )
            )
        else:
            self._confirm(now, delivery_hours)

    def _confirm(self, now: datetime, delivery_hours: int) -> None:
        self.record(
            OrderConfirmed(
                order_id=self.id,
                confirmed_at=now,
                deliver_by=now + timedelta(hours=delivery_hours),
            )
        )

    def _may_decide(self, actor: Actor) -> None:
        if self.status != PENDING:
            raise DomainError(
                f"order {self.id} is {self.status}, not awaiting approval",
                code="order_not_awaiting_approval",
            )
        assert self.required_role is not None
        if not actor.at_least(self.required_role):
            raise PermissionDenied(
                f"order {self.id} needs a {self.required_role} or above to decide"
                f" ({', '.join(self.reasons)}); {actor.role} may not",
                code="approval_beyond_rights",
            )

    def approve(self, approver: Actor, now: datetime, delivery_hours: int, reason: str | None = None) -> None:
        self._may_decide(approver)
        self.record(OrderApproved(order_id=self.id, approver_id=approver.id, reason=reason))
        self._confirm(now, delivery_hours)

    def reject(self, approver: Actor, reason: str) -> None:
        self._may_decide(approver)
        self.record(OrderRejected(order_id=self.id, reason=reason))

    def dispatch(self) -> None:
        if self.status != CONFIRMED:
            raise DomainError(
                f"order {self.id} is {self.status}; only a confirmed order is dispatched",
                code="order_not_confirmed",
            )
        self.record(OrderDispatched(order_id=self.id))

    def deliver(self, delivered_at: datetime, now: datetime) -> None:
        if self.status not in OPEN_STATES:
            code = "order_already_delivered" if self.status == DELIVERED else "order_not_confirmed"
            raise DomainError(f"order {self.id} is {self.status} and cannot be delivered", code=code)
        assert self.confirmed_at is not None and self.deliver_by is not None
        if delivered_at > now:
            raise DomainError("a delivery cannot be recorded ahead of time", code="delivery_in_future")
        if delivered_at < self.confirmed_at:
            raise DomainError("a delivery cannot precede the confirmation", code="delivery_before_confirmation")
        self.record(
            OrderDelivered(
                order_id=self.id,
                customer_id=self.customer_id,
                delivered_at=delivered_at,
                on_time=delivered_at <= self.deliver_by,
            )
        )

    def flag_delivery_overdue(self, now: datetime) -> None:
        if self.status not in OPEN_STATES or self.delivery_overdue:
            raise DomainError(f"order {self.id} has no delivery to flag", code="nothing_overdue")
        assert self.deliver_by is not None
        if now <= self.deliver_by:
            raise DomainError(f"order {self.id} is still within its delivery time", code="not_yet_overdue")
        self.record(OrderDeliveryOverdue(order_id=self.id, customer_id=self.customer_id, deliver_by=self.deliver_by))

    def confirm_delivery(self, delivered: bool) -> None:
        """The rep's word on the next visit. A 'not received' is kept even for an order recorded
        as delivered: that is exactly the discrepancy a supervisor follows up."""
        if self.delivery_confirmed is not None:
            raise DomainError(f"order {self.id}: delivery already confirmed", code="delivery_already_confirmed")
        if delivered and self.status != DELIVERED:
            raise DomainError(
                f"order {self.id} is {self.status}; it is not recorded as delivered",
                code="order_not_delivered",
            )
        if not delivered and self.status not in (*OPEN_STATES, DELIVERED):
            raise DomainError(f"order {self.id} is {self.status}", code="order_not_confirmed")
        self.record(OrderDeliveryConfirmed(order_id=self.id, delivered=delivered))

    def cancel(self, reason: str) -> None:
        if self.status in (DISPATCHED, DELIVERED):
            raise DomainError(
                f"order {self.id} is {self.status}; only an order not yet dispatched can be cancelled",
                code="order_already_dispatched",
            )
        if self.status in (CANCELLED, REJECTED):
            raise DomainError(f"order {self.id} is already {self.status}", code="order_closed")
        self.record(OrderCancelled(order_id=self.id, reason=reason))

    def record_deposit(
        self,
        amount_fen: int,
        agreed_fen: int | None,
        now: datetime,
        timezone: str,
        deposit_hours: int,
    ) -> None:
        if self.status in (CANCELLED, REJECTED, DELIVERED):
            raise DomainError(f"order {self.id} is {self.status}; no deposit is taken", code="order_closed")
        step = next_deposit(
            agreed_so_far=self.deposit_agreed_fen,
            total_so_far=self.deposit_total_fen,
            due_by_so_far=self.deposit_due_by,
            amount_fen=amount_fen,
            agreed_fen=agreed_fen,
            ceiling_fen=self.amount_fen,
            ceiling="order amount",
            ceiling_code="deposit_exceeds_order",
            now=now,
            hours=deposit_hours,
        )
        self.record(
            OrderDepositRecorded(
                order_id=self.id,
                customer_id=self.customer_id,
                amount_fen=amount_fen,
                total_fen=step.total_fen,
                agreed_fen=step.agreed_fen,
                received_on=business_date(now, timezone),
                due_by=step.due_by,
            )
        )
        if step.complete:
            self.record(OrderDepositCompleted(order_id=self.id, customer_id=self.customer_id, total_fen=step.total_fen))

    def flag_deposit_overdue(self, now: datetime) -> None:
        if self.deposit_due_by is None or self.deposit_overdue or self.status in (CANCELLED, REJECTED):
            raise DomainError(f"order {self.id} has no partial deposit to flag", code="nothing_overdue")
        if not deposit_overdue(self.deposit_due_by, now):
            raise DomainError(f"order {self.id}: the deposit is still within its time", code="not_yet_overdue")
        self.record(
            OrderDepositOverdue(
                order_id=self.id,
                customer_id=self.customer_id,
                due_by=self.deposit_due_by,
                missing_fen=self.deposit_agreed_fen - self.deposit_total_fen,
            )
        )
