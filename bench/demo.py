"""`make demo` (`python -m bench.demo`): load a simulated month of a sales department into the
system `make run` is running.

    .venv/bin/python -m bench.demo                          # 2 divisions, 60 reps, ~3,000 customers, 30 days
    .venv/bin/python -m bench.demo --scale 0.1 --days 3     # a tenth of it, three days
    make demo DEMO_SCALE=0.1 DEMO_DAYS=3                    # the same through make

Reads the addresses from `.run/stack.json`, the outside systems' NATS password from
`.run/secrets.json` and the signing key from `.run/auth/`, shows a progress bar on stderr, and
prints what was sent, what was refused (per status and code) and where to look at the reports. The same seed on the same day sends nothing twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

from bench.simulation.driver import Summary, drive
from bench.simulation.organisation import TIMEZONE, Plan, build_plan
from salesplatform.auth import SigningKey, load_signing_key
from salesplatform.clock import business_date


class ProgressBar:
    """A one-line progress bar on stderr (phase, bar, share, units, commands per second); on
    a stream that is not a terminal, one line per phase instead."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 28) -> None:
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self.total = 0
        self.done = 0
        self.name = ""
        self.started = time.monotonic()
        self._drawn = 0.0

    def phase(self, name: str) -> None:
        self.name = name
        if not self.tty:
            self.stream.write(f"  … {name} ({self.done}/{self.total})\n")
            self.stream.flush()
        self._draw(force=True)

    def add_total(self, n: int) -> None:
        self.total += n

    def advance(self, n: int = 1) -> None:
        before = self.done
        self.done += n
        if not self.tty and self.total and before * 10 // self.total != self.done * 10 // self.total:
            self.stream.write(
                f"  {self.done * 100 // self.total:3d}%  {self.done}/{self.total}"
                f"  {time.monotonic() - self.started:.0f}s  {self.name}\n"
            )
            self.stream.flush()
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.tty or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        share = min(1.0, self.done / self.total) if self.total else 0.0
        filled = int(share * self.width)
        bar = "█" * filled + "░" * (self.width - filled)
        elapsed = now - self.started
        line = f"\r  {bar} {share:4.0%}  {self.done}/{self.total}  {elapsed:5.0f}s  {self.name[:40]:<40}"
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def load_stack(stack_path: Path, secrets_path: Path | None) -> tuple[dict[str, str], str, dict[str, str], SigningKey]:
    """Service base URLs, the NATS URL and the outside systems' NATS login, and the signing key
    of a running `make run`."""
    if not stack_path.exists():
        raise SystemExit(f"{stack_path} does not exist: start the system first (`make run`, in another terminal)")
    stack = json.loads(stack_path.read_text())
    if stack.get("pid") is None:  # kept after a stop, for its ports
        raise SystemExit(f"the system of {stack_path} is stopped: start it first (`make run`, in another terminal)")
    urls = {name: info["url"] for name, info in stack.get("services", {}).items()}
    missing = [s for s in ("customer", "visit", "orders", "reporting") if s not in urls]
    if missing:
        raise SystemExit(f"{stack_path} names no {', '.join(missing)} service")
    secrets_file = secrets_path or Path(stack.get("secrets_file") or stack_path.with_name("secrets.json"))
    nats_login = {"user": "system", "password": json.loads(secrets_file.read_text())["nats_passwords"]["system"]}
    key = load_signing_key(os.environ.get("AUTH_SIGNING_KEY_FILE") or stack.get("signing_key_file"))
    not_ready = [name for name, url in urls.items() if not _ready(url)]
    if not_ready:
        raise SystemExit(f"not ready: {', '.join(not_ready)} (is `make run` still running? see {stack_path})")
    return urls, stack["nats_url"], nats_login, key


def where_to_look(plan: Plan, urls: dict[str, str]) -> str:
    org = plan.organisation
    reporting = urls["reporting"]
    month = plan.end.strftime("%Y-%m")
    window = {"from": plan.start.isoformat(), "to": plan.end.isoformat()}

    def url(path: str, **params: Any) -> str:
        return f"{reporting}{path}?{urlencode(params)}"

    reports = [
        (
            "KPI board per rep (today: visits, success, adoption, required SKUs, coolers)",
            url("/reports/kpi", **{"from": plan.end.isoformat(), "to": plan.end.isoformat()}, group_by="rep"),
        ),
        ("KPI board per area, whole window", url("/reports/kpi", **window, group_by="area")),
        ("sales by area and month (net of returns)", url("/reports/sales", **window, group_by="area", period="month")),
        ("sales by day and product group", url("/reports/sales", **window, group_by="product_group")),
        ("composition by customer grade", url("/reports/composition", **window, by="grade")),
        ("target achievement per rep, month to date", url("/reports/targets", month=month, level="rep")),
        ("target achievement per area", url("/reports/targets", month=month, level="area")),
        ("receivables ageing per rep", url("/reports/receivables", group_by="rep")),
        ("returns by reason", url("/reports/returns", **window, group_by="reason")),
        ("complaints by category, 48 h SLA", url("/reports/complaints", **window, group_by="category")),
        ("promotions", url("/reports/promotions")),
        ("satisfaction against 95/97/98%", url("/reports/satisfaction")),
        ("customer base: new, active, dormant, lost", url("/reports/customer-base", **window, group_by="area")),
    ]
    office = org.office
    if office is not None:
        today = {"from": plan.end.isoformat(), "to": plan.end.isoformat()}
        reports += [
            ("sales office: lead registers per rep today", url("/reports/office-leads", **today, group_by="rep")),
            ("sales office: daily close-out (日清)", url("/reports/daily-close", date=plan.end.isoformat())),
            (
                "sales office: sales by building and layout",
                url("/reports/office-sales", **today, group_by="building,layout"),
            ),
            ("sales office: unit inventory by building", url("/reports/unit-inventory", group_by="building")),
            ("sales office: deposits due", url("/reports/deposits-due")),
            ("sales office: performance warnings (考核预警)", url("/reports/performance-warnings")),
            ("sales office: weekly targets", url("/reports/weekly-targets")),
        ]
    width = max(len(label) for label, _ in reports)
    lines = []
    if "console" in urls:
        supervisor = next(p for p in org.staff if p.role == "supervisor")
        lines += [
            "",
            f"Open the sales console: {urls['console']}",
            f"  sign in as a supervisor, e.g. {supervisor.name} ({supervisor.staff_id}), or as the sales manager"
            f" (department roles, staff id {org.sales_manager.staff_id})",
        ]
    lines += [
        "",
        "Where to look (every query needs a bearer token):",
        "  TOKEN=$(.venv/bin/python -m salesplatform.auth mint --role sales_manager"
        f" --id {org.sales_manager.staff_id})",
        f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{reports[0][1]}'",
        "",
    ]
    lines += [f"  {label:<{width}}  {link}" for label, link in reports]
    lines += [
        "",
        "  All reports and what they count: " + f"{reporting}/reports",
        "  API pages (Authorize with the token):",
    ]
    lines += [f"    {name:<10} {base}/docs" for name, base in urls.items() if name != "console"]
    district = min(org.districts, key=lambda d: d.district_id)
    supervisor = org.supervisor_of_district(district.district_id)
    visit = urls["visit"]
    lines += [
        "",
        f"  Field execution (token of a supervisor: --role supervisor --id {supervisor.staff_id}"
        f" --district {district.district_id} --area {district.area_id}):",
        f"    check-ins not verified at the outlet   {visit}/check-ins/flagged?district_id={district.district_id}",
        f"    photos for review                      {visit}/photos/review?district_id={district.district_id}",
        f"    route cleanup of the month             {visit}/route-cleanup?district_id={district.district_id}"
        f"&month={month}",
        f"    route plans of a rep (current vs proposed km)  {visit}/route-plans?rep_id="
        + min(r.staff_id for r in org.reps if r.district_id == district.district_id),
        f"    standard pictures                      {visit}/standard-pictures",
    ]
    lines += [
        "",
        "  Elsewhere: orders awaiting approval " + f"{urls['orders']}/approvals?role=sales_manager",
        f"             receivables {urls['orders']}/receivables",
        f"             a rep's day plan {urls['visit']}/day-plan?rep_id={org.reps[0].staff_id}"
        f"&date={plan.end.isoformat()} (token of that rep: --role rep --id {org.reps[0].staff_id}"
        f" --district {org.reps[0].district_id} --area {org.reps[0].area_id})",
    ]
    if office is not None:
        project = office.project_id
        lines += [
            f"  The sales office {office.name} (project {project}):",
            f"             the day's board (轮次) {urls['customer']}/offices/{project}/board",
            f"             the walk-in register {urls['customer']}/offices/{project}/registers/walk_in",
            f"             the unit inventory (销控表) {urls['orders']}/projects/{project}/units",
            f"             today's sales-control check {urls['orders']}/projects/{project}/sales-control",
            f"             layouts for a 3-room, 120-140 m² buyer {urls['orders']}/projects/{project}/recommendations"
            "?rooms=3&area_min=120&area_max=140",
        ]
    return "\n".join(lines)


def describe(plan: Plan) -> str:
    c = plan.counts()
    return (
        f"Seed {plan.seed}, scale {plan.scale:g}: {c['divisions']} divisions, {c['areas']} areas, "
        f"{c['districts']} districts, {c['supervisors']} supervisors, {c['reps']} reps, "
        f"{c['customers']} customers, "
        f"{c['skus']} SKUs, {c['routes']} routes.\n"
        f"{c['days']} business days {plan.start} … {plan.end}: {c['visits']} route visits, {c['orders']} orders, "
        f"{c['deliveries']} deliveries ({c['late_deliveries']} late), {c['payments']} payments "
        f"({c['overdue_invoices']} invoices overdue), {c['returns']} returns, {c['complaints']} complaints, "
        f"{c['surveys']} surveys.\n"
        f"Past days go in as the order history (dated orders, deliveries, payments); today "
        f"({plan.end}) is lived live: {len(plan.days[-1].visits)} visits with all eight steps, "
        f"{len(plan.days[-1].orders)} orders, approvals, deliveries, returns, complaints; check-ins with their"
        f" positions, {sum(v.photo for v in plan.days[-1].visits)} photos against the standard pictures,"
        f" route plans asked for, reviewed and one adopted, the month's route cleanup closed."
        + (
            f"\nThe sales office of a project of {c['office_units']} units opens today: {c['office_reps']} reps "
            f"sign in, {c['office_walk_ins']} walk-ins and {c['office_calls']} calls in turn, "
            f"{c['office_deposits']} deposits, {c['office_subscriptions']} subscriptions, "
            f"{c['office_contracts']} contracts."
            if c.get("office_units")
            else ""
        )
    )


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m bench.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seed", type=int, default=int(env.get("DEMO_SEED", 7)), help="same seed, same department (default 7)"
    )
    parser.add_argument(
        "--days", type=int, default=int(env.get("DEMO_DAYS", 30)), help="business days up to today (default 30)"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=float(env.get("DEMO_SCALE", 1.0)),
        help="fraction of the default size: 60 reps, ~3,000 customers (default 1)",
    )
    parser.add_argument(
        "--stack",
        type=Path,
        default=Path(env.get("DEMO_STACK", ".run/stack.json")),
        help="addresses of the running system (default .run/stack.json)",
    )
    parser.add_argument(
        "--secrets", type=Path, default=None, help="NATS passwords file (default: the one stack.json names)"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument(
        "--patience",
        type=float,
        default=60.0,
        help="seconds to wait for events to reach another service before counting a refusal",
    )
    args = parser.parse_args(argv)
    if args.days < 1 or args.scale <= 0:
        parser.error("--days must be at least 1 and --scale positive")
    urls, nats_url, nats_login, key = load_stack(args.stack, args.secrets)
    today = business_date(datetime.now().astimezone(), TIMEZONE)
    plan = build_plan(args.seed, scale=args.scale, days=args.days, end=today)
    print(describe(plan), flush=True)
    bar = ProgressBar()
    try:
        summary: Summary = asyncio.run(
            drive(
                plan,
                signing_key=key,
                base_urls=urls,
                nats_url=nats_url,
                nats_login=nats_login,
                concurrency=args.concurrency,
                progress=bar,
                patience=args.patience,
            )
        )
    except KeyboardInterrupt:
        bar.close()
        print("interrupted; run it again with the same seed to continue (nothing is sent twice)")
        return 130
    bar.close()
    print(summary.render())
    print(where_to_look(plan, urls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
