"""The customer card (客户卡) and the rules of the archive (客户档案管理)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from customer_service.domain import card
from customer_service.domain.events import (
    ContactLogged,
    CreditLimitSet,
    CustomerApproved,
    CustomerAssigned,
    CustomerClaimed,
    CustomerClassified,
    CustomerDataVerified,
    CustomerMerged,
    CustomerRegistered,
    CustomerRejected,
    CustomerReleased,
    CustomerStatusChanged,
    DuplicateAbsorbed,
    PersonalDataErased,
    PositionSet,
    ProfileUpdated,
)
from customer_service.domain.follow_up import FOLLOW_UP_WINDOW, follow_up_overdue
from customer_service.domain.grading import grade_for
from customer_service.domain.territory import StaffMember, TerritoryUnit
from customer_service.domain.values import (
    BaseData,
    BusinessStatus,
    Characteristics,
    Contact,
    Position,
    SalesFigures,
    TradingStatus,
)
from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Event
from salesplatform.territory import OUTSIDE_LINE

# Seals a personal part (path → value) with the customer's key; the result is opaque text.
Seal = Callable[[dict[str, Any]], str]

APPROVED = ("prospect", "active", "dormant", "lost")
CLASSIFICATION = ("nature", "ownership", "channel", "location_type", "grade")


@dataclass(frozen=True)
class Registration:
    """What a new card is registered with (the command, after the handler placed it)."""

    name: str
    address: str
    phone: str
    nature: str
    ownership: str | None
    channel: str
    location_type: str
    source: str
    base: BaseData
    characteristics: Characteristics
    business_status: BusinessStatus
    trading_status: TradingStatus
    contacts: list[Contact]
    position: Position | None = None

    @property
    def individual(self) -> bool:
        return self.nature == "individual"

    def personal_part(self) -> dict[str, Any]:
        """The personal data of the registration, path → JSON value."""
        out: dict[str, Any] = {}
        if self.individual:
            out.update(name=self.name, address=self.address, phone=self.phone)
        for role in ("owner", "manager", "legal_person"):
            person = getattr(self.base, role)
            if person is not None:
                out[f"base.{role}"] = person.model_dump(mode="json", exclude_none=True)
        if self.contacts:
            out["contacts"] = [c.model_dump(mode="json", exclude_none=True) for c in self.contacts]
        if self.individual and self.position is not None:
            out["position"] = self.position.model_dump(mode="json")
        return out


class Customer(Aggregate):
    stream_prefix = "customer"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status: str | None = None
        self.customer_code: str | None = None
        self.nature = ""
        self.ownership: str | None = None
        self.channel = ""
        self.location_type = ""
        self.grade: str | None = None
        self.district_id: str | None = None
        self.area_id: str | None = None
        self.division_id: str | None = None
        self.rep_id: str | None = None
        self.released_from: str | None = None
        self.source = ""
        self.verified = False
        self.credit: tuple[str, int, int] | None = None
        self.merged_into: str | None = None
        self.personal_erased = False
        self.has_personal_data = False
        self.has_position = False

    # -- state ------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        match event:
            case CustomerRegistered():
                self.status = event.status
                self.nature, self.ownership, self.channel = event.nature, event.ownership, event.channel
                self.location_type, self.source, self.verified = event.location_type, event.source, event.verified
                self.district_id, self.area_id, self.division_id = event.district_id, event.area_id, event.division_id
                self.rep_id = event.rep_id
                self.has_personal_data = event.personal is not None
                self.has_position = event.position is not None or "position" in event.personal_fields
            case CustomerDataVerified():
                self.verified = True
            case CustomerApproved():
                self.status, self.customer_code = event.status, event.customer_code
            case CustomerRejected():
                self.status = "rejected"
            case CustomerClassified():
                self.nature, self.ownership, self.channel = event.nature, event.ownership, event.channel
                self.location_type, self.grade = event.location_type, event.grade
            case CreditLimitSet():
                self.credit = (event.credit_rating, event.credit_limit_fen, event.payment_terms_days)
            case CustomerAssigned():
                self.rep_id, self.district_id, self.area_id = event.rep_id, event.district_id, event.area_id
                self.division_id = event.division_id or self.division_id
                self.released_from = None
            case CustomerStatusChanged():
                self.status = event.status
            case CustomerReleased():
                self.released_from, self.rep_id = event.rep_id, None
            case CustomerClaimed():
                self.rep_id, self.released_from = event.rep_id, None
            case ProfileUpdated():
                if event.personal is not None:
                    self.has_personal_data, self.personal_erased = True, False
            case PositionSet():
                self.has_position = True
                if event.personal is not None:
                    self.has_personal_data, self.personal_erased = True, False
            case ContactLogged():
                if event.personal is not None:
                    self.has_personal_data, self.personal_erased = True, False
            case CustomerMerged():
                self.status, self.merged_into = "merged", event.survivor_id
            case PersonalDataErased():
                self.personal_erased, self.has_personal_data = True, False
            case DuplicateAbsorbed():
                pass

    @property
    def individual(self) -> bool:
        return self.nature == "individual"

    @property
    def approved(self) -> bool:
        return self.status in APPROVED

    def _ensure_open(self) -> None:
        """Merged cards only point to their survivor; rejected ones keep their reason."""
        if self.status == "merged":
            raise DomainError(
                f"customer {self.id} was merged into {self.merged_into}; change the survivor", code="customer_merged"
            )
        if self.status == "rejected":
            raise DomainError(f"customer {self.id} was rejected", code="customer_rejected")

    # -- registration and approval ----------------------------------------------------------

    def register(self, reg: Registration, *, district: TerritoryUnit, rep: StaffMember, seal: Seal) -> None:
        if self.exists:
            raise DomainError(f"customer {self.id} already exists", code="customer_exists", field="customer_id")
        if not district.is_a("district"):
            raise DomainError(f"unknown district {district.id}", code="unknown_district", field="district_id")
        if not rep.is_active_rep:
            raise DomainError(f"unknown rep {rep.id}", code="unknown_rep", field="rep_id")
        if rep.district_id != district.id:
            raise DomainError(
                f"rep {rep.id} works in district {rep.district_id}, not {district.id}",
                code="rep_not_in_district",
                field="district_id",
            )
        personal = reg.personal_part()
        name, address, phone = reg.name, reg.address, reg.phone
        if reg.individual:
            # An individual's name, address and phone are personal data: sealed, and withheld
            # from the fields every other service reads.
            name, address, phone = card.individual_label(self.id), card.WITHHELD, card.WITHHELD
        assert district.area_id is not None and district.division_id is not None
        self.record(
            CustomerRegistered(
                customer_id=self.id,
                name=name,
                address=address,
                phone=phone,
                district_id=district.id,
                area_id=district.area_id,
                division_id=district.division_id,
                rep_id=rep.id,
                channel=reg.channel,
                nature=reg.nature,
                ownership=reg.ownership,
                location_type=reg.location_type,
                source=reg.source,
                # Customers exaggerate on forms: form data counts only once verified.
                verified=reg.source != "customer_form",
                base=reg.base.facts(),
                characteristics=reg.characteristics,
                business_status=reg.business_status,
                trading_status=reg.trading_status,
                personal=seal(personal) if personal else None,
                personal_fields=sorted(personal),
                position=None if reg.individual else reg.position,
            )
        )

    def verify_data(self, note: str | None) -> None:
        self._ensure_open()
        if self.verified:
            raise DomainError(f"the data of customer {self.id} is already verified", code="already_verified")
        self.record(CustomerDataVerified(customer_id=self.id, note=note))

    def approve(self, district: TerritoryUnit, status: str, approved_by: str) -> str:
        """Approve a pending registration; the district issues the customer code."""
        self._ensure_open()
        if self.approved:
            raise DomainError(f"customer {self.id} is already approved ({self.customer_code})", code="already_approved")
        if not self.verified:
            raise DomainError(f"customer {self.id} came from a form that nobody verified yet", code="data_unverified")
        if district.id != self.district_id:
            raise DomainError(f"customer {self.id} is in district {self.district_id}", code="wrong_district")
        code = district.issue_customer_code(self.id)
        self.record(
            CustomerApproved(
                customer_id=self.id,
                customer_code=code,
                status=status,
                approved_by=approved_by,
            )
        )
        return code

    def reject(self, reason: str, rejected_by: str) -> None:
        self._ensure_open()
        if self.approved:
            raise DomainError(f"customer {self.id} is already approved", code="already_approved")
        self.record(CustomerRejected(customer_id=self.id, reason=reason, rejected_by=rejected_by))

    # -- classification, credit, lifecycle --------------------------------------------------

    def _current_classification(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in CLASSIFICATION}

    def classify(self, values: dict[str, Any], reason: str) -> None:
        """Set the given classification values by hand (the others stay)."""
        self._ensure_open()
        new = {**self._current_classification(), **values}
        if "nature" in values and (values["nature"] == "individual") != self.individual:
            # An individual's name, address and phone are sealed from registration on; a card
            # cannot become (or stop being) an individual's: register it anew.
            raise DomainError(
                "whether a customer is an individual is fixed at registration",
                code="individual_nature_fixed",
                field="nature",
            )
        if new == self._current_classification():
            raise DomainError("the classification is already so", code="classification_unchanged")
        self.record(CustomerClassified(customer_id=self.id, basis="manual", reason=reason, **new))

    def recompute_grade(self, figures: SalesFigures) -> tuple[str, bool]:
        """Grade from sales figures; records a change only when the grade moves."""
        self._ensure_open()
        grade = grade_for(figures)
        if grade == self.grade:
            return grade, False
        new = {**self._current_classification(), "grade": grade}
        self.record(
            CustomerClassified(
                customer_id=self.id,
                basis="sales",
                figures=figures,
                reason=f"recomputed from sales ({figures.period or 'last 12 months'})",
                **new,
            )
        )
        return grade, True

    def set_credit(self, rating: str, limit_fen: int, terms_days: int, reason: str | None) -> None:
        self._ensure_open()
        if limit_fen < 0:
            raise DomainError(
                "a credit limit cannot be negative", code="negative_credit_limit", field="credit_limit_fen"
            )
        if self.credit == (rating, limit_fen, terms_days):
            raise DomainError("the credit terms are already so", code="credit_unchanged")
        self.record(
            CreditLimitSet(
                customer_id=self.id,
                credit_rating=rating,
                credit_limit_fen=limit_fen,
                payment_terms_days=terms_days,
                reason=reason,
            )
        )

    def change_status(self, status: str, reason: str) -> None:
        self._ensure_open()
        if not self.approved:
            raise DomainError(f"customer {self.id} is not approved yet", code="not_approved")
        if status == self.status:
            raise DomainError(f"customer {self.id} is already {status}", code="status_unchanged")
        self.record(CustomerStatusChanged(customer_id=self.id, status=status, reason=reason))

    # -- ownership: assignment, the 7-day rule, claims --------------------------------------

    def assign(self, rep: StaffMember, district: TerritoryUnit, reason: str) -> None:
        self._ensure_open()
        if not rep.is_active_rep:
            raise DomainError(f"unknown rep {rep.id}", code="unknown_rep", field="rep_id")
        if rep.id == self.rep_id:
            raise DomainError(f"customer {self.id} is already {rep.id}'s", code="already_assigned")
        if not district.is_a("district") or rep.district_id != district.id:
            raise DomainError(f"rep {rep.id} has no district", code="unknown_district")
        assert district.area_id is not None
        self.record(
            CustomerAssigned(
                customer_id=self.id,
                rep_id=rep.id,
                district_id=district.id,
                area_id=district.area_id,
                division_id=district.division_id,
                previous_rep_id=self.rep_id,
                reason=reason,
            )
        )

    def release(self, rep_id: str, last_follow_up: datetime, now: datetime) -> None:
        """Give up a prospect its rep did not follow up for more than 7 days."""
        self._ensure_open()
        if self.status != "prospect":
            raise DomainError(f"customer {self.id} is {self.status}, not a prospect", code="not_prospect")
        if self.rep_id != rep_id:
            raise DomainError(f"customer {self.id} is no longer {rep_id}'s", code="rep_changed")
        if not follow_up_overdue(last_follow_up, now):
            raise DomainError(
                f"customer {self.id} was followed up at {last_follow_up.isoformat()}", code="followed_up_recently"
            )
        days = FOLLOW_UP_WINDOW.days
        self.record(
            CustomerReleased(
                customer_id=self.id,
                rep_id=rep_id,
                last_follow_up_at=last_follow_up,
                reason=f"not followed up for more than {days} days (since {last_follow_up.isoformat()})",
            )
        )

    def claim(self, rep: StaffMember) -> None:
        self._ensure_open()
        if not rep.is_active_rep:
            raise DomainError(f"unknown rep {rep.id}", code="unknown_rep")
        if self.rep_id is not None or self.status != "prospect":
            raise DomainError(f"customer {self.id} is not released", code="not_released")
        if rep.district_id != self.district_id:
            raise PermissionDenied(
                f"customer {self.id} is in district {self.district_id}; claim in your own",
                code=OUTSIDE_LINE,
            )
        if rep.id == self.released_from:
            raise DomainError("a rep cannot claim back a prospect released from them", code="cannot_reclaim")
        self.record(CustomerClaimed(customer_id=self.id, rep_id=rep.id))

    def log_contact(self, at: datetime, channel: str, note: str | None, seal: Seal) -> None:
        self._ensure_open()
        if self.rep_id is None:
            raise DomainError(f"customer {self.id} has no rep; claim it first", code="no_rep")
        self.record(
            ContactLogged(
                customer_id=self.id,
                rep_id=self.rep_id,
                at=at,
                channel=channel,
                personal=seal({"note": note}) if note else None,
            )
        )

    # -- the card ----------------------------------------------------------------------------

    def update_profile(self, changes: dict[str, Any], reason: str, seal: Seal) -> None:
        """`changes` are validated card paths (card.validate_changes)."""
        self._ensure_open()
        public, personal = card.split_personal(changes, self.individual)
        self.record(
            ProfileUpdated(
                customer_id=self.id,
                changes=public,
                reason=reason,
                personal=seal(personal) if personal else None,
                personal_fields=sorted(personal),
            )
        )

    def set_position(
        self,
        position: Position,
        seal: Seal,
        *,
        source: str = "card",
        visit_id: str | None = None,
        accuracy_m: float | None = None,
        reason: str | None = None,
    ) -> None:
        """The outlet's position; an individual customer's (their home) is sealed."""
        self._ensure_open()
        if not self.exists:
            raise DomainError(f"customer {self.id} does not exist", code="customer_not_found")
        sealed = self.individual
        self.record(
            PositionSet(
                customer_id=self.id,
                position=None if sealed else position,
                source=source,
                visit_id=visit_id,
                accuracy_m=accuracy_m,
                reason=reason,
                personal=seal({"position": position.model_dump(mode="json")}) if sealed else None,
                personal_fields=["position"] if sealed else [],
            )
        )

    def merge_into(self, survivor: Customer, rule: str, reason: str, winner_id: str, rule_reason: str) -> None:
        """Merge this duplicate into `survivor`; `winner_id` is who the first-buyer rule picks."""
        if survivor.id == self.id:
            raise DomainError("a customer cannot be merged into itself", code="merge_into_self", field="survivor_id")
        self._ensure_open()
        if survivor.status == "merged":
            raise DomainError(
                f"customer {survivor.id} was itself merged into {survivor.merged_into}",
                code="survivor_merged",
                field="survivor_id",
            )
        if survivor.status == "rejected":
            raise DomainError(f"customer {survivor.id} was rejected", code="customer_rejected", field="survivor_id")
        if winner_id != survivor.id:
            raise DomainError(
                f"{winner_id} must survive: {rule_reason}", code="survivor_not_first_buyer", field="survivor_id"
            )
        self.record(
            CustomerMerged(
                customer_id=self.id,
                survivor_id=survivor.id,
                reason=reason,
                rule=rule,
                rule_reason=rule_reason,
            )
        )
        survivor.record(DuplicateAbsorbed(customer_id=survivor.id, duplicate_id=self.id, rule=rule, reason=reason))

    def erase_personal_data(self, reason: str | None = None) -> None:
        """Allowed on merged cards too: the request is about a person, not the card's state."""
        if self.personal_erased and not self.has_personal_data:
            raise DomainError(f"the personal data of customer {self.id} is already erased", code="already_erased")
        self.record(PersonalDataErased(customer_id=self.id, reason=reason))
