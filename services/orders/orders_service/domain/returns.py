"""Returns (退回产品处理单): request → re-inspection where the reason needs it → approval by the role
the reason and scope require → resolution → goods received. Nothing is deleted; a rejection
keeps its reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orders_service.domain.events import (
    CorrectiveActionAssigned,
    OrderLine,
    Resolution,
    ReturnApproved,
    ReturnGoodsReceived,
    ReturnInspected,
    ReturnLine,
    ReturnReason,
    ReturnRejected,
    ReturnRequested,
    ReturnResolved,
    Scope,
)
from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Actor, Event, Role

REQUESTED = "requested"
INSPECTED = "inspected"
APPROVED = "approved"
REJECTED = "rejected"
RESOLVED = "resolved"
CLOSED = "closed"


@dataclass(frozen=True)
class Route:
    inspection_required: bool
    approver_role: Role


def route_for(reason: ReturnReason, scope: Scope) -> Route:
    """Who must look at a return, from the procedure:
    - quality defect: the inspector re-inspects; a whole batch needs the general manager, a
      part exchange the area manager or above;
    - wrong shipment by us (model, grade, quantity): the sales manager finds the cause;
    - the customer chose the wrong product: the inspector verifies, the sales manager approves;
    - damaged in transit: our shipping fault, the area manager or above.
    """
    match reason:
        case "quality_defect":
            return Route(True, Role.general_manager if scope == "whole_batch" else Role.area_manager)
        case "wrong_shipment":
            return Route(False, Role.sales_manager)
        case "selection_error":
            return Route(True, Role.sales_manager)
        case "transit_damage":
            return Route(False, Role.area_manager)
    raise ValueError(reason)


@dataclass(frozen=True)
class DeliveredLine:
    """What the customer received of one SKU: paid units plus gifts, at the price paid."""

    sku: str
    quantity: int
    unit_price_fen: int
    amount_fen: int


@dataclass(frozen=True)
class Returned:
    quantity: int = 0
    amount_fen: int = 0


class ReturnRequest(Aggregate):
    stream_prefix = "return"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.order_id = ""
        self.customer_id = ""
        self.lines: tuple[ReturnLine, ...] = ()
        self.scope: Scope = "part"
        self.reason: ReturnReason = "quality_defect"
        self.status = ""
        self.inspected = False
        self.inspection_confirmed: bool | None = None

    @property
    def route(self) -> Route:
        return route_for(self.reason, self.scope)

    @property
    def amount_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)

    def apply(self, event: Event) -> None:
        match event:
            case ReturnRequested():
                self.order_id, self.customer_id = event.order_id, event.customer_id
                self.lines, self.scope, self.reason = event.lines, event.scope, event.reason
                self.status = REQUESTED
            case ReturnInspected():
                self.inspected, self.inspection_confirmed = True, event.confirmed
                self.status = INSPECTED
            case ReturnApproved():
                self.status = APPROVED
            case ReturnRejected():
                self.status = REJECTED
            case ReturnResolved():
                self.status = RESOLVED
            case ReturnGoodsReceived():
                self.status = CLOSED

    def request(
        self,
        *,
        order_id: str,
        customer_id: str,
        order_delivered: bool,
        delivered: dict[str, DeliveredLine],
        returned: dict[str, Returned],
        lines: Sequence[tuple[str, int]] | None,
        scope: Scope,
        reason: ReturnReason,
        detail: str,
    ) -> None:
        if self.exists:
            raise DomainError(f"return {self.id} already exists", code="return_exists")
        if not order_delivered:
            raise DomainError(f"order {order_id} is not delivered; nothing to return", code="order_not_delivered")
        remaining = {sku: d.quantity - returned.get(sku, Returned()).quantity for sku, d in delivered.items()}
        if lines is None:
            if scope != "whole_batch":
                raise DomainError("a partial return names its lines", code="lines_required", field="lines")
            lines = [(sku, q) for sku, q in remaining.items() if q > 0]
            if not lines:
                raise DomainError(
                    f"everything of order {order_id} is already returned",
                    code="return_exceeds_delivered",
                )
        wanted: dict[str, int] = {}
        for n, (sku, quantity) in enumerate(lines):
            if sku not in delivered:
                raise DomainError(f"order {order_id} has no {sku}", code="sku_not_in_order", field=f"lines.{n}.sku")
            wanted[sku] = wanted.get(sku, 0) + quantity
            if wanted[sku] > remaining[sku]:
                raise DomainError(
                    f"{sku}: returning {wanted[sku]} but only {remaining[sku]} delivered and not yet returned",
                    code="return_exceeds_delivered",
                    field=f"lines.{n}.quantity",
                )
        if scope == "whole_batch" and wanted != {s: q for s, q in remaining.items() if q > 0}:
            raise DomainError(
                "a whole-batch return takes back everything delivered and not yet returned",
                code="whole_batch_incomplete",
                field="lines",
            )
        out = []
        for sku, quantity in wanted.items():
            d = delivered[sku]
            # Gifts are returned at no value: the amount never passes what was paid for the line.
            left = d.amount_fen - returned.get(sku, Returned()).amount_fen
            out.append(ReturnLine(sku=sku, quantity=quantity, amount_fen=min(quantity * d.unit_price_fen, left)))
        self.record(
            ReturnRequested(
                return_id=self.id,
                order_id=order_id,
                customer_id=customer_id,
                lines=tuple(out),
                scope=scope,
                reason=reason,
                detail=detail,
            )
        )

    def inspect(self, inspector: Actor, *, confirmed: bool, notes: str, department: str, action: str) -> None:
        if self.status != REQUESTED:
            code = "already_inspected" if self.inspected else "return_not_open"
            raise DomainError(f"return {self.id} is {self.status}", code=code)
        self.record(ReturnInspected(return_id=self.id, inspector_id=inspector.id, confirmed=confirmed, notes=notes))
        if confirmed and self.reason == "quality_defect":
            self.record(CorrectiveActionAssigned(return_id=self.id, department=department, action=action))

    def _may_decide(self, actor: Actor) -> None:
        if self.status not in (REQUESTED, INSPECTED):
            raise DomainError(f"return {self.id} is {self.status}, not awaiting a decision", code="return_not_open")
        role = self.route.approver_role
        if not actor.at_least(role):
            raise PermissionDenied(
                f"a {self.reason} return ({self.scope}) needs a {role} or above; {actor.role} may not decide it",
                code="approval_beyond_rights",
            )

    def approve(self, approver: Actor, reason: str | None = None) -> None:
        self._may_decide(approver)
        if self.route.inspection_required and not self.inspected:
            raise DomainError(
                f"a {self.reason} return needs the inspector's re-inspection before approval",
                code="inspection_required",
            )
        if self.inspected and not self.inspection_confirmed:
            raise DomainError(
                "the re-inspection did not confirm the claim; the return can only be rejected",
                code="inspection_not_confirmed",
            )
        self.record(ReturnApproved(return_id=self.id, approver_id=approver.id, reason=reason))

    def reject(self, actor: Actor, reason: str) -> None:
        self._may_decide(actor)
        self.record(ReturnRejected(return_id=self.id, reason=reason))

    def resolve(self, actor: Actor, resolution: Resolution, amount_fen: int) -> None:
        if self.status != APPROVED:
            raise DomainError(
                f"return {self.id} is {self.status}; only an approved return is resolved",
                code="return_not_approved",
            )
        if actor.role != Role.system and not actor.at_least(self.route.approver_role):
            raise PermissionDenied(
                f"resolving this return needs a {self.route.approver_role} or above",
                code="approval_beyond_rights",
            )
        if resolution in ("refund", "credit_note", "exchange") and amount_fen > self.amount_fen:
            raise DomainError(
                f"a {resolution} of {amount_fen} fen is more than the {self.amount_fen} fen returned",
                code="resolution_exceeds_return",
                field="amount_fen",
            )
        self.record(ReturnResolved(return_id=self.id, resolution=resolution, amount_fen=amount_fen))

    def receive_goods(self) -> None:
        if self.status != RESOLVED:
            raise DomainError(
                f"return {self.id} is {self.status}; goods are received after resolution",
                code="return_not_resolved",
            )
        self.record(ReturnGoodsReceived(return_id=self.id))


def delivered_lines(lines: Sequence[OrderLine]) -> dict[str, DeliveredLine]:
    """The order's lines as delivered: gift units count as received (and returnable)."""
    return {
        line.sku: DeliveredLine(line.sku, line.quantity + line.gift_quantity, line.unit_price_fen, line.amount_fen)
        for line in lines
    }
