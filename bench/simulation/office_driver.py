"""Sends the sales office's plan (office.py) to a running system, through the same public
interfaces and with the same idempotency keys as the rest of the driver.

The office is set up with the department (its district, supervisor and reps in the customer
archive, the office, the units and their price lists, who takes deposits, the reps' targets),
and its day is lived live, step after step in time order: the services decide who receives
whom, and the driver keeps their answers (each visitor's lead and rep, who serves whom now) for
the steps that depend on them.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from bench.simulation.office import OfficePerson, SalesOffice, Step

if TYPE_CHECKING:
    from bench.simulation.driver import Driver, Reply

# Codes that mean another service has not heard of the office, a lead or a rep yet.
WAITING = {"unknown_project", "unknown_lead", "unknown_subject", "not_an_office_rep", "unknown_district"}
UNITS_PER_COMMAND = 500


class OfficeDriver:
    def __init__(self, driver: Driver, office: SalesOffice, steps: tuple[Step, ...], today: date) -> None:
        self.d = driver
        self.office = office
        self.steps = steps
        self.today = today
        self.lead_of: dict[str, str] = {}  # visitor → lead id
        self.rep_of: dict[str, str] = {}  # visitor → the rep who follows them
        self.served_by: dict[str, str] = {}  # visitor being served now → rep
        self.phone_of: dict[str, str] = {}
        self.people = {p.staff_id: p for p in (*office.reps, office.supervisor)}

    def units(self) -> int:
        """Progress units: the setup and every step of the day."""
        return 4 + len(self.office.reps) + len(self.steps)

    @property
    def project(self) -> str:
        return self.office.project_id

    async def send(self, service: str, name: str, payload: dict[str, Any], who: Any, key: str) -> Reply:
        actor = who.actor() if isinstance(who, OfficePerson) else who
        return await self.d.send(service, name, payload, actor, key=key, wait_for=WAITING)

    # -- setup -------------------------------------------------------------------------------------

    async def setup(self) -> None:
        """The office's district, people and office in the archive; its units and price lists."""
        o, boss = self.office, self.d.org.sales_manager
        await self.send(
            "customer",
            "define_district",
            {"district_id": o.district_id, "name": o.district_name, "area_id": o.area_id},
            boss,
            key=f"office-district:{o.district_id}",
        )
        for person in (o.supervisor, *o.reps):
            await self.send(
                "customer",
                "assign_staff",
                {
                    "staff_id": person.staff_id,
                    "name": person.name,
                    "role": person.role,
                    "district_id": person.district_id,
                    "supervisor_id": person.supervisor_id,
                },
                boss,
                key=f"staff:{person.staff_id}",
            )
            self.d.progress.advance()
        await self.send(
            "customer",
            "open_sales_office",
            {"project_id": self.project, "name": o.name, "district_id": o.district_id},
            boss,
            key=f"office:{self.project}",
        )
        self.d.progress.advance()
        for start in range(0, len(o.units), UNITS_PER_COMMAND):
            chunk = o.units[start : start + UNITS_PER_COMMAND]
            await self.send(
                "orders",
                "define_units",
                {
                    "project_id": self.project,
                    "units": [
                        {
                            "unit_id": u.unit_id,
                            "building": u.building,
                            "unit_no": u.unit_no,
                            "floor": u.floor,
                            "layout_name": u.layout_name,
                            "rooms": u.rooms,
                            "halls": u.halls,
                            "bathrooms": u.bathrooms,
                            "area_sqm": u.area_sqm,
                            "orientation": u.orientation,
                            "position": u.position,
                        }
                        for u in chunk
                    ],
                },
                boss,
                key=f"units:{self.project}:{start}",
            )
        self.d.progress.advance()
        for n, release in enumerate(sorted({u.release for u in o.units if u.release})):
            await self.send(
                "orders",
                "issue_price_list",
                {
                    "project_id": self.project,
                    "release": release,
                    "prices": [
                        {"unit_id": u.unit_id, "unit_price_fen": u.unit_price_fen, "total_price_fen": u.total_price_fen}
                        for u in o.units
                        if u.release == release
                    ],
                },
                boss,
                key=f"prices:{self.project}:{n}",
            )
        await self.send(
            "orders",
            "name_deposit_taker",
            {"project_id": self.project, "staff_id": o.deposit_taker},
            boss,
            key=f"taker:{self.project}:{o.deposit_taker}",
        )
        self.d.progress.advance()

    async def targets(self) -> None:
        """Each rep's target of the month (signed subscriptions), set by the sales manager."""
        month = self.today.strftime("%Y-%m")
        for rep in self.office.reps:
            await self.send(
                "reporting",
                "set_target",
                {"month": month, "level": "rep", "subject_id": rep.staff_id, "amount_fen": self.office.target_fen},
                self.d.org.sales_manager,
                key=f"office-target:{month}:{rep.staff_id}",
            )
        self.d.progress.advance()

    # -- the day ------------------------------------------------------------------------------------

    async def day(self) -> None:
        for step in self.steps:
            await getattr(self, f"_{step.kind}")(step)
            self.d.progress.advance()

    def rep(self, staff_id: str) -> OfficePerson:
        return self.people[staff_id]

    async def _receive(self, step: Step, visitor: str, kind: str, phone: str, key: str, **extra: Any) -> Reply:
        payload: dict[str, Any] = {"project_id": self.project, "phone": phone, **extra}
        if step.name:
            payload["name"] = step.name
        if step.source_channel:
            payload["source_channel"] = step.source_channel
        name = "receive_walk_in" if kind == "walk_in" else "receive_phone_enquiry"
        reply = await self.send("customer", name, payload, self.office.front_desk, key)
        if reply.ok:
            self.phone_of[visitor] = phone
            self.lead_of[visitor] = reply.result["lead_id"]
            self.rep_of.setdefault(visitor, reply.result["following_rep_id"])
            if kind == "walk_in":
                self.served_by[visitor] = reply.result["rep_id"]
        return reply

    async def _finish_now(self, visitor: str, key: str) -> None:
        rep = self.served_by.pop(visitor, None)
        if rep is not None:
            await self.send("customer", "finish_reception", {"project_id": self.project}, self.rep(rep), key)

    async def _sign_in(self, step: Step) -> None:
        await self.send("customer", "sign_in", {"project_id": self.project}, self.rep(step.rep or ""), step.key)

    async def _walk_in(self, step: Step) -> None:
        assert step.visitor and step.phone
        extra: dict[str, Any] = {}
        if step.related_to is not None:
            other, relation = step.related_to
            if other not in self.lead_of:
                self.d.summary.skipped["office: a family member of a customer never received"] += 1
                return
            extra["related_to"] = {"lead_id": self.lead_of[other], "relation": relation}
        await self._receive(step, step.visitor, "walk_in", step.phone, step.key, **extra)

    async def _call(self, step: Step) -> None:
        assert step.visitor and step.phone
        await self._receive(step, step.visitor, "phone", step.phone, step.key)

    async def _finish(self, step: Step) -> None:
        await self._finish_now(step.visitor or "", step.key)

    async def _returning(self, step: Step, rep: str | None, why: str) -> None:
        """A customer of `rep` comes back while that rep is serving someone or away: duty."""
        candidates = [v for v, r in self.rep_of.items() if r == rep and v not in self.served_by and v in self.lead_of]
        if rep is None or not candidates:
            self.d.summary.skipped[f"office: no customer of a rep {why} to come back"] += 1
            return
        visitor = sorted(candidates)[0]
        reply = await self._receive(step, visitor, "walk_in", self.phone_of[visitor], step.key)
        if reply.ok:
            await self._finish_now(visitor, f"{step.key}:finish")

    async def _return_of_busy_reps_customer(self, step: Step) -> None:
        await self._returning(step, self.served_by.get(step.visitor or ""), "serving a customer")

    async def _return_of_absent_reps_customer(self, step: Step) -> None:
        await self._returning(step, step.rep, "who left")

    async def _sign_out(self, step: Step) -> None:
        rep = step.rep or ""
        for visitor, serving in list(self.served_by.items()):
            if serving == rep:  # the rep sees the customer off, then leaves
                await self._finish_now(visitor, f"{step.key}:finish:{visitor}")
        await self.send("customer", "sign_out", {"project_id": self.project}, self.rep(rep), step.key)

    def _taker(self, taker: str | None) -> Any:
        if taker == "named":
            return self.rep(self.office.deposit_taker)
        if taker == "finance":
            return self.office.finance
        return self.d.org.sales_manager

    def _deposit_payload(self, step: Step, visitor: str, unit_id: str) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "unit_id": unit_id,
            "lead_id": self.lead_of[visitor],
            "amount_fen": step.amount_fen,
            "method": step.method or "transfer",
            "source_of_funds": step.source_of_funds or "own_funds",
        }
        if step.agreed_fen:
            payload["agreed_fen"] = step.agreed_fen
        if step.cheque_no:
            payload["cheque_no"] = step.cheque_no
        return payload

    async def _deposit(self, step: Step) -> None:
        if (step.visitor or "") not in self.lead_of:
            self.d.summary.skipped["office: a deposit for a customer never received"] += 1
            return
        payload = self._deposit_payload(step, step.visitor or "", step.unit_id or "")
        await self.send("orders", "take_deposit", payload, self._taker(step.taker), step.key)

    async def _race(self, step: Step) -> None:
        """Two customers want one unit and pay at the same moment: the first deposit wins, the
        other takes the next unit."""
        a, b = step.visitor or "", step.other_visitor or ""
        if a not in self.lead_of or b not in self.lead_of:
            self.d.summary.skipped["office: a race between customers never received"] += 1
            return
        boss = self.d.org.sales_manager
        replies = await asyncio.gather(
            *(
                self.send(
                    "orders",
                    "take_deposit",
                    self._deposit_payload(step, v, step.unit_id or ""),
                    boss,
                    f"{step.key}:{v}",
                )
                for v in (a, b)
            )
        )
        for visitor, reply in zip((a, b), replies, strict=True):
            if reply.code == "unit_already_reserved":
                payload = self._deposit_payload(step, visitor, step.other_unit or "")
                await self.send("orders", "take_deposit", payload, boss, f"{step.key}:{visitor}:next")

    async def _subscription(self, step: Step) -> None:
        visitor = step.visitor or ""
        if visitor not in self.rep_of:
            return
        rep = self.rep(self.rep_of[visitor])
        payload = {
            "unit_id": step.unit_id,
            "subscription_no": step.number,
            "payment_plan": step.payment_plan,
            "contract_due_on": (self.today + timedelta(days=7)).isoformat(),
        }
        filled = await self.send("orders", "fill_subscription", payload, rep, step.key)
        if filled.ok and step.reason:  # wrongly filled: sent back by the sales manager, filled again
            boss = self.d.org.sales_manager
            await self.send(
                "orders",
                "return_subscription",
                {"unit_id": step.unit_id, "reason": step.reason},
                boss,
                f"{step.key}:return",
            )
            await self.send(
                "orders",
                "fill_subscription",
                {**payload, "subscription_no": f"{step.number}-2"},
                rep,
                f"{step.key}:again",
            )

    async def _manager(self, step: Step, name: str, payload: dict[str, Any], who: Any = None) -> None:
        await self.send("orders", name, {"unit_id": step.unit_id, **payload}, who or self.d.org.sales_manager, step.key)

    async def _sign(self, step: Step) -> None:
        await self._manager(step, "sign_subscription", {})

    async def _contract(self, step: Step) -> None:
        await self._manager(step, "sign_contract", {"contract_no": step.number})

    async def _mortgage(self, step: Step) -> None:
        await self._manager(step, "start_mortgage", {"bank": step.bank, "loan_fen": step.loan_fen}, self.office.finance)

    async def _hand_over(self, step: Step) -> None:
        await self._manager(step, "hand_over", {})

    async def _release(self, step: Step) -> None:
        await self._manager(step, "release_reservation", {"reason": step.reason, "deposit": "refunded"})

    async def _referral(self, step: Step) -> None:
        referrer = step.visitor or ""
        if referrer not in self.lead_of:
            return
        reply = await self.send(
            "customer",
            "register_referral",
            {
                "project_id": self.project,
                "referrer_lead_id": self.lead_of[referrer],
                "phone": step.phone,
                "name": step.name,
            },
            self.rep(self.rep_of[referrer]),
            step.key,
        )
        if reply.ok:
            self.lead_of["friend"], self.rep_of["friend"] = reply.result["lead_id"], reply.result["rep_id"]
            self.phone_of["friend"] = step.phone or ""

    async def _friend_arrives(self, step: Step) -> None:
        reply = await self._receive(step, "friend", "walk_in", step.phone or "", step.key)
        if reply.ok:
            await self._finish_now("friend", f"{step.key}:finish")

    async def _follow_up(self, step: Step) -> None:
        visitor = step.visitor or ""
        if visitor not in self.lead_of:
            return
        await self.send(
            "customer",
            "log_lead_follow_up",
            {"lead_id": self.lead_of[visitor], "channel": "phone", "note": "电话回访，发送户型图和价目表"},
            self.rep(self.rep_of[visitor]),
            step.key,
        )

    async def _check(self, step: Step) -> None:
        await self.send(
            "orders", "check_sales_control", {"project_id": self.project}, self.rep(step.rep or ""), step.key
        )

    async def _close(self, step: Step) -> None:
        deposits, subscriptions, contracts, amount = step.forecast or (0, 0, 0, 0)
        forecast = {"deposits": deposits, "subscriptions": subscriptions, "contracts": contracts, "amount_fen": amount}
        await self.send(
            "reporting",
            "record_daily_close",
            {"project_id": self.project, "business_date": self.today.isoformat(), "forecast": forecast},
            self.rep(step.rep or ""),
            step.key,
        )

    async def _claim(self, step: Step) -> None:
        # Claimed at the Monday meeting: today's if today is a Monday, else the next one's.
        week = self.today + timedelta(days=(7 - self.today.weekday()) % 7)
        await self.send(
            "reporting",
            "claim_weekly_target",
            {"project_id": self.project, "week": week.isoformat(), "subscriptions": 1, "amount_fen": step.amount_fen},
            self.rep(step.rep or ""),
            step.key,
        )

    async def _review(self, step: Step) -> None:
        await self.send("reporting", "review_performance", {}, self.d.org.sales_manager, step.key)
