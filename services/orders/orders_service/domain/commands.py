"""The commands the orders service takes (POST /commands/<name>, orders.cmd.<name>, and
orders.ingest.<name>). Shape rules live here so bad input is refused with field details."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from orders_service.domain.events import Resolution, ReturnReason, Scope
from salesplatform.command import Command

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
SkuCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Fen = Annotated[int, Field(ge=0, le=10**13)]
PositiveFen = Annotated[int, Field(gt=0, le=10**13)]
Quantity = Annotated[int, Field(gt=0, le=1_000_000)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Channel = Literal["wholesale", "retail", "agent", "franchise", "chain", "specialty"]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _unique(values: list[str], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"each {what} may appear only once")


# -- catalogue ----------------------------------------------------------------------------------


class DefineSku(Command):
    name = "define_sku"
    sku: SkuCode
    sku_name: Name = Field(alias="name")
    brand: Name
    product_group: Name
    package: Name
    list_price_fen: PositiveFen
    floor_price_fen: PositiveFen

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class SetSkuPrice(Command):
    """A list and floor price for one area (片区), or with no area the default."""

    name = "set_sku_price"
    sku: SkuCode
    area_id: Id | None = None
    list_price_fen: PositiveFen
    floor_price_fen: PositiveFen


class SetRequiredSkus(Command):
    name = "set_required_skus"
    channel: Channel
    skus: list[SkuCode] = Field(max_length=500)


# -- orders -------------------------------------------------------------------------------------


class LineIn(_Part):
    sku: SkuCode
    quantity: Quantity
    unit_price_fen: Fen | None = None  # default: the region's list price


class PlaceOrder(Command):
    name = "place_order"
    order_id: Id | None = None
    customer_id: Id
    lines: list[LineIn] = Field(min_length=1, max_length=200)
    source: Literal["visit", "phone", "system"] = "phone"
    visit_id: Id | None = None
    # The same key from the same sender names the same order: a retry creates nothing twice.
    idempotency_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _skus_once(self) -> Self:
        _unique([line.sku for line in self.lines], "SKU")
        return self


class OrderCommand(Command):
    order_id: Id


class ApproveOrder(OrderCommand):
    name = "approve_order"
    # Why the approver let it through is part of the approval's history; free text, so it is
    # left out of dead letters like a rejection's reason.
    personal_fields = frozenset({"reason"})
    reason: Text | None = None


class RejectOrder(OrderCommand):
    name = "reject_order"
    # Free text people write may name or describe a person: left out of dead letters.
    personal_fields = frozenset({"reason"})
    reason: Text


class DispatchOrder(OrderCommand):
    name = "dispatch_order"


class DeliverOrder(OrderCommand):
    name = "deliver_order"
    delivered_at: AwareDatetime | None = None  # default: now


class ConfirmDelivery(OrderCommand):
    name = "confirm_delivery"
    delivered: bool = True


class CancelOrder(OrderCommand):
    name = "cancel_order"
    personal_fields = frozenset({"reason"})
    reason: Text


class RecordDeposit(OrderCommand):
    name = "record_deposit"
    amount_fen: PositiveFen
    agreed_fen: PositiveFen | None = None  # the deposit agreed; default the order amount


class FlagDeliveryOverdue(OrderCommand):
    name = "flag_delivery_overdue"


class FlagDepositOverdue(OrderCommand):
    name = "flag_deposit_overdue"


# -- receivables --------------------------------------------------------------------------------


class AllocationIn(_Part):
    invoice_id: Id
    amount_fen: PositiveFen


class RecordPayment(Command):
    name = "record_payment"
    payment_id: Id | None = None
    customer_id: Id
    amount_fen: PositiveFen
    received_on: date | None = None  # default: today
    allocations: list[AllocationIn] | None = Field(None, min_length=1, max_length=500)


class AddCollectionNote(Command):
    name = "add_collection_note"
    personal_fields = frozenset({"note"})
    customer_id: Id
    note: Text
    invoice_id: Id | None = None
    promised_on: date | None = None
    next_follow_up_on: date | None = None


# -- promotions ---------------------------------------------------------------------------------


class GiftRuleIn(_Part):
    buy: Quantity
    get: Quantity


class PlanPromotion(Command):
    name = "plan_promotion"
    promotion_id: Id | None = None
    promotion_name: Name = Field(alias="name")
    starts_on: date
    ends_on: date
    skus: list[SkuCode] = Field(min_length=1, max_length=500)
    channels: list[Channel] = Field(default_factory=list, max_length=6)
    discount_percent: Annotated[int, Field(ge=1, le=99)] | None = None
    gift_rule: GiftRuleIn | None = None
    budget_fen: PositiveFen

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.discount_percent is None) == (self.gift_rule is None):
            raise ValueError("give either discount_percent or gift_rule")
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


# -- returns ------------------------------------------------------------------------------------


class ReturnLineIn(_Part):
    sku: SkuCode
    quantity: Quantity


class RequestReturn(Command):
    name = "request_return"
    personal_fields = frozenset({"detail"})
    return_id: Id | None = None
    order_id: Id
    lines: list[ReturnLineIn] | None = Field(None, min_length=1, max_length=200)  # None: whole batch
    scope: Scope
    reason: ReturnReason
    # A wrong shipment by us says what was wrong: the model, the grade or the quantity.
    wrong_shipment_kind: Literal["model", "grade", "quantity"] | None = None
    detail: Annotated[str, Field(max_length=2000)] = ""

    @model_validator(mode="after")
    def _kind_with_wrong_shipment(self) -> Self:
        if (self.reason == "wrong_shipment") != (self.wrong_shipment_kind is not None):
            raise ValueError("wrong_shipment_kind is given exactly when the reason is wrong_shipment")
        return self


class ReturnCommand(Command):
    return_id: Id


class RecordReturnInspection(ReturnCommand):
    name = "record_return_inspection"
    personal_fields = frozenset({"notes", "corrective_action"})
    confirmed: bool
    notes: Annotated[str, Field(max_length=2000)] = ""
    # Where a confirmed quality defect's corrective action (纠正和预防措施) goes.
    department: Name = "production"
    corrective_action: Text = "find the cause of the defect and prevent it recurring"


class ApproveReturn(ReturnCommand):
    name = "approve_return"
    personal_fields = frozenset({"reason"})
    reason: Text | None = None


class RejectReturn(ReturnCommand):
    name = "reject_return"
    personal_fields = frozenset({"reason"})
    reason: Text


class ResolveReturn(ReturnCommand):
    name = "resolve_return"
    resolution: Resolution
    amount_fen: Fen


class ReceiveReturnedGoods(ReturnCommand):
    name = "receive_returned_goods"


# -- history ------------------------------------------------------------------------------------


class ImportHistory(Command):
    """Historical orders, deliveries and payments from an older system (records as in the
    JSON-lines import file); the answer lists each rejected record with its reason."""

    name = "import_history"
    records: list[dict[str, Any]] = Field(min_length=1, max_length=5000)
