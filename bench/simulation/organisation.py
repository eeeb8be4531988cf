"""The simulated sales department and the days it lives through: a plan, nothing sent.

`build_plan(seed, scale=..., days=..., end=...)` returns a `Plan`: the organisation (territory
tree, managers, supervisors and reps, customers of every grade and channel with their credit
terms and coolers, the catalogue with area prices and the required SKUs per channel, routes,
promotions and monthly targets) and one `Day` per business day with what happens on it: route
visits (missed, refused or with an order), phone orders, deliveries (a few late), payments (some
late, some never), returns of every reason, complaints, surveys, key-account reports, coaching,
delivery spot checks, follow-up contacts and status changes.

Pure and deterministic: every choice comes from `random.Random` streams seeded with the seed and
a topic, and every id is derived from the seed (readable ids carry the tag `s<seed>`, the others
are uuid5), so the same seed gives the same plan and two seeds never share an id. No I/O, no
clock: the last day is `end` (the driver passes today's business date).
"""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from bench.simulation.office import SalesOffice, Step, opening_day, sales_office
from salesplatform.events import Actor, Role

TIMEZONE = "Asia/Shanghai"
TZ = ZoneInfo(TIMEZONE)
NAMESPACE = uuid.UUID("5b0c8f52-8d7e-4f0e-9a57-3c1e2d4b6a90")

GRADES = ("A", "B", "C")
CHANNELS = ("wholesale", "retail", "agent", "franchise", "chain", "specialty")
NATURES = ("government", "key_company", "company", "individual", "trading_partner")
OWNERSHIPS = ("state", "collective", "private", "joint_stock", "joint_venture")
LOCATION_TYPES = ("business_centre", "transport_hub", "residential", "other")
RETURN_REASONS = ("quality_defect", "wrong_shipment", "selection_error", "transit_damage")
COMPLAINT_CATEGORIES = ("quality", "technical", "logistics", "service")
COMPLAINT_STAGES = ("received", "acknowledged", "routed", "resolved", "closed")

# Routes: five per rep; Monday's and Tuesday's customers are seen again on Saturday and Sunday,
# so every day of the week has route visits (and `make demo` has live visits whatever the day).
ROUTE_WEEKDAYS: tuple[tuple[int, ...], ...] = ((1, 6), (2, 7), (3,), (4,), (5,))
WEEKDAY_NAMES = {1: "周一", 2: "周二", 3: "周三", 4: "周四", 5: "周五", 6: "周六", 7: "周日"}

# The standard success pictures (成功图象) of the channels that have one: what the rep ticks on
# the audit, and what a photo of the display shows.
STANDARD_PICTURES: dict[str, tuple[tuple[str, str], ...]] = {
    channel: (
        ("brand_block", "本品陈列成块, 与视线平齐"),
        ("price_tags", "每个排面都有价签"),
        ("required_skus", "必备SKU全部上架"),
    )
    + ((("cooler_front", "冰柜在店内第一位置"),) if channel in ("retail", "chain") else ())
    for channel in ("retail", "chain", "franchise", "specialty")
}

# A supervisor may approve orders up to this amount; the threshold above which any order needs
# approval is the orders service's (5,000 yuan by default).
APPROVAL_THRESHOLD_FEN = 500_000


# -- size -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """How big the department is. The default is a mid-sized department; `scaled(f)` keeps the
    shape (at least two areas, one supervisor per district, fifty customers per rep, so a route
    stays about ten customers a day) and shrinks the head count."""

    divisions: int = 2
    areas: int = 4
    districts: int = 12
    reps: int = 60
    customers_per_rep: int = 50
    skus: int = 40

    @classmethod
    def scaled(cls, scale: float) -> Size:
        if scale <= 0:
            raise ValueError("scale must be positive")
        d = cls()
        areas = max(2, round(d.areas * scale))
        divisions = min(areas, max(1, round(d.divisions * scale)))
        districts = max(areas, round(d.districts * scale))
        reps = max(districts, 2, round(d.reps * scale))
        skus = min(60, max(12, round(d.skus * min(1.0, scale * 4))))
        return cls(divisions, areas, districts, reps, d.customers_per_rep, skus)


# -- the organisation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    staff_id: str
    name: str
    role: str  # salesplatform Role value
    district_id: str | None = None
    area_id: str | None = None
    supervisor_id: str | None = None

    def actor(self) -> Actor:
        return Actor(id=self.staff_id, role=Role(self.role), district=self.district_id, area=self.area_id)


@dataclass(frozen=True)
class Division:
    division_id: str
    name: str


@dataclass(frozen=True)
class Area:
    area_id: str
    name: str
    division_id: str
    manager_id: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class District:
    district_id: str
    name: str
    area_id: str
    division_id: str
    supervisor_id: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Credit:
    rating: str
    limit_fen: int
    terms_days: int


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    address: str
    phone: str
    owner_name: str
    rep_id: str
    district_id: str
    area_id: str
    division_id: str
    nature: str
    ownership: str
    channel: str
    location_type: str
    source: str  # rep_visit | customer_form (verified before approval) | survey
    grade: str
    status: str  # active | prospect (approved as such) | rejected
    rejection_reason: str | None
    credit: Credit | None
    coolers: tuple[str, ...]
    latitude: float
    longitude: float
    basket: tuple[str, ...]  # the SKUs it usually buys

    @property
    def approved(self) -> bool:
        return self.status != "rejected"

    @property
    def payment_terms_days(self) -> int:
        return self.credit.terms_days if self.credit else 0


@dataclass(frozen=True)
class Sku:
    sku: str
    name: str
    brand: str
    product_group: str
    package: str
    list_price_fen: int
    floor_price_fen: int


@dataclass(frozen=True)
class AreaPrice:
    sku: str
    area_id: str
    list_price_fen: int
    floor_price_fen: int


@dataclass(frozen=True)
class Route:
    route_id: str
    rep_id: str
    name: str
    weekdays: tuple[int, ...]
    customer_ids: tuple[str, ...]


@dataclass(frozen=True)
class Promotion:
    promotion_id: str
    name: str
    starts_on: date
    ends_on: date
    skus: tuple[str, ...]
    channels: tuple[str, ...]
    discount_percent: int | None
    gift_buy: int | None
    gift_get: int | None
    budget_fen: int


@dataclass(frozen=True)
class Target:
    """A monthly target set directly (area level, by the sales manager)."""

    month: str
    level: str
    subject_id: str
    product_group: str | None
    amount_fen: int


@dataclass(frozen=True)
class Decomposition:
    """Split a target over the districts of an area or the reps of a district, by weight."""

    month: str
    level: str
    subject_id: str
    into: str
    weights: tuple[tuple[str, int], ...]
    by: str  # staff id of the area manager who splits it


@dataclass(frozen=True)
class Organisation:
    seed: int
    tag: str
    size: Size
    divisions: tuple[Division, ...]
    areas: tuple[Area, ...]
    districts: tuple[District, ...]
    staff: tuple[Person, ...]  # area managers, supervisors, reps (assigned in that order)
    sales_manager: Person
    general_manager: Person
    inspector: Person
    clerk: Person
    planner: Person  # the day-planning system (plan_visit)
    logistics: Person  # the warehouse and delivery system
    call_centre: Person  # phone orders and complaints
    survey_desk: Person  # the satisfaction survey team's system
    erp: Person  # the older order system whose history is imported
    customers: tuple[Customer, ...]
    skus: tuple[Sku, ...]
    area_prices: tuple[AreaPrice, ...]
    required_skus: tuple[tuple[str, tuple[str, ...]], ...]
    routes: tuple[Route, ...]
    promotions: tuple[Promotion, ...]
    targets: tuple[Target, ...]
    decompositions: tuple[Decomposition, ...]
    # The sales office (案场) of a property project, in a district of its own.
    office: SalesOffice | None = None

    @cached_property
    def people(self) -> dict[str, Person]:
        everyone = (
            *self.staff,
            self.sales_manager,
            self.general_manager,
            self.inspector,
            self.clerk,
            self.planner,
            self.logistics,
            self.call_centre,
            self.survey_desk,
            self.erp,
        )
        return {p.staff_id: p for p in everyone}

    @cached_property
    def customer_by_id(self) -> dict[str, Customer]:
        return {c.customer_id: c for c in self.customers}

    @cached_property
    def sku_by_code(self) -> dict[str, Sku]:
        return {s.sku: s for s in self.skus}

    @cached_property
    def district_by_id(self) -> dict[str, District]:
        return {d.district_id: d for d in self.districts}

    @cached_property
    def area_by_id(self) -> dict[str, Area]:
        return {a.area_id: a for a in self.areas}

    @property
    def reps(self) -> list[Person]:
        return [p for p in self.staff if p.role == "rep"]

    @property
    def supervisors(self) -> list[Person]:
        return [p for p in self.staff if p.role == "supervisor"]

    @property
    def area_managers(self) -> list[Person]:
        return [p for p in self.staff if p.role == "area_manager"]

    def supervisor_of_district(self, district_id: str) -> Person:
        return self.people[self.district_by_id[district_id].supervisor_id]

    def manager_of_area(self, area_id: str) -> Person:
        return self.people[self.area_by_id[area_id].manager_id]

    def price(self, sku: str, area_id: str) -> int:
        for p in self._area_price_index.get((sku, area_id), ()):
            return p.list_price_fen
        return self.sku_by_code[sku].list_price_fen

    @cached_property
    def _area_price_index(self) -> dict[tuple[str, str], list[AreaPrice]]:
        index: dict[tuple[str, str], list[AreaPrice]] = defaultdict(list)
        for p in self.area_prices:
            index[(p.sku, p.area_id)].append(p)
        return index


# -- what happens on a day ----------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    unit_price_fen: int  # the area's list price (history records carry it; live orders let the service price)

    @property
    def amount_fen(self) -> int:
        return self.quantity * self.unit_price_fen


@dataclass(frozen=True)
class StockCount:
    sku: str
    shelf_qty: int
    store_qty: int


@dataclass(frozen=True)
class CoolerCheck:
    cooler_id: str
    at_outlet: bool
    best_position: bool
    powered: bool
    light_on: bool
    clean: bool
    working: bool
    required_packs: bool
    misused: bool


@dataclass(frozen=True)
class CompetitorSeen:
    brand: str
    product: str
    price_fen: int | None
    promotion: str | None
    stock_age_days: int | None


@dataclass(frozen=True)
class Visit:
    """A route visit. `outcome`: order | refused | missed (the rep never checks in) | cancelled
    (a key-account visit whose approval the supervisor refuses)."""

    key: str
    day: date
    at: datetime
    rep_id: str
    customer_id: str
    route_id: str
    sequence: int
    outcome: str
    stock: tuple[StockCount, ...]
    present_skus: tuple[str, ...]
    price_tags_ok: bool
    display_ok: bool
    coolers: tuple[CoolerCheck, ...]
    competitor: CompetitorSeen | None
    order_key: str | None
    adopt_suggestion: bool
    refusal_reason: str | None
    previous_delivered: bool | None  # the rep's word on the previous order; None: there is none
    # Where the rep's phone puts the check-in: (latitude, longitude, accuracy in metres).
    check_in: tuple[float, float, float] | None = None
    photo: bool = False  # a photo of the display backs the audit against the standard picture


@dataclass(frozen=True)
class Order:
    key: str
    day: date
    placed_at: datetime
    customer_id: str
    rep_id: str
    source: str  # visit | phone
    visit_key: str | None
    lines: tuple[Line, ...]
    # approve | reject: the answer if the service sends the order for approval; wait: the
    # approver has not decided yet (today's orders only), it stays in the queue
    if_approval: str
    order_id: str | None = None  # a phone order's id; a visit's order is named by the visit service

    @property
    def amount_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


@dataclass(frozen=True)
class Delivery:
    key: str
    day: date
    order_key: str
    customer_id: str
    delivered_at: datetime
    late: bool  # more than 24 hours after the order
    payment_terms_days: int


@dataclass(frozen=True)
class Payment:
    key: str
    day: date
    customer_id: str
    amount_fen: int
    allocations: tuple[tuple[str, int], ...]  # (order key, fen)
    late: bool  # received after the due date of an invoice it pays


@dataclass(frozen=True)
class Return:
    key: str
    day: date
    order_key: str
    customer_id: str
    scope: str  # whole_batch | part
    reason: str
    lines: tuple[tuple[str, int], ...] | None  # None: the whole batch
    wrong_shipment_kind: str | None
    detail: str
    inspection_confirmed: bool  # used when the reason needs the inspector
    decision: str  # approve | reject | wait (requested today, not decided yet)
    rejection_reason: str
    resolution: str
    goods_received: bool


@dataclass(frozen=True)
class Complaint:
    key: str
    day: date
    received_at: datetime
    customer_id: str
    channel: str
    category: str
    severity: str
    description: str
    stage: str  # how far it gets: received (never acknowledged: breaches the 48 h) … closed
    resolution: str
    customer_misuse: bool


@dataclass(frozen=True)
class Survey:
    key: str
    day: date
    customer_id: str
    scores: tuple[tuple[str, int], ...]
    satisfied: bool


@dataclass(frozen=True)
class KeyAccountReport:
    key: str
    day: date
    customer_id: str
    rep_id: str
    summary: str
    issues: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Coaching:
    key: str
    day: date
    supervisor_id: str
    rep_id: str
    notes: str
    strengths: tuple[str, ...]
    improvements: tuple[str, ...]


@dataclass(frozen=True)
class SpotCheck:
    key: str
    day: date
    supervisor_id: str
    order_key: str
    customer_id: str
    delivered: bool
    on_time: bool
    quantities_match: bool
    notes: str


@dataclass(frozen=True)
class Contact:
    key: str
    day: date
    customer_id: str
    rep_id: str
    channel: str
    note: str


@dataclass(frozen=True)
class StatusChange:
    key: str
    day: date
    customer_id: str
    status: str
    reason: str


@dataclass(frozen=True)
class Day:
    day: date
    visits: tuple[Visit, ...] = ()
    orders: tuple[Order, ...] = ()
    deliveries: tuple[Delivery, ...] = ()
    payments: tuple[Payment, ...] = ()
    returns: tuple[Return, ...] = ()
    complaints: tuple[Complaint, ...] = ()
    surveys: tuple[Survey, ...] = ()
    key_account_reports: tuple[KeyAccountReport, ...] = ()
    coachings: tuple[Coaching, ...] = ()
    spot_checks: tuple[SpotCheck, ...] = ()
    contacts: tuple[Contact, ...] = ()
    status_changes: tuple[StatusChange, ...] = ()

    def actions(self) -> Iterator[Any]:
        for f in fields(self):
            if f.name != "day":
                yield from getattr(self, f.name)


@dataclass(frozen=True)
class Plan:
    seed: int
    scale: float
    organisation: Organisation
    days: tuple[Day, ...]
    # The sales office's day: the last day, lived live (office.opening_day).
    office_day: tuple[Step, ...] = ()

    @property
    def start(self) -> date:
        return self.days[0].day

    @property
    def end(self) -> date:
        return self.days[-1].day

    def actions(self) -> Iterator[Any]:
        for day in self.days:
            yield from day.actions()

    def all(self, kind: str) -> list[Any]:
        """Every action of one kind (a `Day` field name: "orders", "returns", …), in day order."""
        return [a for day in self.days for a in getattr(day, kind)]

    @cached_property
    def order_by_key(self) -> dict[str, Order]:
        return {o.key: o for o in self.all("orders")}

    @cached_property
    def delivery_by_order(self) -> dict[str, Delivery]:
        return {d.order_key: d for d in self.all("deliveries")}

    def overdue_invoices(self) -> list[Delivery]:
        """Invoices due before the last day that were paid late or not at all by then."""
        paid_on: dict[str, date] = {}
        for p in self.all("payments"):
            for order_key, _ in p.allocations:
                paid_on[order_key] = p.day
        out = []
        for d in self.all("deliveries"):
            due = d.delivered_at.astimezone(TZ).date() + timedelta(days=d.payment_terms_days)
            if due < self.end and paid_on.get(d.order_key, self.end + timedelta(days=1)) > due:
                out.append(d)
        return out

    def counts(self) -> dict[str, int]:
        org = self.organisation
        out = {
            "divisions": len(org.divisions),
            "areas": len(org.areas),
            "districts": len(org.districts),
            "supervisors": len(org.supervisors),
            "reps": len(org.reps),
            "customers": len(org.customers),
            "skus": len(org.skus),
            "routes": len(org.routes),
            "days": len(self.days),
        }
        for f in fields(Day):
            if f.name != "day":
                out[f.name] = sum(len(getattr(d, f.name)) for d in self.days)
        out["late_deliveries"] = sum(1 for d in self.all("deliveries") if d.late)
        out["overdue_invoices"] = len(self.overdue_invoices())
        office = self.organisation.office
        out["office_units"] = len(office.units) if office else 0
        out["office_reps"] = len(office.reps) if office else 0
        for kind in ("walk_in", "call", "deposit", "subscription", "contract"):
            out[f"office_{kind}s"] = sum(1 for s in self.office_day if s.kind == kind)
        return out


# -- building it --------------------------------------------------------------------------------

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段"
_GIVEN = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "志强",
    "海燕",
    "晓东",
    "丹",
    "鹏",
    "宇",
    "浩",
    "婷",
    "雪",
)
_DIVISIONS = ("东区", "西区", "南区", "北区")
_AREAS = (
    ("浦东片区", 31.22, 121.54),
    ("浦西片区", 31.23, 121.45),
    ("苏州片区", 31.30, 120.62),
    ("杭州片区", 30.27, 120.15),
    ("南京片区", 32.06, 118.80),
    ("宁波片区", 29.87, 121.55),
    ("无锡片区", 31.49, 120.31),
    ("嘉兴片区", 30.75, 120.76),
)
_DISTRICT_WORDS = (
    "陆家嘴",
    "张江",
    "金桥",
    "世纪公园",
    "徐家汇",
    "静安寺",
    "人民广场",
    "虹桥",
    "园区",
    "观前",
    "西湖",
    "滨江",
    "新街口",
    "鼓楼",
    "天一",
    "鄞州",
    "崇安",
    "南长",
    "南湖",
    "秀洲",
    "花木",
    "川沙",
    "周浦",
    "康桥",
)
_STREETS = (
    "南京路",
    "淮海路",
    "四川路",
    "延安路",
    "长寿路",
    "中山路",
    "解放路",
    "人民路",
    "建设路",
    "和平路",
    "光明路",
    "幸福路",
    "新华路",
    "文化路",
    "胜利路",
    "东方路",
    "世纪大道",
    "张杨路",
    "浦东大道",
    "金桥路",
    "桂林路",
    "漕溪路",
    "天目路",
    "共和路",
    "武宁路",
    "曹杨路",
    "江宁路",
    "昌平路",
    "西藏路",
    "复兴路",
)
_OUTLET_KINDS = {
    "retail": ("便利店", "小卖部", "副食店", "烟杂店"),
    "chain": ("联华超市", "华联超市", "好德便利", "可的便利"),
    "wholesale": ("批发部", "商贸行", "食品批发"),
    "agent": ("贸易公司", "经销部", "食品经营部"),
    "franchise": ("特约店", "加盟店"),
    "specialty": ("烟酒店", "饮品店", "茶饮专营店", "酒水专营"),
}
_PRODUCT_LINES = (
    ("carbonated", "CB", "冰爽", 300, ("可乐", "柠檬汽水", "橙味汽水", "零度可乐", "姜汁汽水")),
    ("juice", "JU", "果园", 420, ("橙汁", "苹果汁", "葡萄汁", "芒果汁")),
    ("water", "WA", "清泉", 160, ("纯净水", "矿泉水", "苏打水")),
    ("tea", "TE", "茗香", 350, ("绿茶", "红茶", "乌龙茶", "柠檬茶")),
    ("dairy", "DA", "牧场", 460, ("纯牛奶", "酸奶", "乳酸菌")),
)
_PACKAGES = (("330ml罐", "330C", 1.0), ("500ml瓶", "500P", 1.3), ("1.5L瓶", "15LP", 2.5), ("6x330ml组", "6P", 5.4))
_BASE_QUANTITY = {"wholesale": 96, "agent": 72, "chain": 36, "franchise": 24, "specialty": 12, "retail": 12}
_GRADE_FACTOR = {"A": 2.0, "B": 1.0, "C": 0.6}
_COMPETITORS = (
    ("可口可乐", "可乐330ml"),
    ("百事", "百事可乐500ml"),
    ("农夫山泉", "饮用天然水550ml"),
    ("康师傅", "冰红茶500ml"),
    ("统一", "鲜橙多450ml"),
    ("娃哈哈", "营养快线500ml"),
)
_REFUSALS = (
    "库存充足，下次再订",
    "老板不在，无法下单",
    "资金周转紧张",
    "竞品促销力度更大",
    "店面装修暂停营业",
    "上次的货还没卖完",
)
_COMPLAINTS = {
    "quality": ("一批可乐有沉淀物", "瓶盖漏气，口感变淡", "牛奶临近保质期", "包装破损渗漏"),
    "technical": ("冰柜温度上不去", "冰柜灯不亮", "扫码价签系统显示错误"),
    "logistics": ("送货晚了一天", "送货数量少了一箱", "运输中纸箱压坏"),
    "service": ("业务员连续两周没来拜访", "促销费用迟迟未兑现", "电话无人接听"),
}
_RESOLUTIONS = {
    "quality": "已换货并送检，生产部门已整改",
    "technical": "已派技术人员上门维修",
    "logistics": "已补发货物并调整配送路线",
    "service": "已向客户致歉并调整拜访计划",
}
_SURVEY_QUESTIONS = ("product_quality", "delivery", "service", "price", "rep_visits")
_COACHING_STRENGTHS = ("拜访八步骤完整", "生动化陈列到位", "与店主关系良好", "建议订单采纳率高", "路线执行准时")
_COACHING_IMPROVEMENTS = ("库存盘点不够细", "价签检查遗漏", "竞品信息记录不全", "冰柜检查不仔细", "缺少推荐新品")


class _Builder:
    def __init__(self, seed: int, scale: float, days: int, end: date) -> None:
        if days < 1:
            raise ValueError("days must be at least 1")
        self.seed = seed
        self.scale = scale
        self.size = Size.scaled(scale)
        self.end = end
        self.start = end - timedelta(days=days - 1)
        self.dates = [self.start + timedelta(days=i) for i in range(days)]
        # Readable ids carry the tag: the seed, and the size when it is not the default one, so
        # two departments loaded into one system never share an id.
        base = f"s{seed}" if 0 <= seed < 10**12 else "s" + uuid.uuid5(NAMESPACE, str(seed)).hex[:10]
        self.tag = base if scale == 1 else f"{base}x{max(1, round(scale * 1000))}"
        self._delivery_times: dict[str, datetime | None] = {}  # order key → delivered at (None: not in the window)
        self._unpaid: str | None = None  # the delivery whose invoice is left unpaid on purpose

    # deterministic randomness: one stream per topic, so a change in one part leaves the others
    def rng(self, topic: str) -> random.Random:
        return random.Random(f"{self.seed}:{topic}")

    def uid(self, kind: str, *parts: object) -> str:
        return str(uuid.uuid5(NAMESPACE, ":".join([self.tag, kind, *map(str, parts)])))

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), TZ)

    # -- organisation -------------------------------------------------------------------------

    def person_name(self, rng: random.Random) -> str:
        return rng.choice(_SURNAMES) + rng.choice(_GIVEN)

    def organisation(self) -> Organisation:
        rng = self.rng("organisation")
        size, tag = self.size, self.tag
        divisions = tuple(Division(f"{tag}-dv{i + 1}", _DIVISIONS[i % len(_DIVISIONS)]) for i in range(size.divisions))
        areas, districts, staff = [], [], []
        area_managers = []
        for i in range(size.areas):
            name, lat, lon = _AREAS[i % len(_AREAS)]
            area_id = f"{tag}-a{i + 1:02d}"
            manager = Person(f"{tag}-am{i + 1:02d}", self.person_name(rng), "area_manager", area_id=area_id)
            area_managers.append(manager)
            areas.append(Area(area_id, name, divisions[i % len(divisions)].division_id, manager.staff_id, lat, lon))
        supervisors = []
        for i in range(size.districts):
            area = areas[i % len(areas)]
            district_id = f"{tag}-d{i + 1:02d}"
            supervisor = Person(
                f"{tag}-sv{i + 1:02d}",
                self.person_name(rng),
                "supervisor",
                district_id=district_id,
                area_id=area.area_id,
            )
            supervisors.append(supervisor)
            districts.append(
                District(
                    district_id,
                    _DISTRICT_WORDS[i % len(_DISTRICT_WORDS)] + "小区",
                    area.area_id,
                    area.division_id,
                    supervisor.staff_id,
                    round(area.latitude + rng.uniform(-0.05, 0.05), 5),
                    round(area.longitude + rng.uniform(-0.05, 0.05), 5),
                )
            )
        reps = []
        for i in range(size.reps):
            district = districts[i % len(districts)]
            reps.append(
                Person(
                    f"{tag}-r{i + 1:03d}",
                    self.person_name(rng),
                    "rep",
                    district_id=district.district_id,
                    area_id=district.area_id,
                    supervisor_id=district.supervisor_id,
                )
            )
        staff = [*area_managers, *supervisors, *reps]
        skus, area_prices = self.catalogue(areas)
        required = self.required_skus(skus)
        customers = self.customers(districts, reps, skus, dict(required))
        routes = self.routes(reps, customers)
        return Organisation(
            seed=self.seed,
            tag=tag,
            size=size,
            divisions=divisions,
            areas=tuple(areas),
            districts=tuple(districts),
            staff=tuple(staff),
            sales_manager=Person(f"{tag}-sm", self.person_name(rng), "sales_manager"),
            general_manager=Person(f"{tag}-gm", self.person_name(rng), "general_manager"),
            inspector=Person(f"{tag}-qc", self.person_name(rng), "inspector"),
            clerk=Person(f"{tag}-clerk", self.person_name(rng), "clerk"),
            planner=Person(f"{tag}-planner", "day planning", "system"),
            logistics=Person(f"{tag}-logistics", "warehouse and delivery", "system"),
            call_centre=Person(f"{tag}-callcentre", "call centre", "system"),
            survey_desk=Person(f"{tag}-surveys", "satisfaction surveys", "system"),
            erp=Person(f"{tag}-erp", "order history", "system"),
            customers=tuple(customers),
            skus=tuple(skus),
            area_prices=tuple(area_prices),
            required_skus=required,
            routes=tuple(routes),
            promotions=(),
            targets=(),
            decompositions=(),
        )

    def catalogue(self, areas: Sequence[Area]) -> tuple[list[Sku], list[AreaPrice]]:
        rng = self.rng("catalogue")
        by_group: list[list[Sku]] = []
        for group, code, brand, base, flavours in _PRODUCT_LINES:
            line = []
            # Packages first, so the small catalogue of a scaled-down run still has every group's cans.
            for package, pcode, factor in _PACKAGES:
                for n, flavour in enumerate(flavours):
                    list_price = int(round(base * factor * rng.uniform(0.9, 1.1), -1))
                    line.append(
                        Sku(
                            f"{self.tag}-{code}{n + 1}-{pcode}",
                            f"{brand}{flavour} {package}",
                            brand,
                            group,
                            package,
                            list_price,
                            int(round(list_price * 0.85, -1)),
                        )
                    )
            by_group.append(line)
        skus: list[Sku] = []
        while len(skus) < self.size.skus and any(by_group):
            for line in by_group:
                if line and len(skus) < self.size.skus:
                    skus.append(line.pop(0))
        area_prices = []
        for sku in skus:
            for area in areas:
                if rng.random() < 0.12:
                    list_price = int(round(sku.list_price_fen * rng.uniform(0.96, 1.08), -1))
                    area_prices.append(AreaPrice(sku.sku, area.area_id, list_price, int(round(list_price * 0.85, -1))))
        return skus, area_prices

    def required_skus(self, skus: Sequence[Sku]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The required SKUs (必备SKU) of a channel: the cans and bottles of each group for the
        shops, the multipacks for the trade channels."""
        rng = self.rng("required")
        out = []
        for channel in CHANNELS:
            wanted = ("6x330ml组", "1.5L瓶") if channel in ("wholesale", "agent") else ("330ml罐", "500ml瓶")
            pool = [s.sku for s in skus if s.package in wanted] or [s.sku for s in skus]
            count = min(len(pool), rng.randint(4, 6))
            out.append((channel, tuple(sorted(rng.sample(pool, count)))))
        return tuple(out)

    def customers(
        self,
        districts: Sequence[District],
        reps: Sequence[Person],
        skus: Sequence[Sku],
        required: dict[str, tuple[str, ...]],
    ) -> list[Customer]:
        rng = self.rng("customers")
        district_by_id = {d.district_id: d for d in districts}
        out = []
        n = 0
        for rep in reps:
            district = district_by_id[rep.district_id or ""]
            for _ in range(self.size.customers_per_rep):
                # The first customers cycle through every channel and grade so even a tiny
                # department has them all; after that the mix is a city's.
                channel = (
                    CHANNELS[n % len(CHANNELS)]
                    if n < len(CHANNELS)
                    else rng.choices(CHANNELS, weights=(14, 38, 9, 10, 12, 17))[0]
                )
                grade = GRADES[n % 3] if n < 6 else self._grade(rng, channel)
                out.append(self.customer(rng, n, rep, district, channel, grade, skus, required))
                n += 1
        return out

    @staticmethod
    def _grade(rng: random.Random, channel: str) -> str:
        weights = {"wholesale": (35, 45, 20), "agent": (30, 45, 25), "chain": (25, 50, 25)}.get(channel, (5, 33, 62))
        return rng.choices(GRADES, weights=weights)[0]

    def customer(
        self,
        rng: random.Random,
        n: int,
        rep: Person,
        district: District,
        channel: str,
        grade: str,
        skus: Sequence[Sku],
        required: dict[str, tuple[str, ...]],
    ) -> Customer:
        nature = {
            "wholesale": ("trading_partner", "company"),
            "agent": ("trading_partner", "company"),
            "chain": ("key_company", "company"),
            "franchise": ("company", "individual"),
        }.get(channel, ("individual", "company"))[0 if rng.random() < 0.6 else 1]
        if n == 6 or (channel == "retail" and rng.random() < 0.02):
            nature = "government"  # a canteen of an office: rare, but the archive knows the kind
        ownership = "state" if nature == "government" else rng.choices(OWNERSHIPS, weights=(3, 5, 75, 12, 5))[0]
        owner = self.person_name(rng)
        street = rng.choice(_STREETS)
        kind = rng.choice(_OUTLET_KINDS[channel])
        name = f"{owner}{kind}" if nature == "individual" else f"{street}{kind}"
        if nature == "government":
            name = f"{street}机关食堂"
        status = "active"
        rejection = None
        roll = rng.random()
        if roll < 0.02 and n >= 6:
            status, rejection = "rejected", rng.choice(("与已有客户重复（同一店主）", "店面已停业", "不在本小区范围"))
        elif roll < 0.16 and n >= 6:
            status, grade = "prospect", "C"
        source = rng.choices(("rep_visit", "customer_form", "survey"), weights=(80, 15, 5))[0]
        credit = None
        if status == "active":
            if grade == "A":
                credit = Credit(rng.choice(("AAA", "AA")), rng.randrange(5_000_000, 20_000_001, 100_000), 30)
            elif grade == "B":
                credit = Credit(rng.choice(("AA", "A")), rng.randrange(1_000_000, 3_000_001, 100_000), 15)
            elif rng.random() < 0.4:
                credit = Credit(rng.choice(("B", "C")), rng.randrange(200_000, 500_001, 50_000), 7)
            if credit is not None and rng.random() < 0.05:
                credit = Credit("C", 100_000, credit.terms_days)  # a tight limit: its orders go to the sales manager
        coolers: tuple[str, ...] = ()
        if channel in ("retail", "specialty", "chain", "franchise") and rng.random() < 0.45:
            coolers = tuple(f"{self.tag}-cooler-{n:05d}-{k}" for k in range(2 if channel == "chain" else 1))
        basket = list(required.get(channel, ()))
        others = [s.sku for s in skus if s.sku not in basket]
        basket += rng.sample(others, min(len(others), rng.randint(2, 4)))
        return Customer(
            customer_id=self.uid("customer", n),
            name=name,
            address=f"{district.name.removesuffix('小区')}{street}{rng.randint(1, 999)}号",
            phone=f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
            owner_name=owner,
            rep_id=rep.staff_id,
            district_id=district.district_id,
            area_id=district.area_id,
            division_id=district.division_id,
            nature=nature,
            ownership=ownership,
            channel=channel,
            location_type=rng.choices(LOCATION_TYPES, weights=(25, 10, 45, 20))[0],
            source=source,
            grade=grade,
            status=status,
            rejection_reason=rejection,
            credit=credit,
            coolers=coolers,
            latitude=round(district.latitude + rng.uniform(-0.02, 0.02), 5),
            longitude=round(district.longitude + rng.uniform(-0.02, 0.02), 5),
            basket=tuple(basket),
        )

    def routes(self, reps: Sequence[Person], customers: Sequence[Customer]) -> list[Route]:
        by_rep: dict[str, list[Customer]] = defaultdict(list)
        for c in customers:
            if c.approved:
                by_rep[c.rep_id].append(c)
        out = []
        for rep in reps:
            # Walking order: by position, so a day's route is a loop through one part of the district.
            mine = sorted(by_rep[rep.staff_id], key=lambda c: (c.latitude, c.longitude, c.customer_id))
            per_route = math.ceil(len(mine) / len(ROUTE_WEEKDAYS)) or 1
            for k, weekdays in enumerate(ROUTE_WEEKDAYS):
                chunk = mine[k * per_route : (k + 1) * per_route]
                if chunk:
                    name = f"线路{k + 1} " + "/".join(WEEKDAY_NAMES[w] for w in weekdays)
                    out.append(
                        Route(
                            f"{rep.staff_id}-rt{k + 1}",
                            rep.staff_id,
                            name,
                            weekdays,
                            tuple(c.customer_id for c in chunk),
                        )
                    )
        return out

    # -- the days -------------------------------------------------------------------------------

    def order_lines(self, rng: random.Random, org: Organisation, customer: Customer) -> tuple[Line, ...]:
        count = min(len(customer.basket), rng.randint(2, 5))
        chosen = sorted(rng.sample(customer.basket, count))
        lines = []
        for sku in chosen:
            units = _BASE_QUANTITY[customer.channel] * _GRADE_FACTOR[customer.grade] * rng.uniform(0.5, 1.5)
            multipack = org.sku_by_code[sku].package.startswith("6x")
            quantity = max(1, round(units / 6)) * (1 if multipack else 6)
            lines.append(Line(sku, quantity, org.price(sku, customer.area_id)))
        return tuple(lines)

    def visits_and_orders(self, org: Organisation) -> tuple[list[Visit], list[Order]]:
        rng = self.rng("visits")
        routes_by_rep: dict[str, list[Route]] = defaultdict(list)
        for r in org.routes:
            routes_by_rep[r.rep_id].append(r)
        visits: list[Visit] = []
        orders: list[Order] = []
        last_order: dict[str, Order] = {}
        delivered_by = self._delivery_times
        for day in self.dates:
            weekday = day.isoweekday()
            visited_today: set[str] = set()
            for rep in org.reps:
                seen: set[str] = set()
                stops = []
                for route in sorted(routes_by_rep[rep.staff_id], key=lambda r: (r.name, r.route_id)):
                    if weekday in route.weekdays:
                        for cid in route.customer_ids:
                            if cid not in seen:
                                seen.add(cid)
                                stops.append((route.route_id, cid))
                clock = self.at(day, 8, 30) + timedelta(minutes=rng.randint(0, 20))
                for sequence, (route_id, cid) in enumerate(stops, 1):
                    customer = org.customer_by_id[cid]
                    visited_today.add(cid)
                    visit = self.visit(rng, org, customer, day, clock, route_id, sequence, last_order, delivered_by)
                    visits.append(visit)
                    if visit.order_key is not None:
                        order = Order(
                            visit.order_key,
                            day,
                            clock + timedelta(minutes=25),
                            cid,
                            rep.staff_id,
                            "visit",
                            visit.key,
                            self.order_lines(rng, org, customer),
                            "reject" if rng.random() < 0.08 else "approve",
                        )
                        orders.append(order)
                        self._plan_delivery(rng, order, delivered_by)
                        last_order[cid] = order
                    clock += timedelta(minutes=rng.randint(30, 50))
            # Phone orders: the trade customers not on today's route call in.
            phone_rng = self.rng(f"phone:{day.isoformat()}")
            for customer in org.customers:
                if (
                    customer.status == "active"
                    and customer.channel in ("wholesale", "agent", "chain")
                    and customer.customer_id not in visited_today
                    and phone_rng.random() < 0.03
                ):
                    placed = self.at(day, phone_rng.randint(9, 16), phone_rng.randint(0, 59))
                    key = f"{self.tag}-ph-{day:%Y%m%d}-{customer.customer_id}"
                    order = Order(
                        key,
                        day,
                        placed,
                        customer.customer_id,
                        customer.rep_id,
                        "phone",
                        None,
                        self.order_lines(phone_rng, org, customer),
                        "reject" if phone_rng.random() < 0.08 else "approve",
                        self.uid("order", key),
                    )
                    orders.append(order)
                    self._plan_delivery(phone_rng, order, delivered_by)
                    if customer.customer_id not in last_order or last_order[customer.customer_id].placed_at < placed:
                        last_order[customer.customer_id] = order
        # The approvers have not got to every order of today yet: some wait in their queues.
        waiting = self.rng("waiting orders")
        orders = [
            replace(o, if_approval="wait")
            if o.day == self.end and o.if_approval == "approve" and waiting.random() < 0.25
            else o
            for o in orders
        ]
        return visits, orders

    def visit(
        self,
        rng: random.Random,
        org: Organisation,
        customer: Customer,
        day: date,
        at: datetime,
        route_id: str,
        sequence: int,
        last_order: dict[str, Order],
        delivered_by: dict[str, datetime | None],
    ) -> Visit:
        key = f"{self.tag}-v-{day:%Y%m%d}-{customer.customer_id}"
        roll = rng.random()
        if customer.grade == "A" and rng.random() < 0.05:
            outcome = "cancelled"
        elif roll < 0.04:
            outcome = "missed"
        else:
            p_order = 0.3 if customer.status == "prospect" else {"A": 0.9, "B": 0.8, "C": 0.65}[customer.grade]
            outcome = "order" if rng.random() < p_order else "refused"
        required = dict(org.required_skus).get(customer.channel, ())
        stock = []
        for sku in customer.basket:
            usual = _BASE_QUANTITY[customer.channel] * _GRADE_FACTOR[customer.grade]
            empty_shelf = sku in required and rng.random() < 0.08
            shelf = 0 if empty_shelf else rng.randint(0, max(1, round(usual * 0.6)))
            stock.append(StockCount(sku, shelf, rng.randint(0, max(1, round(usual * 0.4)))))
        present = tuple(sorted(s.sku for s in stock if s.shelf_qty > 0))
        coolers = tuple(
            CoolerCheck(
                cid,
                at_outlet=rng.random() < 0.98,
                best_position=rng.random() < 0.85,
                powered=rng.random() < 0.97,
                light_on=rng.random() < 0.92,
                clean=rng.random() < 0.88,
                working=rng.random() < 0.97,
                required_packs=rng.random() < 0.85,
                misused=rng.random() < 0.03,
            )
            for cid in customer.coolers
        )
        competitor = None
        if rng.random() < 0.3:
            brand, product = rng.choice(_COMPETITORS)
            competitor = CompetitorSeen(
                brand,
                product,
                rng.randrange(200, 700, 10),
                rng.choice((None, None, "买二送一", "第二件半价", "满50减5")),
                rng.randint(5, 120),
            )
        previous = last_order.get(customer.customer_id)
        previous_delivered = None
        if previous is not None:
            delivered_at = delivered_by.get(previous.key)
            previous_delivered = delivered_at is not None and delivered_at <= at
        return Visit(
            key=key,
            day=day,
            at=at,
            rep_id=customer.rep_id,
            customer_id=customer.customer_id,
            route_id=route_id,
            sequence=sequence,
            outcome=outcome,
            stock=tuple(stock),
            present_skus=present,
            price_tags_ok=rng.random() < 0.9,
            display_ok=rng.random() < 0.85,
            coolers=coolers,
            competitor=competitor,
            order_key=f"{key}-o" if outcome == "order" else None,
            adopt_suggestion=rng.random() < 0.7,
            refusal_reason=rng.choice(_REFUSALS) if outcome == "refused" else None,
            previous_delivered=previous_delivered,
            check_in=self.check_in_position(key, org, customer),
            photo=customer.channel in STANDARD_PICTURES and self.rng(f"photo-{key}").random() < 0.35,
        )

    def check_in_position(self, key: str, org: Organisation, customer: Customer) -> tuple[float, float, float]:
        """Most check-ins are made at the outlet (within 80 m); about one in twenty a few
        hundred metres away (the rep did not go in); about one in a hundred at the district
        office's coordinates (a faked location: it repeats across outlets)."""
        rng = self.rng(f"position-{key}")
        roll = rng.random()
        if roll < 0.01:
            district = org.district_by_id[customer.district_id]
            return district.latitude, district.longitude, 5.0
        metres = rng.uniform(300, 900) if roll < 0.06 else rng.uniform(0, 80)
        bearing = rng.uniform(0, 2 * math.pi)
        latitude = customer.latitude + metres * math.cos(bearing) / 111_195
        longitude = customer.longitude + metres * math.sin(bearing) / (
            111_195 * math.cos(math.radians(customer.latitude))
        )
        return round(latitude, 6), round(longitude, 6), round(rng.uniform(5, 35), 1)

    def _plan_delivery(self, rng: random.Random, order: Order, delivered_by: dict[str, datetime | None]) -> None:
        roll = rng.random()
        if roll < 0.05:
            at = order.placed_at + timedelta(hours=rng.uniform(25, 54))  # late: past the 24 hours
        elif roll < 0.985:
            at = order.placed_at + timedelta(hours=rng.uniform(2, 22))
        else:
            at = None  # stuck in the warehouse
        if at is not None:
            at = at.replace(second=0, microsecond=0)
            if at.astimezone(TZ).date() > self.end:
                at = None
        delivered_by[order.key] = at

    def deliveries(self, org: Organisation, orders: Sequence[Order]) -> list[Delivery]:
        out = []
        for order in orders:
            at = self._delivery_times.get(order.key)
            if at is None:
                continue
            customer = org.customer_by_id[order.customer_id]
            out.append(
                Delivery(
                    f"{order.key}-d",
                    at.astimezone(TZ).date(),
                    order.key,
                    order.customer_id,
                    at,
                    at > order.placed_at + timedelta(hours=24),
                    customer.payment_terms_days,
                )
            )
        self._ensure_late_delivery(out, orders)
        self._unpaid = self._ensure_overdue(out)
        return out

    def _ensure_late_delivery(self, deliveries: list[Delivery], orders: Sequence[Order]) -> None:
        """A short window may draw no late delivery; make the first order that can be one late."""
        if any(d.late for d in deliveries):
            return
        for i, d in enumerate(deliveries):
            order = next(o for o in orders if o.key == d.order_key)
            late_at = order.placed_at + timedelta(hours=25)
            if late_at.astimezone(TZ).date() <= self.end:
                deliveries[i] = Delivery(
                    d.key,
                    late_at.astimezone(TZ).date(),
                    d.order_key,
                    d.customer_id,
                    late_at,
                    True,
                    d.payment_terms_days,
                )
                self._delivery_times[d.order_key] = late_at
                return

    def payments(self, orders: Sequence[Order], deliveries: Sequence[Delivery]) -> list[Payment]:
        rng = self.rng("payments")
        amount = {o.key: o.amount_fen for o in orders}
        grouped: dict[tuple[str, date], list[tuple[str, int, bool]]] = defaultdict(list)
        forced_unpaid = self._unpaid
        for d in deliveries:
            issued = d.delivered_at.astimezone(TZ).date()
            due = issued + timedelta(days=d.payment_terms_days)
            roll = rng.random()
            if d.key == forced_unpaid or roll < 0.04:
                continue  # never paid: overdue once its due date passes
            if roll < 0.14:
                received = due + timedelta(days=rng.randint(2, 20))
            else:
                received = issued + timedelta(days=rng.randint(0, d.payment_terms_days))
            if received <= self.end:
                grouped[(d.customer_id, received)].append((d.order_key, amount[d.order_key], received > due))
        out = []
        for (customer_id, received), allocations in sorted(grouped.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            out.append(
                Payment(
                    f"{self.tag}-p-{received:%Y%m%d}-{customer_id}",
                    received,
                    customer_id,
                    sum(a for _, a, _ in allocations),
                    tuple((k, a) for k, a, _ in allocations),
                    any(late for _, _, late in allocations),
                )
            )
        return out

    def _ensure_overdue(self, deliveries: list[Delivery]) -> str | None:
        """One invoice left unpaid past its due date, so even a short window has overdue debt;
        when every customer of the window has longer terms, that one order was agreed cash on
        delivery (the import takes the terms per delivery)."""
        for d in deliveries:
            if d.delivered_at.astimezone(TZ).date() + timedelta(days=d.payment_terms_days) < self.end:
                return d.key
        for i, d in enumerate(deliveries):
            if d.day < self.end:
                deliveries[i] = Delivery(d.key, d.day, d.order_key, d.customer_id, d.delivered_at, d.late, 0)
                return d.key
        return None

    def returns(self, org: Organisation, orders: Sequence[Order], deliveries: Sequence[Delivery]) -> list[Return]:
        rng = self.rng("returns")
        order_by_key = {o.key: o for o in orders}
        eligible = [d for d in deliveries if d.day < self.end]
        out: list[Return] = []
        for d in eligible:
            if rng.random() < 0.03:
                day = min(self.end, d.day + timedelta(days=rng.randint(1, 6)))
                reason = rng.choices(RETURN_REASONS, weights=(35, 20, 20, 25))[0]
                out.append(self._return(rng, org, order_by_key[d.order_key], d, day, reason, len(out)))
        # Some of today's returns wait for the approver's decision.
        waiting = self.rng("waiting returns")
        out = [replace(r, decision="wait") if r.day == self.end and waiting.random() < 0.3 else r for r in out]
        # Every reason at least once: the return procedure has four paths and the demo shows them all.
        seen = {r.reason for r in out}
        used = {r.order_key for r in out}
        spare = [d for d in eligible if d.order_key not in used]
        for reason in RETURN_REASONS:
            if reason not in seen and spare:
                d = spare.pop(rng.randrange(len(spare)))
                out.append(
                    self._return(rng, org, order_by_key[d.order_key], d, self.end, reason, len(out), decision="approve")
                )
        return sorted(out, key=lambda r: (r.day, r.key))

    def _return(
        self,
        rng: random.Random,
        org: Organisation,
        order: Order,
        delivery: Delivery,
        day: date,
        reason: str,
        n: int,
        decision: str | None = None,
    ) -> Return:
        whole = rng.random() < 0.2
        lines = None
        if not whole:
            picked = rng.sample(list(order.lines), min(len(order.lines), rng.randint(1, 2)))
            lines = tuple(sorted((line.sku, max(1, int(line.quantity * rng.uniform(0.1, 0.5)))) for line in picked))
        inspected = reason in ("quality_defect", "selection_error")
        confirmed = rng.random() < 0.8 or decision == "approve"
        if decision is None:
            decision = "approve" if (confirmed or not inspected) and rng.random() < 0.88 else "reject"
        resolution = {
            "quality_defect": rng.choice(("exchange", "refund")),
            "wrong_shipment": "exchange",
            "selection_error": rng.choice(("exchange", "credit_note")),
            "transit_damage": rng.choice(("compensation", "refund")),
        }[reason]
        detail = {
            "quality_defect": "开箱发现部分产品胀罐、漏液",
            "wrong_shipment": "订的是500ml瓶装，送来的是330ml罐装",
            "selection_error": "店主订错了口味，要求调换",
            "transit_damage": "运输途中纸箱被压坏",
        }[reason]
        return Return(
            key=f"{self.tag}-rt-{day:%Y%m%d}-{n:04d}",
            day=day,
            order_key=order.key,
            customer_id=order.customer_id,
            scope="whole_batch" if whole else "part",
            reason=reason,
            lines=lines,
            wrong_shipment_kind=rng.choice(("model", "grade", "quantity")) if reason == "wrong_shipment" else None,
            detail=detail,
            inspection_confirmed=confirmed,
            decision=decision,
            rejection_reason="复检未发现质量问题" if inspected and not confirmed else "不符合退货条件：超过退货期限",
            resolution=resolution,
            goods_received=rng.random() < 0.85,
        )

    def complaints(self, org: Organisation) -> list[Complaint]:
        rng = self.rng("complaints")
        approved = [c for c in org.customers if c.approved]
        expected = len(approved) * 0.0012
        out: list[Complaint] = []
        for day in self.dates:
            count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
            for _ in range(count):
                out.append(self._complaint(rng, rng.choice(approved), day, None, len(out)))
        seen = {c.category for c in out}
        for category in COMPLAINT_CATEGORIES:
            if category not in seen and approved:
                out.append(self._complaint(rng, rng.choice(approved), self.end, category, len(out)))
        return sorted(out, key=lambda c: (c.day, c.key))

    def _complaint(self, rng: random.Random, customer: Customer, day: date, category: str | None, n: int) -> Complaint:
        category = category or rng.choices(COMPLAINT_CATEGORIES, weights=(35, 15, 25, 25))[0]
        stage = rng.choices(COMPLAINT_STAGES, weights=(7, 11, 12, 12, 58))[0]
        return Complaint(
            key=f"{self.tag}-cp-{day:%Y%m%d}-{n:04d}",
            day=day,
            received_at=self.at(day, rng.randint(8, 17), rng.randint(0, 59)),
            customer_id=customer.customer_id,
            channel=rng.choices(
                ("phone", "visit", "letter", "email", "web", "in_person"), weights=(50, 20, 5, 10, 10, 5)
            )[0],
            category=category,
            severity=rng.choices(("low", "medium", "high", "critical"), weights=(40, 40, 15, 5))[0],
            description=rng.choice(_COMPLAINTS[category]),
            stage=stage,
            resolution=_RESOLUTIONS[category],
            customer_misuse=category in ("quality", "technical") and rng.random() < 0.15,
        )

    def surveys(self, org: Organisation) -> list[Survey]:
        rng = self.rng("surveys")
        out = []
        for c in org.customers:
            if c.status == "active" and rng.random() < 0.25:
                day = rng.choice(self.dates)
                scores = tuple((q, rng.choices((2, 3, 4, 5), weights=(3, 12, 45, 40))[0]) for q in _SURVEY_QUESTIONS)
                mean = sum(s for _, s in scores) / len(scores)
                out.append(Survey(f"{self.tag}-sv-{c.customer_id}", day, c.customer_id, scores, mean >= 3.5))
        return out

    def key_account_reports(self, org: Organisation) -> list[KeyAccountReport]:
        rng = self.rng("key_accounts")
        out = []
        for c in org.customers:
            if c.grade == "A" and c.status == "active" and rng.random() < 0.5:
                issues = tuple(
                    (
                        dept,
                        {"quality": "希望改进包装强度", "delivery": "希望固定上午送货", "service": "希望增加陈列支持"}[
                            dept
                        ],
                    )
                    for dept in sorted(rng.sample(("quality", "delivery", "service"), rng.randint(0, 2)))
                )
                out.append(
                    KeyAccountReport(
                        f"{self.tag}-ka-{c.customer_id}",
                        rng.choice(self.dates),
                        c.customer_id,
                        c.rep_id,
                        f"{c.name}年度走访：销售稳定，合作意愿强",
                        issues,
                    )
                )
        return out

    def coachings(self, org: Organisation) -> list[Coaching]:
        rng = self.rng("coaching")
        team: dict[str, list[Person]] = defaultdict(list)
        for rep in org.reps:
            team[rep.supervisor_id or ""].append(rep)
        out = []
        for supervisor in org.supervisors:
            for week_start in range(0, len(self.dates), 7):
                week = self.dates[week_start : week_start + 7]
                for day in sorted(rng.sample(week, min(len(week), rng.randint(1, 2)))):
                    rep = rng.choice(team[supervisor.staff_id])
                    out.append(
                        Coaching(
                            f"{self.tag}-co-{day:%Y%m%d}-{supervisor.staff_id}",
                            day,
                            supervisor.staff_id,
                            rep.staff_id,
                            f"跟线{rep.name}一天，走完当天线路",
                            tuple(rng.sample(_COACHING_STRENGTHS, 2)),
                            tuple(rng.sample(_COACHING_IMPROVEMENTS, 1)),
                        )
                    )
        return out

    def spot_checks(self, org: Organisation, deliveries: Sequence[Delivery]) -> list[SpotCheck]:
        rng = self.rng("spot_checks")
        by_district: dict[str, list[Delivery]] = defaultdict(list)
        for d in deliveries:
            by_district[org.customer_by_id[d.customer_id].district_id].append(d)
        out = []
        for supervisor in org.supervisors:
            for week_start in range(0, len(self.dates), 7):
                day = rng.choice(self.dates[week_start : week_start + 7])
                done = [d for d in by_district[supervisor.district_id or ""] if d.day < day]
                for d in rng.sample(done, min(len(done), 2)):
                    out.append(
                        SpotCheck(
                            f"{self.tag}-sc-{day:%Y%m%d}-{d.order_key}",
                            day,
                            supervisor.staff_id,
                            d.order_key,
                            d.customer_id,
                            True,
                            not d.late,
                            rng.random() < 0.95,
                            "抽查送货：与店主核对签收单",
                        )
                    )
        return out

    def contacts(self, org: Organisation) -> list[Contact]:
        rng = self.rng("contacts")
        out = []
        for c in org.customers:
            if c.status != "prospect":
                continue
            day = self.start + timedelta(days=rng.randint(0, 4))
            while day <= self.end:
                channel = rng.choice(("phone", "wechat", "meeting", "message"))
                out.append(
                    Contact(
                        f"{self.tag}-ct-{day:%Y%m%d}-{c.customer_id}",
                        day,
                        c.customer_id,
                        c.rep_id,
                        channel,
                        "跟进潜在客户：介绍新品与进货政策",
                    )
                )
                day += timedelta(days=rng.randint(4, 6))
        return out

    def status_changes(self, org: Organisation, orders: Sequence[Order]) -> list[StatusChange]:
        rng = self.rng("status")
        if len(self.dates) < 14:
            return []  # a customer is dormant after weeks without an order, not days
        buying = {o.customer_id for o in orders}
        idle = [c for c in org.customers if c.status == "active" and c.customer_id not in buying]
        out = []
        for c in idle:
            if rng.random() < 0.5:
                out.append(
                    StatusChange(
                        f"{self.tag}-st-{c.customer_id}",
                        self.end,
                        c.customer_id,
                        "dormant",
                        f"{len(self.dates)}天内没有订货",
                    )
                )
        return out

    def promotions(self, org: Organisation, orders: Sequence[Order]) -> tuple[Promotion, ...]:
        rng = self.rng("promotions")
        window_sales = sum(o.amount_fen for o in orders) or 1_000_000
        cans = [s.sku for s in org.skus if s.product_group == "carbonated"][:2]
        water = [s.sku for s in org.skus if s.product_group == "water"][:1]
        tea = [s.sku for s in org.skus if s.product_group == "tea"][:2]
        out = [
            Promotion(
                f"{self.tag}-promo-1",
                "冰爽可乐夏季九折",
                self.start,
                self.end + timedelta(days=14),
                tuple(cans),
                ("retail", "specialty", "chain"),
                10,
                None,
                None,
                max(100_000, int(round(window_sales * 0.004, -3))),
            ),
        ]
        if water:
            out.append(
                Promotion(
                    f"{self.tag}-promo-2",
                    "清泉水买十二送一",
                    self.start,
                    self.end + timedelta(days=30),
                    tuple(water),
                    ("wholesale", "agent"),
                    None,
                    12,
                    1,
                    max(50_000, int(round(window_sales * 0.002, -3))),
                )
            )
        if tea and len(self.dates) >= 4:
            middle = self.start + timedelta(days=len(self.dates) // 2 - 1)
            out.append(
                Promotion(
                    f"{self.tag}-promo-3",
                    "茗香茶饮开学季",
                    self.start,
                    middle,
                    tuple(tea),
                    (),
                    5,
                    None,
                    None,
                    max(50_000, int(round(window_sales * 0.001 * rng.uniform(0.8, 1.2), -3))),
                )
            )
        return tuple(out)

    def targets(
        self,
        org: Organisation,
        orders: Sequence[Order],
    ) -> tuple[tuple[Target, ...], tuple[Decomposition, ...]]:
        """Monthly targets (销售指标) for every month the window touches: each area's from its daily
        run rate plus growth, its carbonated-drinks share, split over districts and reps by the
        number of customers they look after."""
        by_area: dict[str, int] = defaultdict(int)
        for o in orders:
            by_area[org.customer_by_id[o.customer_id].area_id] += o.amount_fen
        months = sorted({d.strftime("%Y-%m") for d in self.dates})
        customers_of: dict[str, int] = defaultdict(int)
        for c in org.customers:
            if c.approved:
                customers_of[c.district_id] += 1
                customers_of[c.rep_id] += 1
        targets, splits = [], []
        for month in months:
            year, mon = map(int, month.split("-"))
            days_in_month = (date(year + mon // 12, mon % 12 + 1, 1) - date(year, mon, 1)).days
            for area in org.areas:
                daily = by_area[area.area_id] / len(self.dates)
                amount = max(1_000_000, int(round(daily * days_in_month * 1.08, -4)))
                targets.append(Target(month, "area", area.area_id, None, amount))
                targets.append(Target(month, "area", area.area_id, "carbonated", int(round(amount * 0.4, -4))))
                districts = [d for d in org.districts if d.area_id == area.area_id]
                weights = tuple((d.district_id, max(1, customers_of[d.district_id])) for d in districts)
                splits.append(Decomposition(month, "area", area.area_id, "district", weights, area.manager_id))
                for d in districts:
                    reps = [r for r in org.reps if r.district_id == d.district_id]
                    splits.append(
                        Decomposition(
                            month,
                            "district",
                            d.district_id,
                            "rep",
                            tuple((r.staff_id, max(1, customers_of[r.staff_id])) for r in reps),
                            area.manager_id,
                        )
                    )
        return tuple(targets), tuple(splits)

    # -- all of it ------------------------------------------------------------------------------

    def build(self) -> Plan:
        org = self.organisation()
        visits, orders = self.visits_and_orders(org)
        deliveries = self.deliveries(org, orders)
        payments = self.payments(orders, deliveries)
        returns = self.returns(org, orders, deliveries)
        targets, splits = self.targets(org, orders)
        office = sales_office(self.seed, self.tag, self.scale, org.areas[0].area_id, self.person_name)
        org = _replace(
            org, promotions=self.promotions(org, orders), targets=targets, decompositions=splits, office=office
        )
        per_day: dict[date, dict[str, list[Any]]] = {d: defaultdict(list) for d in self.dates}
        for kind, items in (
            ("visits", visits),
            ("orders", orders),
            ("deliveries", deliveries),
            ("payments", payments),
            ("returns", returns),
            ("complaints", self.complaints(org)),
            ("surveys", self.surveys(org)),
            ("key_account_reports", self.key_account_reports(org)),
            ("coachings", self.coachings(org)),
            ("spot_checks", self.spot_checks(org, deliveries)),
            ("contacts", self.contacts(org)),
            ("status_changes", self.status_changes(org, orders)),
        ):
            for item in items:
                per_day[item.day][kind].append(item)
        days = tuple(Day(d, **{k: tuple(sorted(v, key=_when)) for k, v in per_day[d].items()}) for d in self.dates)
        return Plan(self.seed, self.scale, org, days, opening_day(self.seed, self.tag, self.scale, self.end, office))


def _when(action: Any) -> tuple[Any, ...]:
    for name in ("at", "placed_at", "delivered_at", "received_at"):
        if hasattr(action, name):
            return (getattr(action, name), action.key)
    return (action.key,)


def _replace(org: Organisation, **changes: Any) -> Organisation:
    values = {f.name: getattr(org, f.name) for f in fields(org)}
    values.update(changes)
    return Organisation(**values)


def build_plan(seed: int = 7, *, scale: float = 1.0, days: int = 30, end: date) -> Plan:
    """The department of size `Size.scaled(scale)` living through `days` business days up to and
    including `end`."""
    return _Builder(seed, scale, days, end).build()


__all__ = [
    "CHANNELS",
    "COMPLAINT_CATEGORIES",
    "GRADES",
    "RETURN_REASONS",
    "TIMEZONE",
    "TZ",
    "Area",
    "AreaPrice",
    "Coaching",
    "CompetitorSeen",
    "Complaint",
    "Contact",
    "CoolerCheck",
    "Credit",
    "Customer",
    "Day",
    "Decomposition",
    "Delivery",
    "District",
    "Division",
    "KeyAccountReport",
    "Line",
    "Order",
    "Organisation",
    "Payment",
    "Person",
    "Plan",
    "Promotion",
    "Return",
    "Route",
    "Size",
    "Sku",
    "SpotCheck",
    "StatusChange",
    "StockCount",
    "Survey",
    "Target",
    "Visit",
    "build_plan",
]
