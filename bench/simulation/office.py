"""The simulated department's sales office (案场): a property project of a few hundred units and
its opening day, as a plan (nothing sent).

`sales_office(...)` gives the office (its own district with a supervisor and reps, the units in
buildings with layouts and a price list per release, who takes deposits) and `opening_day(...)`
the day's script in time order: reps signing in, walk-ins and phone enquiries through the
rotation (returning customers, duty receptions while a rep is busy or away, a family member, a
referral), deposits (some partial, one race of two customers for one unit), subscriptions (some
left for the sales manager to sign, one sent back), contracts, mortgages, a handover of a
completed building, a released reservation, the day's sales-control checks, close-outs and
weekly claims. Pure and deterministic: the same seed gives the same office and day.

A walk-in keeps a rep busy until it leaves; the script never has more walk-ins in the office at
once than reps less one, so a returning customer always finds a free rep (their own, or one on
duty). Who receives whom is the service's to decide; steps that depend on it name a visitor
("the rep serving this visitor") and the driver reads the answer.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from salesplatform.events import Actor, Role

TZ = ZoneInfo("Asia/Shanghai")
NAMESPACE = uuid.UUID("8f3c2a71-5b9e-4d60-a1c7-2e8b4f6d9a13")
SOURCE_CHANNELS = ("网络", "户外广告", "朋友介绍", "路过", "报纸", "短信", "电视")
FUNDS = ("own_funds", "own_funds", "family_funds", "loan", "company_funds")
METHODS = ("card", "transfer", "transfer", "cash", "cheque")
BANKS = ("工商银行", "建设银行", "招商银行", "农业银行")
# Layouts (户型): name, rooms, halls, bathrooms, area range, position.
LAYOUTS = {
    "A": (3, 2, 2, (126.0, 136.0), "边套"),
    "B": (2, 2, 1, (86.0, 93.0), "中间套"),
    "C": (4, 2, 2, (158.0, 172.0), "楼王"),
}
DEPOSIT_FEN = 5_000_000  # 50,000 yuan: the office's deposit


@dataclass(frozen=True)
class OfficePerson:
    staff_id: str
    name: str
    role: str
    district_id: str | None = None
    area_id: str | None = None
    supervisor_id: str | None = None

    def actor(self) -> Actor:
        return Actor(id=self.staff_id, role=Role(self.role), district=self.district_id, area=self.area_id)


@dataclass(frozen=True)
class OfficeUnit:
    unit_id: str
    building: str
    unit_no: str
    floor: int
    layout_name: str
    rooms: int
    halls: int
    bathrooms: int
    area_sqm: str
    orientation: str
    position: str
    release: str | None  # None: in no price list yet
    unit_price_fen: int
    total_price_fen: int


@dataclass(frozen=True)
class SalesOffice:
    project_id: str
    name: str
    district_id: str
    district_name: str
    area_id: str
    supervisor: OfficePerson
    reps: tuple[OfficePerson, ...]
    front_desk: OfficePerson  # the receptionist (a clerk) who registers arrivals and calls
    finance: OfficePerson  # the finance system that takes deposits too
    deposit_taker: str  # the rep the sales manager names to take deposits
    units: tuple[OfficeUnit, ...]
    target_fen: int  # each rep's target for the month (signed subscriptions)

    def unit(self, unit_id: str) -> OfficeUnit:
        return next(u for u in self.units if u.unit_id == unit_id)


@dataclass(frozen=True)
class Step:
    """One thing that happens at the office. `visitor` names a customer of the day (the driver
    keeps what the services answered about them); the other fields are the step's own."""

    kind: str
    at: datetime
    key: str
    rep: str | None = None
    visitor: str | None = None
    phone: str | None = None
    name: str | None = None
    source_channel: str | None = None
    related_to: tuple[str, str] | None = None  # (visitor, relation)
    unit_id: str | None = None
    other_visitor: str | None = None
    other_unit: str | None = None
    amount_fen: int = 0
    agreed_fen: int | None = None
    method: str | None = None
    cheque_no: str | None = None
    source_of_funds: str | None = None
    taker: str | None = None  # manager | named | finance
    number: str | None = None  # a subscription's or contract's number
    payment_plan: str | None = None
    bank: str | None = None
    loan_fen: int = 0
    reason: str | None = None
    forecast: tuple[int, int, int, int] | None = None


def sales_office(
    seed: int, tag: str, scale: float, area_id: str, person_name: Callable[[random.Random], str]
) -> SalesOffice:
    rng = random.Random(f"{seed}:office")
    district_id = f"{tag}-office"
    supervisor = OfficePerson(f"{tag}-osv", person_name(rng), "supervisor", district_id, area_id)
    reps = tuple(
        OfficePerson(f"{tag}-or{i + 1:02d}", person_name(rng), "rep", district_id, area_id, supervisor.staff_id)
        for i in range(max(3, round(6 * scale)))
    )
    buildings = max(2, round(4 * scale))
    floors = 20 if scale >= 0.5 else 8
    units = []
    for b in range(1, buildings + 1):
        release = "一期一批" if b < buildings else "一期二批"
        for floor in range(2, floors + 2):
            for n in range(1, 5):
                layout = "C" if floor > floors - 1 and n in (2, 3) else ("A" if n in (1, 4) else "B")
                rooms, halls, baths, (low, high), position = LAYOUTS[layout]
                area = round(rng.uniform(low, high), 2)
                orientation = "south_north" if layout != "B" else "south"
                unit_price = 2_400_000 + floor * 10_000 + (50_000 if orientation == "south_north" else 0)
                # The last building's upper half waits for a later release.
                priced = b < buildings or floor <= floors // 2 + 1
                units.append(
                    OfficeUnit(
                        unit_id=f"{tag}-P1-{b}-{floor:02d}{n:02d}",
                        building=str(b),
                        unit_no=f"{floor:02d}{n:02d}",
                        floor=floor,
                        layout_name=layout,
                        rooms=rooms,
                        halls=halls,
                        bathrooms=baths,
                        area_sqm=f"{area:.2f}",
                        orientation=orientation,
                        position=position if layout != "C" else "楼王",
                        release=release if priced else None,
                        unit_price_fen=unit_price,
                        total_price_fen=int(round(unit_price * area, -2)),
                    )
                )
    return SalesOffice(
        project_id=f"{tag}-P1",
        name="滨江一号售楼处",
        district_id=district_id,
        district_name="滨江一号案场",
        area_id=area_id,
        supervisor=supervisor,
        reps=reps,
        front_desk=OfficePerson(f"{tag}-desk", person_name(rng), "clerk"),
        finance=OfficePerson(f"{tag}-finance", "finance", "system"),
        deposit_taker=reps[0].staff_id,
        units=tuple(units),
        target_fen=12_000_000_00,  # 12 million yuan of signed subscriptions a month
    )


def _phone(seed: int, tag: str, n: int) -> str:
    digits = uuid.uuid5(NAMESPACE, f"{tag}:{seed}:{n}").int % 10**8
    return f"13{seed % 10}{digits:08d}"


def opening_day(seed: int, tag: str, scale: float, day: date, office: SalesOffice) -> tuple[Step, ...]:
    """The day's script, in time order (see the module's text)."""
    rng = random.Random(f"{seed}:office-day")
    steps: list[Step] = []
    n = 0

    def at(hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(0, 0), TZ) + timedelta(hours=hour, minutes=minute)

    def add(kind: str, when: datetime, **kw: object) -> Step:
        nonlocal n
        n += 1
        step = Step(kind, when, f"{tag}:office:{day.isoformat()}:{n}", **kw)  # type: ignore[arg-type]
        steps.append(step)
        return step

    def name() -> str:
        return rng.choice("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗") + rng.choice(("先生", "女士"))

    reps = [r.staff_id for r in office.reps]
    rng.shuffle(reps)
    for i, rep in enumerate(reps):
        add("sign_in", at(8, 30 + 2 * i), rep=rep)

    # Arrivals, taken in time order: a walk-in keeps a rep busy for 30-80 minutes, and never are
    # more walk-ins in the office than the reps present less one, so a call or a returning
    # customer always finds a free rep. One rep leaves at 15:00: a visit still on then counts
    # against one rep fewer.
    walk_ins = max(10, round(60 * scale))
    calls = max(6, round(30 * scale))
    buyers_wanted = max(8, round(40 * scale))
    leaves_at = at(15, 0)
    first, last = at(9, 0), at(16, 30)
    spacing = (last - first) / (walk_ins + calls)
    kinds = ["walk_in"] * walk_ins + ["call"] * calls
    rng.shuffle(kinds)
    phones: dict[str, str] = {}
    intents: list[tuple[datetime, str, str]] = []  # (when wanted, visitor, walk_in | call | visit)
    calls_at: dict[str, datetime] = {}
    for i, kind in enumerate(kinds):
        visitor = f"v{i + 1}"
        phones[visitor] = _phone(seed, tag, i + 1)
        intents.append((first + spacing * i, visitor, kind))
        if kind == "call":
            calls_at[visitor] = first + spacing * i
    # A third of the callers come to see in the afternoon, at least an hour after calling: their
    # own rep's customers (or received on duty).
    for j, caller in enumerate(list(calls_at)[: max(2, len(calls_at) // 3)]):
        intents.append(
            (max(at(13, 0) + timedelta(minutes=25 * j), calls_at[caller] + timedelta(hours=1)), caller, "visit")
        )
    intents.sort(key=lambda x: (x[0], x[1]))
    visitors: dict[str, tuple[datetime, datetime]] = {}  # visitor → (arrived, left)
    intervals: list[tuple[datetime, datetime]] = []
    clock = first
    for wanted, visitor, kind in intents:
        clock = max(clock, wanted)
        if kind == "call":
            add(
                "call",
                clock,
                visitor=visitor,
                phone=phones[visitor],
                name=name(),
                source_channel=rng.choice(SOURCE_CHANNELS),
            )
            continue
        minutes = rng.randint(30, 80) if kind == "walk_in" else 40
        while True:
            present = len(reps) - (1 if clock + timedelta(minutes=minutes) > leaves_at else 0)
            serving = [left for arrived, left in intervals if arrived <= clock < left]
            if len(serving) < present - 1:
                break
            clock = min(serving) + timedelta(minutes=1)
        left = clock + timedelta(minutes=minutes)
        intervals.append((clock, left))
        visitors[visitor] = (clock, left)
        if kind == "walk_in":
            add(
                "walk_in",
                clock,
                visitor=visitor,
                phone=phones[visitor],
                name=name(),
                source_channel=rng.choice(SOURCE_CHANNELS),
            )
        else:
            add("walk_in", clock, visitor=visitor, phone=phones[visitor])
        add("finish", left, visitor=visitor)

    # Duty reception on purpose: a customer of a rep who is serving someone comes back (the
    # driver picks one), and later a customer of a rep who has left for the day.
    busy_probe = min(visitors, key=lambda v: abs(visitors[v][0] - at(11, 0)))
    add("return_of_busy_reps_customer", visitors[busy_probe][0] + timedelta(minutes=5), visitor=busy_probe)
    leaver = reps[-1]
    add("sign_out", leaves_at, rep=leaver)
    add("return_of_absent_reps_customer", leaves_at + timedelta(minutes=10), rep=leaver)

    # Buyers: deposits after their visit, in order of leaving.
    by_leaving = sorted(visitors, key=lambda v: visitors[v][1])
    buyers = by_leaving[: min(buyers_wanted, len(by_leaving) - 2)]
    on_sale = [u for u in office.units if u.release is not None]
    rng.shuffle(on_sale)
    completed_building = "1"
    handover_units = [u for u in on_sale if u.building == completed_building][:2]
    others = [u for u in on_sale if u not in handover_units]
    picks = handover_units + others
    deals: list[tuple[str, OfficeUnit]] = []
    for k, buyer in enumerate(buyers):
        unit = picks[k]
        deals.append((buyer, unit))
    # The race: the last two buyers want one unit at once; the loser takes the next one free.
    race_a, race_b = buyers[-2], buyers[-1]
    race_unit, fallback = picks[len(buyers)], picks[len(buyers) + 1]
    deals = [(b, u) for b, u in deals if b not in (race_a, race_b)]
    takers = ("manager", "named", "finance")
    partial: list[tuple[str, OfficeUnit]] = []
    for k, (buyer, unit) in enumerate(deals):
        when = visitors[buyer][1] - timedelta(minutes=10)
        method = rng.choice(METHODS)
        is_partial = k % 6 == 5
        amount = 2_000_000 if is_partial else DEPOSIT_FEN
        add(
            "deposit",
            when,
            visitor=buyer,
            unit_id=unit.unit_id,
            amount_fen=amount,
            agreed_fen=DEPOSIT_FEN,
            method=method,
            cheque_no=f"No.{rng.randint(100000, 999999)}" if method == "cheque" else None,
            source_of_funds=rng.choice(FUNDS),
            taker=takers[k % 3],
        )
        if is_partial:
            partial.append((buyer, unit))
    last_arrival = max(v[1] for v in visitors.values())
    race_at = last_arrival + timedelta(minutes=5)
    add(
        "race",
        race_at,
        visitor=race_a,
        other_visitor=race_b,
        unit_id=race_unit.unit_id,
        other_unit=fallback.unit_id,
        amount_fen=DEPOSIT_FEN,
        method="transfer",
        source_of_funds="own_funds",
    )
    # Partial deposits: the first ones are completed later in the day, the last two stay due.
    for buyer, unit in partial[:-2]:
        add(
            "deposit",
            last_arrival + timedelta(minutes=20),
            visitor=buyer,
            unit_id=unit.unit_id,
            amount_fen=DEPOSIT_FEN - 2_000_000,
            method="transfer",
            source_of_funds="family_funds",
            taker="manager",
        )
    complete = [(b, u) for b, u in deals if (b, u) not in partial[-2:]]

    # Subscriptions: filled by the rep, signed by the sales manager; the last two wait for the
    # signature, one is sent back for a correction and filled again.
    evening = max(last_arrival, race_at) + timedelta(minutes=30)
    signed: list[tuple[str, OfficeUnit]] = []
    plans: dict[str, str] = {}
    for k, (buyer, unit) in enumerate(complete):
        plans[unit.unit_id] = "full" if unit in handover_units or k % 3 == 0 else "mortgage"
        when = evening + timedelta(minutes=k)
        add(
            "subscription",
            when,
            visitor=buyer,
            unit_id=unit.unit_id,
            number=f"RG-{day:%Y%m%d}-{k + 1:03d}",
            payment_plan=plans[unit.unit_id],
            reason="房号与面积填写有误" if k == 1 else None,  # sent back once, then filled again
        )
        if k < len(complete) - 2:  # the last two wait for the sales manager's signature
            add("sign", when + timedelta(seconds=30), unit_id=unit.unit_id, visitor=buyer)
            signed.append((buyer, unit))
    # Contracts the same day for the cash buyers (and the completed building's keys handed over),
    # and for some mortgage buyers, whose mortgage then starts.
    contracted: set[str] = set()
    for k, (_, unit) in enumerate(signed):
        cash = plans[unit.unit_id] == "full"
        if cash or k % 4 == 1:
            when = evening + timedelta(hours=1, minutes=k)
            add("contract", when, unit_id=unit.unit_id, number=f"HT-{day:%Y%m%d}-{k + 1:03d}")
            contracted.add(unit.unit_id)
            if unit in handover_units:
                add("hand_over", when + timedelta(minutes=30), unit_id=unit.unit_id)
            elif not cash:
                loan = int(round(unit.total_price_fen * 0.7, -2))
                add(
                    "mortgage",
                    when + timedelta(minutes=10),
                    unit_id=unit.unit_id,
                    bank=rng.choice(BANKS),
                    loan_fen=loan,
                )

    # One buyer changes their mind: the subscription is released, the deposit refunded.
    undecided = [(b, u) for b, u in signed if u.unit_id not in contracted]
    if undecided:
        _, unit = undecided[-1]
        add("release", evening + timedelta(hours=2), unit_id=unit.unit_id, reason="客户家庭意见不一致，退定")

    # A buyer refers a friend, who comes later; a buyer's spouse comes too.
    referrer = buyers[0]
    friend_phone = _phone(seed, tag, 10_000)
    add("referral", visitors[referrer][1] + timedelta(minutes=1), visitor=referrer, phone=friend_phone, name=name())
    add("friend_arrives", evening + timedelta(hours=2, minutes=10), visitor=referrer, phone=friend_phone)
    spouse_of = buyers[1]
    add(
        "walk_in",
        evening + timedelta(hours=2, minutes=20),
        visitor="spouse",
        phone=_phone(seed, tag, 10_001),
        name=name(),
        related_to=(spouse_of, "spouse"),
    )
    add("finish", evening + timedelta(hours=2, minutes=40), visitor="spouse")

    # Follow-ups of the day's walk-ins by their reps; the evening checks and close-outs.
    for visitor in by_leaving[: len(by_leaving) // 2]:
        add("follow_up", evening + timedelta(hours=3), visitor=visitor)
    for i, rep in enumerate(reps):
        add("check", at(18, 0) + timedelta(minutes=i), rep=rep)
        add(
            "close",
            at(18, 30) + timedelta(minutes=i),
            rep=rep,
            forecast=(rng.randint(0, 3), rng.randint(0, 2), rng.randint(0, 1), rng.randint(0, 2) * 3_000_000_00),
        )
        add("claim", at(18, 40) + timedelta(minutes=i), rep=rep, amount_fen=rng.randint(2, 5) * 3_000_000_00)
    add("review", at(19, 0))
    return tuple(sorted(steps, key=lambda s: (s.at, s.key)))
