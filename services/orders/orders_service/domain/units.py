"""Sales control (销控) of a sales office's project: units and their price lists, deposits (定金)
and receipts, subscriptions (认购书), contracts, mortgages and handover, and recommending
layouts (户型推荐). Pure: aggregates and rules, no I/O.

The rules, as numbered in README.md ("Sales control"):
- U1 a unit goes unreleased → available (priced in a release's price list) → reserved (the
  first deposit) → subscribed (the subscription signed by the sales manager) → contracted →
  mortgage in progress → handed over (or contracted → handed over without a mortgage); a
  reservation or subscription is released back to available with a reason.
- U2 a unit is never reserved or sold twice: a deposit for another customer on a reserved unit
  is refused; the first deposit wins.
- U3 price lists are issued and changed only by the sales manager; a deal keeps its price.
- U4 deposits are taken by the sales manager, someone the manager names, or finance; the
  receipt states the unit number, the amount in figures and words, the method, the source of
  funds and a cheque's number.
- U5 a partial deposit must be completed within 24 hours (the orders' rule, `deposits.py`).
- U6 the subscription is filled by the rep and valid only once the sales manager signs it;
  a rep may not fill a price below the list price (only the sales manager grants a discount).
- U7 at most three layouts are recommended for a customer's needs, with their figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from orders_service.domain.deposits import deposit_overdue, next_deposit
from orders_service.domain.unit_events import (
    DepositTakerNamed,
    DepositTakerRevoked,
    ReservationReleased,
    SalesControlChecked,
    SubscriptionFilled,
    SubscriptionReturned,
    UnitContracted,
    UnitDefined,
    UnitDepositCompleted,
    UnitDepositOverdue,
    UnitDepositReceived,
    UnitHandedOver,
    UnitMortgageStarted,
    UnitPriced,
    UnitReserved,
    UnitSubscribed,
)
from salesplatform.aggregate import Aggregate
from salesplatform.clock import business_date
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Event

# U1: where a unit may go from each status (reservations and subscriptions may also go back).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "unreleased": ("available",),
    "available": ("reserved",),
    "reserved": ("subscribed", "available"),
    "subscribed": ("contracted", "available"),
    "contracted": ("mortgage", "handed_over"),
    "mortgage": ("handed_over",),
    "handed_over": (),
}
SOLD = ("subscribed", "contracted", "mortgage", "handed_over")
MAX_RECOMMENDED = 3


class UnknownEvent(TypeError):
    """An aggregate was given an event type it does not know: a programming error."""


# -- the receipt's amount in words (大写金额) ---------------------------------------------------------

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SECTION_UNITS = ("", "万", "亿", "万亿")


def _section_words(n: int) -> str:
    """0 < n < 10000 in capital numerals, zeros inside collapsed to one 零."""
    out, zero = "", False
    for power, unit in ((3, "仟"), (2, "佰"), (1, "拾"), (0, "")):
        digit = n // 10**power % 10
        if digit == 0:
            zero = zero or bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[digit] + unit
    return out


def amount_in_words(fen: int) -> str:
    """An amount as a receipt writes it in words (大写): 1,000,050 fen → 人民币壹万元伍角."""
    if fen < 0:
        raise ValueError("an amount in words is not negative")
    yuan, jiao, fen_part = fen // 100, fen // 10 % 10, fen % 10
    words = ""
    if yuan:
        sections = []
        while yuan:
            sections.append(yuan % 10_000)
            yuan //= 10_000
        zero_pending = False
        for index in range(len(sections) - 1, -1, -1):
            part = sections[index]
            if part == 0:
                zero_pending = zero_pending or bool(words)
                continue
            if words and (zero_pending or part < 1000):
                words += "零"
            zero_pending = False
            words += _section_words(part) + _SECTION_UNITS[index]
        words += "元"
    if not jiao and not fen_part:
        return f"人民币{words or '零元'}整"
    if jiao:
        words += _DIGITS[jiao] + "角"
    elif words:
        words += "零"
    if fen_part:
        words += _DIGITS[fen_part] + "分"
    return f"人民币{words}"


# -- recommending layouts (户型推荐) ------------------------------------------------------------------


@dataclass(frozen=True)
class Needs:
    """What a customer asks for; every part optional."""

    rooms: int | None = None
    area_min: Decimal | None = None
    area_max: Decimal | None = None
    budget_fen: int | None = None
    orientation: str | None = None


@dataclass(frozen=True)
class OnSale:
    """An available unit, as the recommendation sees it."""

    unit_id: str
    building: str
    unit_no: str
    layout_name: str
    rooms: int
    halls: int
    bathrooms: int
    area_sqm: Decimal
    orientation: str
    position: str | None
    total_price_fen: int


def _fits(unit: OnSale, needs: Needs) -> bool:
    return (
        (needs.rooms is None or unit.rooms == needs.rooms)
        and (needs.area_min is None or unit.area_sqm >= needs.area_min)
        and (needs.area_max is None or unit.area_sqm <= needs.area_max)
        and (needs.budget_fen is None or unit.total_price_fen <= needs.budget_fen)
        and (needs.orientation is None or needs.orientation in unit.orientation.split("_"))
    )


def recommend_layouts(units: Iterable[OnSale], needs: Needs) -> list[dict[str, Any]]:
    """U7: at most three layouts with available units that meet every need, each with its
    figures (户型格局, 面积, 朝向, 所在位置, 总价) over its fitting units. Ordered by how close the
    area is to the middle of what was asked, then the lowest price, then the layout's name."""
    by_layout: dict[str, list[OnSale]] = {}
    for unit in units:
        if _fits(unit, needs):
            by_layout.setdefault(unit.layout_name, []).append(unit)
    if needs.area_min is not None and needs.area_max is not None:
        target: Decimal | None = (needs.area_min + needs.area_max) / 2
    else:
        target = needs.area_min if needs.area_min is not None else needs.area_max

    def rank(item: tuple[str, list[OnSale]]) -> tuple[Decimal, int, str]:
        name, fitting = item
        closeness = min(abs(u.area_sqm - target) for u in fitting) if target is not None else Decimal(0)
        return closeness, min(u.total_price_fen for u in fitting), name

    out = []
    for name, fitting in sorted(by_layout.items(), key=rank)[:MAX_RECOMMENDED]:
        first = fitting[0]
        cheapest = min(fitting, key=lambda u: (u.total_price_fen, u.unit_id))
        out.append(
            {
                "layout_name": name,
                "rooms": first.rooms,
                "halls": first.halls,
                "bathrooms": first.bathrooms,
                "layout": f"{first.rooms}室{first.halls}厅{first.bathrooms}卫",
                "area_sqm": {"min": min(u.area_sqm for u in fitting), "max": max(u.area_sqm for u in fitting)},
                "orientations": sorted({u.orientation for u in fitting}),
                "positions": sorted({u.position for u in fitting if u.position}),
                "total_price_fen": {
                    "min": min(u.total_price_fen for u in fitting),
                    "max": max(u.total_price_fen for u in fitting),
                },
                "available_units": len(fitting),
                "example_unit": {
                    "unit_id": cheapest.unit_id,
                    "building": cheapest.building,
                    "unit_no": cheapest.unit_no,
                    "area_sqm": cheapest.area_sqm,
                    "orientation": cheapest.orientation,
                    "total_price_fen": cheapest.total_price_fen,
                },
            }
        )
    return out


# -- the project --------------------------------------------------------------------------------------


class Project(Aggregate):
    """What sales control keeps per project besides its units: who may take deposits, and the
    daily sales-control checks."""

    stream_prefix = "project"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.deposit_takers: frozenset[str] = frozenset()

    def apply(self, event: Event) -> None:
        match event:
            case DepositTakerNamed():
                self.deposit_takers = self.deposit_takers | {event.staff_id}
            case DepositTakerRevoked():
                self.deposit_takers = self.deposit_takers - {event.staff_id}
            case SalesControlChecked():
                pass
            case _:
                raise UnknownEvent(event.event_type)

    def name_deposit_taker(self, staff_id: str) -> None:
        if staff_id in self.deposit_takers:
            raise DomainError(f"{staff_id} already takes deposits", code="already_named")
        self.record(DepositTakerNamed(project_id=self.id, staff_id=staff_id))

    def revoke_deposit_taker(self, staff_id: str) -> None:
        if staff_id not in self.deposit_takers:
            raise DomainError(f"{staff_id} takes no deposits here", code="not_named")
        self.record(DepositTakerRevoked(project_id=self.id, staff_id=staff_id))

    def may_take_deposits(self, staff_id: str) -> bool:
        return staff_id in self.deposit_takers

    def check_sales_control(
        self, day: date, checked_by: str, role: str, units: int, discrepancies: Sequence[dict[str, str]]
    ) -> None:
        self.record(
            SalesControlChecked(
                project_id=self.id,
                business_date=day,
                checked_by=checked_by,
                role=role,
                units=units,
                discrepancies=list(discrepancies),
            )
        )


# -- the unit -------------------------------------------------------------------------------------------


class Unit(Aggregate):
    """One unit (房号) of a project and the deal on it. One stream per unit: two deposits for
    one unit are decided one after the other, and only the first finds it available (U2)."""

    stream_prefix = "unit"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.project_id = ""
        self.unit_no = ""
        self.area_sqm = Decimal(0)
        self.spec: dict[str, Any] = {}
        self.status = "unreleased"
        self.release = ""
        self.unit_price_fen = 0
        self.total_price_fen = 0
        # The deal in progress.
        self.lead_id: str | None = None
        self.credited_rep_id: str | None = None
        self.deal_price_fen = 0
        self.deposit_agreed_fen = 0
        self.deposit_total_fen = 0
        self.deposit_due_by: datetime | None = None
        self.deposit_overdue = False
        self.receipts = 0  # every receipt the unit ever had, for the receipt numbers
        self.subscription_no: str | None = None
        self.subscription_signed = False
        self.subscription_price_fen = 0
        self.payment_plan = ""

    def apply(self, event: Event) -> None:
        match event:
            case UnitDefined():
                self.project_id, self.unit_no, self.area_sqm = event.project_id, event.unit_no, event.area_sqm
                self.spec = event.model_dump(exclude={"unit_id", "project_id"})
            case UnitPriced():
                self.release = event.release
                self.unit_price_fen, self.total_price_fen = event.unit_price_fen, event.total_price_fen
                if self.status == "unreleased":
                    self.status = "available"
            case UnitReserved():
                self.status, self.lead_id, self.credited_rep_id = "reserved", event.lead_id, event.credited_rep_id
                self.deal_price_fen = event.price_fen
                self.deposit_agreed_fen = self.deposit_total_fen = 0
                self.deposit_due_by, self.deposit_overdue = None, False
                self.subscription_no, self.subscription_signed = None, False
            case UnitDepositReceived():
                self.deposit_agreed_fen, self.deposit_total_fen = event.agreed_fen, event.total_fen
                self.deposit_due_by = event.due_by
                self.receipts += 1
            case UnitDepositCompleted():
                self.deposit_due_by = None
            case UnitDepositOverdue():
                self.deposit_overdue = True
            case SubscriptionFilled():
                self.subscription_no, self.subscription_signed = event.subscription_no, False
                self.subscription_price_fen, self.payment_plan = event.price_fen, event.payment_plan
            case SubscriptionReturned():
                self.subscription_no = None
            case UnitSubscribed():
                self.status, self.subscription_signed = "subscribed", True
                self.credited_rep_id = event.credited_rep_id
            case UnitContracted():
                self.status, self.payment_plan = "contracted", event.payment_plan
                self.credited_rep_id = event.credited_rep_id
            case UnitMortgageStarted():
                self.status = "mortgage"
            case UnitHandedOver():
                self.status = "handed_over"
            case ReservationReleased():
                self.status, self.lead_id, self.credited_rep_id = "available", None, None
                self.deposit_due_by, self.subscription_no, self.subscription_signed = None, None, False
            case _:
                raise UnknownEvent(event.event_type)

    # -- definition and prices ------------------------------------------------------------------------

    def define(self, project_id: str, **spec: Any) -> bool:
        """Record the unit; the same definition again changes nothing (False)."""
        if self.exists:
            if self.project_id == project_id and self.spec == UnitDefined(
                unit_id=self.id, project_id=project_id, **spec
            ).model_dump(exclude={"unit_id", "project_id"}):
                return False
            raise DomainError(f"unit {self.id} is already defined otherwise", code="unit_exists", field="unit_id")
        self.record(UnitDefined(unit_id=self.id, project_id=project_id, **spec))
        return True

    def _require(self, allowed: Iterable[str], code: str, what: str) -> None:
        if not self.exists:
            raise DomainError(f"unit {self.id} does not exist", code="unit_not_found", field="unit_id")
        if self.status not in allowed:
            raise DomainError(f"unit {self.id} is {self.status}; {what}", code=code)

    def price(
        self, project_id: str, release: str, unit_price_fen: int, total_price_fen: int, reason: str | None
    ) -> None:
        """U3: a new price; a deal already made keeps the price it started from."""
        if not self.exists:
            raise DomainError(f"unit {self.id} does not exist", code="unit_not_found", field="unit_id")
        if self.project_id != project_id:
            raise DomainError(f"unit {self.id} belongs to {self.project_id}", code="unit_of_another_project")
        if (release, unit_price_fen, total_price_fen) == (self.release, self.unit_price_fen, self.total_price_fen):
            return
        self.record(
            UnitPriced(
                unit_id=self.id,
                project_id=self.project_id,
                release=release,
                unit_price_fen=unit_price_fen,
                total_price_fen=total_price_fen,
                reason=reason,
            )
        )

    # -- deposits (U2, U4, U5) ----------------------------------------------------------------------

    def take_deposit(
        self,
        *,
        lead_id: str,
        credited_rep_id: str,
        amount_fen: int,
        agreed_fen: int | None,
        method: str,
        cheque_no: str | None,
        source_of_funds: str,
        funds_detail: str | None,
        taken_by: str,
        now: datetime,
        timezone: str,
        hours: int,
    ) -> UnitDepositReceived:
        """A deposit payment: the first one reserves an available unit for the lead; later ones
        complete it. Another customer's deposit on a reserved unit is refused (U2)."""
        if not self.exists:
            raise DomainError(f"unit {self.id} does not exist", code="unit_not_found", field="unit_id")
        if self.status == "unreleased":
            raise DomainError(f"unit {self.id} is not in a price list yet", code="unit_not_on_sale")
        if self.status != "available" and self.lead_id != lead_id:
            raise DomainError(
                f"unit {self.id} is {self.status} for another customer: the first deposit wins",
                code="unit_already_reserved",
            )
        if self.status not in ("available", "reserved"):
            raise DomainError(f"unit {self.id} is already {self.status}", code="deposit_after_subscription")
        day = business_date(now, timezone)
        fresh = self.status == "available"
        step = next_deposit(
            agreed_so_far=0 if fresh else self.deposit_agreed_fen,
            total_so_far=0 if fresh else self.deposit_total_fen,
            due_by_so_far=None if fresh else self.deposit_due_by,
            amount_fen=amount_fen,
            # A deposit is the amount paid unless a larger one is agreed (then it is partial).
            agreed_fen=agreed_fen if agreed_fen is not None or not fresh else amount_fen,
            ceiling_fen=self.total_price_fen if fresh else self.deal_price_fen,
            ceiling="unit's price",
            ceiling_code="deposit_exceeds_price",
            now=now,
            hours=hours,
        )
        if fresh:
            self.record(
                UnitReserved(
                    unit_id=self.id,
                    project_id=self.project_id,
                    lead_id=lead_id,
                    credited_rep_id=credited_rep_id,
                    price_fen=self.total_price_fen,
                    reserved_at=now,
                    business_date=day,
                )
            )
        receipt = UnitDepositReceived(
            unit_id=self.id,
            project_id=self.project_id,
            lead_id=lead_id,
            receipt_no=f"{self.id}-D{self.receipts + 1}",
            unit_no=self.unit_no,
            amount_fen=amount_fen,
            amount_in_words=amount_in_words(amount_fen),
            total_fen=step.total_fen,
            agreed_fen=step.agreed_fen,
            method=method,
            cheque_no=cheque_no,
            source_of_funds=source_of_funds,
            funds_detail=funds_detail,
            taken_by=taken_by,
            received_on=day,
            due_by=step.due_by,
        )
        self.record(receipt)
        if step.complete:
            self.record(
                UnitDepositCompleted(
                    unit_id=self.id, project_id=self.project_id, lead_id=lead_id, total_fen=step.total_fen
                )
            )
        return receipt

    def flag_deposit_overdue(self, now: datetime) -> None:
        if self.status != "reserved" or self.deposit_due_by is None or self.deposit_overdue:
            raise DomainError(f"unit {self.id} has no partial deposit to flag", code="nothing_overdue")
        if not deposit_overdue(self.deposit_due_by, now):
            raise DomainError(f"unit {self.id}: the deposit is still within its time", code="not_yet_overdue")
        assert self.lead_id is not None
        self.record(
            UnitDepositOverdue(
                unit_id=self.id,
                project_id=self.project_id,
                lead_id=self.lead_id,
                due_by=self.deposit_due_by,
                missing_fen=self.deposit_agreed_fen - self.deposit_total_fen,
            )
        )

    def release_reservation(self, reason: str, deposit: str, now: datetime, timezone: str) -> None:
        self._require(("reserved", "subscribed"), "not_reserved", "only a reservation or subscription is released")
        assert self.lead_id is not None
        self.record(
            ReservationReleased(
                unit_id=self.id,
                project_id=self.project_id,
                lead_id=self.lead_id,
                previous_status=self.status,
                deposit_fen=self.deposit_total_fen,
                deposit=deposit,
                reason=reason,
                business_date=business_date(now, timezone),
            )
        )

    # -- the subscription (U6) ------------------------------------------------------------------------

    def fill_subscription(
        self,
        *,
        subscription_no: str,
        price_fen: int | None,
        payment_plan: str,
        down_payment_fen: int | None,
        contract_due_on: date,
        remarks: str | None,
        filled_by: str,
        may_discount: bool,
    ) -> None:
        self._require(("reserved",), "not_reserved", "a subscription is filled for a reserved unit")
        if self.subscription_no is not None:
            raise DomainError(
                f"subscription {self.subscription_no} waits for the sales manager; it is returned before another is filled",
                code="subscription_pending",
            )
        if self.deposit_total_fen < self.deposit_agreed_fen or not self.deposit_agreed_fen:
            raise DomainError(f"the deposit on unit {self.id} is not complete", code="deposit_not_complete")
        price = price_fen if price_fen is not None else self.deal_price_fen
        if price < self.deal_price_fen and not may_discount:
            raise PermissionDenied(
                f"{price} fen is below the list price {self.deal_price_fen}: only the sales manager grants a discount",
                code="beyond_rep_authority",
            )
        if down_payment_fen is not None and down_payment_fen > price:
            raise DomainError("the down payment exceeds the price", code="down_payment_exceeds_price")
        assert self.lead_id is not None
        self.record(
            SubscriptionFilled(
                unit_id=self.id,
                project_id=self.project_id,
                lead_id=self.lead_id,
                subscription_no=subscription_no,
                price_fen=price,
                payment_plan=payment_plan,
                down_payment_fen=down_payment_fen,
                contract_due_on=contract_due_on,
                remarks=remarks,
                filled_by=filled_by,
            )
        )

    def _pending_subscription(self) -> str:
        self._require(("reserved",), "not_reserved", "there is no subscription waiting")
        if self.subscription_no is None:
            raise DomainError(f"unit {self.id} has no subscription filled", code="no_subscription")
        return self.subscription_no

    def return_subscription(self, reason: str) -> None:
        number = self._pending_subscription()
        self.record(
            SubscriptionReturned(unit_id=self.id, project_id=self.project_id, subscription_no=number, reason=reason)
        )

    def sign_subscription(self, signed_by: str, credited_rep_id: str, now: datetime, timezone: str) -> None:
        """The sales manager signs; from now on the unit is subscribed and the subscription in
        the sales manager's keeping."""
        number = self._pending_subscription()
        assert self.lead_id is not None
        self.record(
            UnitSubscribed(
                unit_id=self.id,
                project_id=self.project_id,
                lead_id=self.lead_id,
                subscription_no=number,
                price_fen=self.subscription_price_fen,
                payment_plan=self.payment_plan,
                credited_rep_id=credited_rep_id,
                signed_by=signed_by,
                kept_by=signed_by,
                business_date=business_date(now, timezone),
            )
        )

    # -- contract, mortgage, handover ----------------------------------------------------------------

    def sign_contract(
        self, contract_no: str, payment_plan: str | None, credited_rep_id: str, now: datetime, timezone: str
    ) -> None:
        if self.status == "reserved":
            raise DomainError(
                f"unit {self.id}: the subscription is not signed by the sales manager", code="subscription_not_signed"
            )
        self._require(("subscribed",), "not_subscribed", "a contract follows a signed subscription")
        assert self.lead_id is not None
        self.record(
            UnitContracted(
                unit_id=self.id,
                project_id=self.project_id,
                lead_id=self.lead_id,
                contract_no=contract_no,
                price_fen=self.subscription_price_fen,
                payment_plan=(payment_plan or self.payment_plan),
                credited_rep_id=credited_rep_id,
                business_date=business_date(now, timezone),
            )
        )

    def start_mortgage(self, bank: str, loan_fen: int, now: datetime, timezone: str) -> None:
        self._require(("contracted",), "not_contracted", "a mortgage follows the contract")
        if self.payment_plan != "mortgage":
            raise DomainError(f"unit {self.id} is paid {self.payment_plan}, not by mortgage", code="not_a_mortgage")
        if loan_fen >= self.subscription_price_fen:
            raise DomainError("a loan is less than the price", code="loan_exceeds_price", field="loan_fen")
        assert self.lead_id is not None
        self.record(
            UnitMortgageStarted(
                unit_id=self.id,
                project_id=self.project_id,
                lead_id=self.lead_id,
                bank=bank,
                loan_fen=loan_fen,
                business_date=business_date(now, timezone),
            )
        )

    def hand_over(self, now: datetime, timezone: str) -> None:
        self._require(("contracted", "mortgage"), "not_contracted", "only a contracted unit is handed over")
        if self.status == "contracted" and self.payment_plan == "mortgage":
            raise DomainError(f"unit {self.id}: the mortgage has not started", code="mortgage_not_started")
        assert self.lead_id is not None
        self.record(
            UnitHandedOver(
                unit_id=self.id,
                project_id=self.project_id,
                lead_id=self.lead_id,
                business_date=business_date(now, timezone),
            )
        )
