"""Value types of the customer archive: identifiers, phones, classifications and the four
groups of the customer card (客户卡, the procedures' 四方面)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Text = Annotated[str, Field(min_length=1, max_length=1000)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]

# A Chinese mobile number, or a landline with its area code (0 + 2-3 digits, then 7-8 digits,
# an optional dash between and an optional extension).
MOBILE = r"1[3-9]\d{9}"
LANDLINE = r"0\d{2,3}-?\d{7,8}(-\d{1,6})?"
PHONE_PATTERN = rf"^({MOBILE}|{LANDLINE})$"
_PHONE = re.compile(PHONE_PATTERN)


def _check_phone(value: str) -> str:
    if not _PHONE.match(value):
        raise PydanticCustomError(
            "invalid_phone",
            "not a Chinese mobile number (1[3-9] + 9 digits) or a landline with area code (e.g. 021-12345678)",
        )
    return value


Phone = Annotated[str, Field(max_length=20, json_schema_extra={"pattern": PHONE_PATTERN}), AfterValidator(_check_phone)]

GRADES = ("A", "B", "C")


def _check_grade(value: Any) -> Any:
    if value is not None and value not in GRADES:
        raise PydanticCustomError("invalid_grade", "grade must be A (key), B (general) or C (occasional)")
    return value


# A key 主力 / B general 一般 / C occasional 零散
Grade = Annotated[Literal["A", "B", "C"], BeforeValidator(_check_grade)]

Nature = Literal["government", "key_company", "company", "individual", "trading_partner"]
Ownership = Literal["state", "collective", "private", "joint_stock", "joint_venture"]
Channel = Literal["wholesale", "retail", "agent", "franchise", "chain", "specialty"]
LocationType = Literal["business_centre", "transport_hub", "residential", "other"]
Source = Literal["rep_visit", "customer_form", "survey"]
Lifecycle = Literal["prospect", "active", "dormant", "lost"]
# Pending until approved; rejected keeps the reason; merged points to the survivor.
Status = Literal["pending", "rejected", "prospect", "active", "dormant", "lost", "merged"]
CreditRating = Literal["AAA", "AA", "A", "B", "C"]
StaffRole = Literal["rep", "supervisor", "area_manager"]
ContactChannel = Literal["phone", "wechat", "meeting", "message"]
GrowthPotential = Literal["high", "medium", "low"]
# Same-customer rules (业务判定): husband/wife/parent/child are one customer, shareholders of a
# company are one customer, or the same outlet entered twice.
MergeRule = Literal["family_members", "shareholders", "same_outlet"]


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# The restricted notes on a person: readable only by managers and the archive clerk.
RESTRICTED_PERSON_FIELDS = ("personality", "hobbies", "family", "education", "age")
PERSON_ROLES = ("owner", "manager", "legal_person")


class Position(Value):
    """Where an outlet is (WGS-84 degrees). An individual customer's is their home: sealed."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Person(Value):
    """Owner, manager or legal person of the customer (老板/经理/法人)."""

    name: Name
    phone: Phone | None = None
    title: Annotated[str, Field(max_length=100)] | None = None
    personality: Text | None = None
    hobbies: Text | None = None
    family: Text | None = None
    education: Text | None = None
    age: Annotated[int, Field(ge=14, le=120)] | None = None


class BaseFacts(Value):
    """Base data (客户基础资料) that is about the business, not about a person."""

    founded_on: date | None = None
    relationship_since: date | None = None
    organisation_form: Annotated[str, Field(max_length=100)] | None = None
    industry: Annotated[str, Field(max_length=100)] | None = None
    assets_fen: Annotated[int, Field(ge=0)] | None = None


class BaseData(BaseFacts):
    """Base data as entered: the business facts plus the people who run the customer."""

    owner: Person | None = None
    manager: Person | None = None
    legal_person: Person | None = None

    def facts(self) -> BaseFacts:
        return BaseFacts(**self.model_dump(include=set(BaseFacts.model_fields)))


class Characteristics(Value):
    """Characteristics (客户特征)."""

    service_area: Text | None = None
    sales_capacity: Text | None = None
    growth_potential: GrowthPotential | None = None
    business_policy: Text | None = None
    staff_count: Annotated[int, Field(ge=0)] | None = None
    annual_sales_fen: Annotated[int, Field(ge=0)] | None = None
    management_style: Text | None = None


class BusinessStatus(Value):
    """Business status (业务状况)."""

    sales_history: Text | None = None
    staff_quality: Text | None = None
    competitor_relations: Text | None = None
    cooperation_attitude: Text | None = None


class TradingStatus(Value):
    """Trading status (交易活动现状)."""

    current_problems: Text | None = None
    strengths: Text | None = None
    credit_standing: Text | None = None
    trade_terms: Text | None = None
    credit_incidents: Annotated[list[Text], Field(max_length=50)] = []


class Contact(Value):
    name: Name
    phone: Phone
    role: Annotated[str, Field(max_length=100)] | None = None
    note: Text | None = None


class SalesFigures(Value):
    """What the grade is recomputed from (sent by reporting or another system)."""

    annual_sales_fen: Annotated[int, Field(ge=0)]
    order_count: Annotated[int, Field(ge=0)] | None = None
    period: Annotated[str, Field(max_length=40)] | None = None


# -- the sales office (案场) ------------------------------------------------------------------

# The two lead registers of a sales office (电话客户登记本, 上门客户登记本).
RegisterKind = Literal["walk_in", "phone"]
# How a lead first became known: walked in (上门), phoned (来电), or referred by a customer
# (熟客介绍), known by the phone number the referring rep took down.
LeadSource = Literal["walk_in", "phone", "referral"]
# Why a rep received a customer: the next turn (轮次), the customer's own rep (熟客), or duty
# reception (义务接待) because that rep was absent or busy.
ReceptionBasis = Literal["turn", "own", "duty"]
# Where a lead stands: a phone (or referral) lead not yet seen, a walk-in followed by a rep,
# a phone registration void after 7 days without a visit, a walk-in given up after 7 days
# without a follow-up.
LeadStage = Literal["phone", "walk_in", "lapsed", "released"]
# Who else buys with a lead (业务判定): spouses, parents and children are one customer, the
# shareholders of a company are one customer; siblings and other relatives are not.
Relation = Literal["spouse", "parent", "child", "shareholder", "sibling", "relative"]
FollowUpChannel = Literal["phone", "wechat", "meeting", "message", "visit"]
