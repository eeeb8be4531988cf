"""A visit (拜访) and its visit card (ODC卡), following the eight steps: check-in → stock count →
merchandising audit → cooler checks → competitor observations → suggested order → order taken
or refused → previous delivery confirmed → check-out.

Life of a visit: planned (from a route, or unplanned on request) → checked in → checked out; a
visit not checked in by the end of its business day is missed; a visit whose approval is
rejected is cancelled. Visits to A-grade customers and unplanned visits need a supervisor's
approval before check-in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any, Literal

from salesplatform.aggregate import Aggregate
from salesplatform.clock import end_of_business_day
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Event, Role, rank
from visit_service.domain.check_in import PositionCheck
from visit_service.domain.events import (
    OrderLine,
    StockLine,
    SuggestedLine,
    VisitApprovalOverdue,
    VisitApprovalRejected,
    VisitApprovalRequested,
    VisitApproved,
    VisitCheckedIn,
    VisitCheckedOut,
    VisitCheckInConfirmed,
    VisitCompetitorObserved,
    VisitCoolerChecked,
    VisitDeliveryConfirmed,
    VisitMerchandisingAudited,
    VisitMissed,
    VisitOrderRefused,
    VisitOrderSuggested,
    VisitOrderTaken,
    VisitPhotoAttached,
    VisitPhotoRemoved,
    VisitPhotoReviewed,
    VisitPlanned,
    VisitStockCounted,
)
from visit_service.domain.merchandising import StandardComparison
from visit_service.domain.suggestion import suggest_order, suggestion_adopted

# The supervisor answers an approval request within 24 hours (客户拜访审批).
APPROVAL_SLA = timedelta(hours=24)

Status = Literal["planned", "checked_in", "checked_out", "missed", "cancelled"]


class Visit(Aggregate):
    stream_prefix = "visit"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.rep_id = ""
        self.customer_id = ""
        self.business_date: date = date.min
        self.route_id: str | None = None
        self.planned = True
        self.district_id: str | None = None
        self.area_id: str | None = None
        self.status: Status = "planned"
        self.approval: Literal["pending", "approved", "rejected"] | None = None
        self.approver_role = Role.supervisor
        self.requested_by: str | None = None
        self.approval_due_at: datetime | None = None
        self.approval_overdue = False
        self.stock: list[StockLine] = []
        self.suggested: list[SuggestedLine] = []
        self.order_id: str | None = None
        self.refused = False
        self.coolers: set[str] = set()
        self.delivery_confirmed = False
        self.check_in_position: tuple[float, float, float | None] | None = None
        self.position_verified: bool | None = None
        self.check_in_confirmed = False
        self.photos: dict[str, Photo] = {}

    def apply(self, event: Event) -> None:
        match event:
            case VisitPlanned():
                self.rep_id = event.rep_id
                self.customer_id = event.customer_id
                self.business_date = event.business_date
                self.route_id = event.route_id
                self.planned = event.planned
                self.district_id = event.district_id
                self.area_id = event.area_id
            case VisitApprovalRequested():
                self.approval = "pending"
                self.approver_role = Role(event.approver_role)
                self.requested_by = event.requested_by
                self.approval_due_at = event.due_at
            case VisitApproved():
                self.approval = "approved"
            case VisitApprovalRejected():
                self.approval = "rejected"
                if self.status == "planned":
                    self.status = "cancelled"
            case VisitApprovalOverdue():
                self.approval_overdue = True
            case VisitCheckedIn():
                self.status = "checked_in"
                self.check_in_position = (event.latitude, event.longitude, event.accuracy_m)
                self.position_verified = event.position_verified
            case VisitCheckInConfirmed():
                self.check_in_confirmed = True
            case VisitPhotoAttached():
                self.photos[event.photo_id] = Photo(
                    event.photo_id, event.object_name, event.kind, event.digest, event.taken_at
                )
            case VisitPhotoReviewed():
                self.photos[event.photo_id] = self.photos[event.photo_id].reviewed(event.verdict)
            case VisitPhotoRemoved():
                self.photos[event.photo_id] = self.photos[event.photo_id].removed()
            case VisitStockCounted():
                self.stock = list(event.lines)
            case VisitOrderSuggested():
                self.suggested = list(event.lines)
            case VisitCoolerChecked():
                self.coolers.add(event.cooler_id)
            case VisitOrderTaken():
                self.order_id = event.order_id
            case VisitOrderRefused():
                self.refused = True
            case VisitDeliveryConfirmed():
                self.delivery_confirmed = True
            case VisitCheckedOut():
                self.status = "checked_out"
            case VisitMissed():
                self.status = "missed"

    # -- helpers ------------------------------------------------------------------------------

    def _ids(self) -> dict[str, Any]:
        return {
            "visit_id": self.id,
            "rep_id": self.rep_id,
            "customer_id": self.customer_id,
            "business_date": self.business_date,
        }

    @property
    def order_outcome_recorded(self) -> bool:
        return self.order_id is not None or self.refused

    def _require_checked_in(self, step: str) -> None:
        match self.status:
            case "checked_in":
                return
            case "planned":
                raise DomainError(f"{step} needs the visit to be checked in first", code="not_checked_in")
            case "checked_out":
                raise DomainError(f"visit {self.id} is checked out; {step} is closed", code="visit_closed")
            case "missed":
                raise DomainError(f"visit {self.id} was missed", code="visit_missed")
            case "cancelled":
                raise DomainError(f"visit {self.id} was cancelled", code="visit_cancelled")

    # -- planning and approvals ---------------------------------------------------------------

    def plan(
        self,
        *,
        rep_id: str,
        customer_id: str,
        business_date: date,
        route_id: str | None,
        sequence: int,
        district_id: str | None,
        area_id: str | None,
        key_account: bool,
        now: datetime,
        approver_role: Role = Role.supervisor,
    ) -> None:
        """A visit from the rep's route; an A-grade customer's visit asks for approval, from
        `approver_role` or above (higher than a supervisor for high-value accounts)."""
        if self.exists:
            raise DomainError(f"visit {self.id} is already planned", code="already_planned")
        self.record(
            VisitPlanned(
                visit_id=self.id,
                rep_id=rep_id,
                customer_id=customer_id,
                business_date=business_date,
                route_id=route_id,
                planned=True,
                sequence=sequence,
                district_id=district_id,
                area_id=area_id,
            )
        )
        if key_account:
            self._request_approval("key_account", rep_id, now, approver_role)

    def request_unplanned(
        self,
        *,
        rep_id: str,
        customer_id: str,
        business_date: date,
        sequence: int,
        district_id: str | None,
        area_id: str | None,
        requested_by: str,
        now: datetime,
    ) -> None:
        """A visit off the route: always needs the supervisor's approval."""
        if self.exists:
            raise DomainError(
                f"customer {customer_id} already has a visit on {business_date.isoformat()}", code="already_planned"
            )
        self.record(
            VisitPlanned(
                visit_id=self.id,
                rep_id=rep_id,
                customer_id=customer_id,
                business_date=business_date,
                route_id=None,
                planned=False,
                sequence=sequence,
                district_id=district_id,
                area_id=area_id,
            )
        )
        self._request_approval("unplanned", requested_by, now)

    def _request_approval(
        self,
        reason: Literal["key_account", "unplanned"],
        requested_by: str,
        now: datetime,
        approver_role: Role = Role.supervisor,
    ) -> None:
        self.record(
            VisitApprovalRequested(
                **self._ids(),
                reason=reason,
                requested_by=requested_by,
                requested_at=now,
                due_at=now + APPROVAL_SLA,
                approver_role=approver_role.value,
            )
        )

    def _check_approver(self, approver_id: str, approver_role: Role | None = None) -> None:
        if self.approval != "pending":
            raise DomainError(f"visit {self.id} has no approval request pending", code="no_approval_pending")
        if approver_role is not None and rank(approver_role) < rank(self.approver_role):
            raise PermissionDenied(
                f"visit {self.id} is a high-value account's: a {self.approver_role} or above approves it",
                code="approver_rank_required",
            )
        if approver_id in (self.requested_by, self.rep_id):
            raise PermissionDenied(f"{approver_id} asked for this visit and may not approve it", code="own_request")

    def approve(self, approver_id: str, approver_role: Role | None = None, reason: str | None = None) -> None:
        self._check_approver(approver_id, approver_role)
        self.record(VisitApproved(**self._ids(), approver_id=approver_id, reason=reason))

    def reject_approval(self, approver_id: str, reason: str, approver_role: Role | None = None) -> None:
        self._check_approver(approver_id, approver_role)
        self.record(VisitApprovalRejected(**self._ids(), approver_id=approver_id, reason=reason))

    def flag_approval_overdue(self, now: datetime, supervisor_id: str | None) -> None:
        if self.approval != "pending":
            raise DomainError(f"visit {self.id} has no approval request pending", code="no_approval_pending")
        if self.approval_overdue:
            raise DomainError(f"the approval of visit {self.id} is already flagged overdue", code="already_flagged")
        assert self.approval_due_at is not None
        if now < self.approval_due_at:
            raise DomainError(
                f"the approval of visit {self.id} is due at {self.approval_due_at.isoformat()}", code="not_overdue"
            )
        self.record(VisitApprovalOverdue(**self._ids(), supervisor_id=supervisor_id))

    # -- the eight steps ----------------------------------------------------------------------

    def check_in(
        self,
        at: datetime,
        latitude: float,
        longitude: float,
        today: date,
        accuracy_m: float | None = None,
        position: PositionCheck | None = None,
    ) -> None:
        """`position`: how the check-in's position stands against the outlet's (None: not
        judged)."""
        match self.status:
            case "checked_in" | "checked_out":
                raise DomainError(f"visit {self.id} is already checked in", code="already_checked_in")
            case "missed":
                raise DomainError(f"visit {self.id} was missed", code="visit_missed")
            case "cancelled":
                raise DomainError(f"visit {self.id} was cancelled (approval rejected)", code="visit_cancelled")
        if self.approval == "pending":
            raise DomainError(f"visit {self.id} waits for the supervisor's approval", code="approval_pending")
        if today != self.business_date:
            raise DomainError(
                f"visit {self.id} is planned for {self.business_date.isoformat()}, not {today.isoformat()}",
                code="visit_not_today",
            )
        self.record(
            VisitCheckedIn(
                **self._ids(),
                at=at,
                latitude=latitude,
                longitude=longitude,
                accuracy_m=accuracy_m,
                distance_m=position.distance_m if position else None,
                position_verified=position.verified if position else None,
                flags=list(position.flags) if position else [],
                repeated_at=list(position.repeated_at) if position else [],
            )
        )

    def confirm_check_in(self, confirmed_by: str, note: str | None) -> None:
        """A supervisor vouches that the rep was at the outlet: the check-in's position is the
        outlet's. Once per visit; never one's own visit."""
        if self.check_in_position is None:
            raise DomainError(f"visit {self.id} has no check-in to confirm", code="not_checked_in")
        if self.check_in_confirmed:
            raise DomainError(f"the check-in of visit {self.id} is already confirmed", code="already_confirmed")
        if confirmed_by == self.rep_id:
            raise PermissionDenied("a rep does not confirm their own check-in", code="own_request")
        latitude, longitude, accuracy = self.check_in_position
        self.record(
            VisitCheckInConfirmed(
                **self._ids(),
                latitude=latitude,
                longitude=longitude,
                accuracy_m=accuracy,
                confirmed_by=confirmed_by,
                previously_verified=self.position_verified,
                note=note,
            )
        )

    def count_stock(
        self,
        lines: Sequence[StockLine],
        known_skus: Iterable[str],
        usual: Mapping[str, Fraction],
        required_skus: Sequence[str],
    ) -> None:
        """Record the count and, from it, the suggested order (a new count replaces the old one
        and its suggestion until an order is taken or refused)."""
        self._require_checked_in("the stock count")
        if self.order_outcome_recorded:
            raise DomainError("the order is already recorded; the count is closed", code="order_already_recorded")
        _check_skus([line.sku for line in lines], known_skus, "lines")
        self.record(VisitStockCounted(**self._ids(), lines=list(lines)))
        self.record(VisitOrderSuggested(**self._ids(), lines=suggest_order(lines, usual, required_skus)))

    def audit_merchandising(
        self,
        required_skus: Sequence[str],
        present_skus: Sequence[str],
        price_tags_ok: bool,
        display_ok: bool,
        known_skus: Iterable[str],
        standard: StandardComparison | None = None,
        photo_ids: Sequence[str] = (),
    ) -> None:
        """`standard`: the checklist the rep ticked against the channel's standard picture;
        `photo_ids`: photos of this visit that back it (a checklist needs at least one)."""
        self._require_checked_in("the merchandising audit")
        _check_skus(present_skus, known_skus, "present_skus")
        for photo_id in photo_ids:
            photo = self.photos.get(photo_id)
            if photo is None or photo.removed_:
                raise DomainError(
                    f"photo {photo_id} is not a photo of visit {self.id}", code="unknown_photo", field="photo_ids"
                )
        if standard is not None and standard.checklist is not None and not photo_ids:
            raise DomainError(
                "a checklist against the standard picture needs a photo of what was seen",
                code="photo_required",
                field="photo_ids",
            )
        self.record(
            VisitMerchandisingAudited(
                **self._ids(),
                required_skus=list(required_skus),
                present_skus=list(present_skus),
                price_tags_ok=price_tags_ok,
                display_ok=display_ok,
                standard_items=list(standard.items) if standard else None,
                checklist=dict(standard.checklist) if standard and standard.checklist is not None else None,
                standard_met=standard.met if standard else None,
                missing_items=list(standard.missing) if standard else [],
                photo_ids=list(photo_ids),
            )
        )

    # -- photos -------------------------------------------------------------------------------

    def attach_photo(
        self,
        photo_id: str,
        *,
        kind: str,
        object_name: str,
        digest: str,
        size_bytes: int,
        content_type: str,
        taken_by: str,
        taken_at: datetime,
    ) -> None:
        """A photo of a step (shelf, cooler, display), while the rep is at the outlet."""
        if photo_id in self.photos:
            raise DomainError(f"photo {photo_id} is already on visit {self.id}", code="photo_already_attached")
        self._require_checked_in("a photo")
        self.record(
            VisitPhotoAttached(
                **self._ids(),
                photo_id=photo_id,
                kind=kind,
                object_name=object_name,
                digest=digest,
                size_bytes=size_bytes,
                content_type=content_type,
                taken_by=taken_by,
                taken_at=taken_at,
            )
        )

    def review_photo(self, photo_id: str, verdict: str, note: str | None, reviewer_id: str) -> None:
        photo = self._photo(photo_id)
        if reviewer_id == self.rep_id:
            raise PermissionDenied("a rep does not review their own photos", code="own_request")
        if photo.verdict is not None:
            raise DomainError(f"photo {photo_id} is already reviewed ({photo.verdict})", code="already_reviewed")
        self.record(
            VisitPhotoReviewed(
                **self._ids(),
                photo_id=photo_id,
                verdict=verdict,
                note=note,
                reviewed_by=reviewer_id,
            )
        )

    def remove_photo(self, photo_id: str, reason: str) -> None:
        """The photo's bytes are gone from the store (retention or erasure)."""
        photo = self._photo(photo_id)
        self.record(
            VisitPhotoRemoved(
                **self._ids(),
                photo_id=photo_id,
                object_name=photo.object_name,
                reason=reason,
            )
        )

    def _photo(self, photo_id: str) -> Photo:
        photo = self.photos.get(photo_id)
        if photo is None:
            raise DomainError(f"photo {photo_id} is not a photo of visit {self.id}", code="unknown_photo")
        if photo.removed_:
            raise DomainError(f"photo {photo_id} was removed", code="photo_removed")
        return photo

    def check_cooler(
        self,
        cooler_id: str,
        *,
        at_outlet: bool,
        best_position: bool,
        powered: bool,
        light_on: bool,
        clean: bool,
        working: bool,
        required_packs: bool,
        misused: bool,
    ) -> None:
        self._require_checked_in("the cooler check")
        if cooler_id in self.coolers:
            raise DomainError(f"cooler {cooler_id} is already checked on this visit", code="cooler_already_checked")
        compliant = all((at_outlet, best_position, powered, light_on, clean, working, required_packs)) and not misused
        self.record(
            VisitCoolerChecked(
                **self._ids(),
                cooler_id=cooler_id,
                at_outlet=at_outlet,
                best_position=best_position,
                powered=powered,
                light_on=light_on,
                clean=clean,
                working=working,
                required_packs=required_packs,
                misused=misused,
                compliant=compliant,
            )
        )

    def observe_competitor(
        self, brand: str, product: str, price_fen: int | None, promotion: str | None, stock_age_days: int | None
    ) -> None:
        self._require_checked_in("a competitor observation")
        self.record(
            VisitCompetitorObserved(
                **self._ids(),
                brand=brand,
                product=product,
                price_fen=price_fen,
                promotion=promotion,
                stock_age_days=stock_age_days,
            )
        )

    def take_order(self, order_id: str, lines: Sequence[OrderLine], known_skus: Iterable[str]) -> None:
        self._require_checked_in("an order")
        if self.order_outcome_recorded:
            raise DomainError(f"visit {self.id} already has its order outcome", code="order_already_recorded")
        _check_skus([line.sku for line in lines], known_skus, "lines")
        self.record(
            VisitOrderTaken(
                **self._ids(),
                order_id=order_id,
                lines=list(lines),
                suggested_adopted=suggestion_adopted(self.suggested, lines),
            )
        )

    def refuse_order(self, reason: str) -> None:
        self._require_checked_in("a refusal")
        if self.order_outcome_recorded:
            raise DomainError(f"visit {self.id} already has its order outcome", code="order_already_recorded")
        self.record(VisitOrderRefused(**self._ids(), reason=reason))

    def confirm_delivery(self, order_id: str, delivered: bool) -> None:
        """The rep confirms whether the previous order arrived (上次订货是否送到)."""
        self._require_checked_in("the delivery confirmation")
        if self.delivery_confirmed:
            raise DomainError("the previous delivery is already confirmed", code="delivery_already_confirmed")
        if order_id == self.order_id:
            raise DomainError("the order taken on this visit is not the previous order", code="not_previous_order")
        self.record(VisitDeliveryConfirmed(**self._ids(), order_id=order_id, delivered=delivered))

    def check_out(self, at: datetime) -> None:
        match self.status:
            case "planned":
                raise DomainError("check-out needs a check-in first", code="not_checked_in")
            case "checked_out":
                raise DomainError(f"visit {self.id} is already checked out", code="already_checked_out")
            case "missed":
                raise DomainError(f"visit {self.id} was missed", code="visit_missed")
            case "cancelled":
                raise DomainError(f"visit {self.id} was cancelled", code="visit_cancelled")
        if not self.order_outcome_recorded:
            raise DomainError(
                "record the order taken or the refusal reason before checking out", code="order_outcome_missing"
            )
        self.record(VisitCheckedOut(**self._ids(), at=at, successful=self.order_id is not None))

    def miss(self, now: datetime, timezone: str) -> None:
        """End of the business day: a visit never checked in is missed."""
        if self.status != "planned":
            raise DomainError(f"visit {self.id} is {self.status}, not waiting", code="not_missable")
        if now < end_of_business_day(self.business_date, timezone):
            raise DomainError(
                f"the business day {self.business_date.isoformat()} is not over", code="business_day_not_over"
            )
        self.record(VisitMissed(**self._ids()))


@dataclass(frozen=True)
class Photo:
    photo_id: str
    object_name: str
    kind: str
    digest: str
    taken_at: datetime
    verdict: str | None = None
    removed_: bool = False

    def reviewed(self, verdict: str) -> Photo:
        return replace(self, verdict=verdict)

    def removed(self) -> Photo:
        return replace(self, removed_=True)


def _check_skus(skus: Sequence[str], known_skus: Iterable[str], field: str) -> None:
    known = set(known_skus)
    seen: set[str] = set()
    for sku in skus:
        if sku not in known:
            raise DomainError(f"SKU {sku} is not in the catalogue", code="unknown_sku", field=field)
        if sku in seen:
            raise DomainError(f"SKU {sku} is listed twice", code="duplicate_sku", field=field)
        seen.add(sku)
