"""The commands of the customer archive. Shape errors are 422 with field details; rules are
checked by the aggregates."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from customer_service.domain.values import (
    BaseData,
    BusinessStatus,
    Channel,
    Characteristics,
    Contact,
    ContactChannel,
    CreditRating,
    Grade,
    Id,
    Lifecycle,
    LocationType,
    MergeRule,
    Name,
    Nature,
    Ownership,
    Phone,
    Position,
    Reason,
    SalesFigures,
    Source,
    StaffRole,
    Text,
    TradingStatus,
)
from salesplatform.command import Command

# -- territory and staff --------------------------------------------------------------------


class DefineDivision(Command):
    """Define (or rename) a division 分区."""

    name = "define_division"
    division_id: Id
    division_name: Name = Field(alias="name")


class DefineArea(Command):
    """Define (or rename) an area 片区 of a division."""

    name = "define_area"
    area_id: Id
    area_name: Name = Field(alias="name")
    division_id: Id


class DefineDistrict(Command):
    """Define (or rename) a district 小区 of an area."""

    name = "define_district"
    district_id: Id
    district_name: Name = Field(alias="name")
    area_id: Id


class AssignStaff(Command):
    """Put a rep or supervisor in a district (an area manager in an area)."""

    name = "assign_staff"
    staff_id: Id
    staff_name: Name = Field(alias="name")
    role: StaffRole
    district_id: Id | None = None
    area_id: Id | None = None
    supervisor_id: Id | None = None

    @model_validator(mode="after")
    def _place(self) -> Self:
        if self.role in ("rep", "supervisor") and self.district_id is None:
            raise PydanticCustomError("district_required", "reps and supervisors belong to a district")
        if self.role == "area_manager" and self.area_id is None:
            raise PydanticCustomError("area_required", "an area manager belongs to an area")
        if self.role != "rep" and self.supervisor_id is not None:
            raise PydanticCustomError("supervisor_for_reps_only", "only a rep has a supervisor")
        return self


class MarkStaffDeparted(Command):
    name = "staff_departed"
    staff_id: Id


# -- the customer card ----------------------------------------------------------------------


class RegisterCustomer(Command):
    """A new outlet (新增客户): pending until a supervisor approves it."""

    name = "register_customer"
    # An individual's identity and the people on the card: left out of a dead letter no key seals.
    personal_fields = frozenset({"name", "address", "phone", "position", "base", "contacts"})
    customer_id: Id | None = None
    customer_name: Name = Field(alias="name")
    address: Annotated[str, Field(min_length=1, max_length=200)]
    phone: Phone
    rep_id: Id | None = None
    district_id: Id | None = None
    nature: Nature
    ownership: Ownership | None = None
    channel: Channel
    location_type: LocationType
    source: Source = "rep_visit"
    base: BaseData = BaseData()
    characteristics: Characteristics = Characteristics()
    business_status: BusinessStatus = BusinessStatus()
    trading_status: TradingStatus = TradingStatus()
    contacts: Annotated[list[Contact], Field(max_length=20, default_factory=list)]
    position: Position | None = None


class SetPosition(Command):
    """Where the outlet is, on the card (an individual's home position is sealed)."""

    name = "set_position"
    personal_fields = frozenset({"latitude", "longitude"})  # an individual's home
    customer_id: Id
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    reason: Reason | None = None


class VerifyCustomerData(Command):
    """Confirm form data a customer filled in (customers exaggerate: it counts only now)."""

    name = "verify_customer_data"
    personal_fields = frozenset({"note"})
    customer_id: Id
    note: Text | None = None


class ApproveCustomer(Command):
    """Approve a new outlet (审批): the customer gets its code 客编."""

    name = "approve_customer"
    customer_id: Id
    status: Literal["active", "prospect"] = "prospect"


class RejectCustomer(Command):
    name = "reject_customer"
    customer_id: Id
    reason: Reason


class ClassifyCustomer(Command):
    """Set classification values by hand; the ones not given stay."""

    name = "classify_customer"
    customer_id: Id
    nature: Nature | None = None
    ownership: Ownership | None = None
    channel: Channel | None = None
    location_type: LocationType | None = None
    grade: Grade | None = None
    reason: Reason

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set & {"nature", "ownership", "channel", "location_type", "grade"}:
            raise PydanticCustomError("nothing_to_classify", "give at least one classification value")
        return self


class RecomputeGrade(Command):
    """Grade from sales (A key / B general / C occasional): see domain/grading.py."""

    name = "recompute_grade"
    customer_id: Id
    figures: SalesFigures


class ChangeStatus(Command):
    """Lifecycle: prospect 潜在, active, dormant, lost."""

    name = "change_status"
    customer_id: Id
    status: Lifecycle
    reason: Reason


class SetCreditLimit(Command):
    """Credit rating 信誉等级, limit and payment terms: sales manager and up."""

    name = "set_credit_limit"
    customer_id: Id
    credit_rating: CreditRating
    credit_limit_fen: Annotated[int, Field(ge=0, le=10**13)]
    payment_terms_days: Annotated[int, Field(ge=0, le=365)]
    reason: Reason | None = None


class AssignCustomer(Command):
    name = "assign_customer"
    customer_id: Id
    rep_id: Id
    reason: Reason


class ReassignAll(Command):
    """All customers of a (departing) rep in one step, to one rep or spread over several."""

    name = "reassign_all"
    from_rep_id: Id
    to_rep_id: Id | None = None
    to_rep_ids: Annotated[list[Id], Field(min_length=1, max_length=50)] | None = None
    reason: Reason

    @model_validator(mode="after")
    def _targets(self) -> Self:
        if (self.to_rep_id is None) == (self.to_rep_ids is None):
            raise PydanticCustomError("one_target_form", "give either to_rep_id or to_rep_ids")
        if self.from_rep_id in self.targets():
            raise PydanticCustomError("reassign_to_self", "the customers cannot go back to the same rep")
        if len(set(self.targets())) != len(self.targets()):
            raise PydanticCustomError("duplicate_targets", "a rep is named twice")
        return self

    def targets(self) -> list[str]:
        return [self.to_rep_id] if self.to_rep_id is not None else list(self.to_rep_ids or [])


class UpdateProfile(Command):
    """Change card fields (path → new value) with a reason; stale data is replaced, never
    silently lost (the history keeps it)."""

    name = "update_profile"
    personal_fields = frozenset({"changes"})
    customer_id: Id
    changes: Annotated[dict[str, Any], Field(min_length=1, max_length=50)]
    reason: Reason


class MergeCustomers(Command):
    """Merge a duplicate card into the survivor (first deposit/order wins)."""

    name = "merge_customers"
    customer_id: Id
    survivor_id: Id
    rule: MergeRule
    reason: Reason


class LogContact(Command):
    """A follow-up by phone, WeChat or meeting (counts for the 7-day rule like a visit)."""

    name = "log_contact"
    personal_fields = frozenset({"note"})
    customer_id: Id
    channel: ContactChannel
    note: Text | None = None


class ReleaseCustomer(Command):
    """Run by the follow-up timer: give up a prospect its rep left for more than 7 days."""

    name = "release_customer"
    customer_id: Id
    rep_id: Id


class ClaimCustomer(Command):
    """A rep takes a released prospect of the district."""

    name = "claim_customer"
    customer_id: Id


class ErasePersonalData(Command):
    """Erase an individual's personal data on request; sales figures and ids stay."""

    name = "erase_personal_data"
    customer_id: Id
    reason: Reason | None = None
