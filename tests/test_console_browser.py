"""The sales console in a real browser: headless Chromium (Debian's package, driven by its
chromedriver through Selenium) against the console, which reads the four real services loaded
with a small simulated department and learns of report changes over NATS.

Every page renders without a console error and draws its charts; the figures on a page are the
reports' figures for the same filter; a rep's sign-in cannot reach another rep's board; a
decision made on the approvals page reaches the service; the KPI board follows a new delivery
without a reload. Screenshots of each page are kept in tests/artifacts/console/ (ignored by git).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from running_system import SIGNING_KEY, Service, eventually, start_service_on
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from bench.simulation.driver import drive
from bench.simulation.organisation import TIMEZONE, Plan, build_plan
from console_service.bootstrap import running
from console_service.config import ConsoleSettings
from console_service.domain.money import fen_of, yuan
from customer_service.bootstrap import definition as customer_definition
from orders_service.bootstrap import definition as orders_definition
from reporting_service.bootstrap import definition as reporting_definition
from salesplatform.auth import SigningKey, mint
from salesplatform.clock import business_date
from salesplatform.devstack.pytest_plugin import TEST_JWKS, nats_credentials_for_tests, nats_login_for_tests
from salesplatform.devstack.servers import LOOPBACK, create_database, drop_database, free_port
from salesplatform.events import Actor, Role
from visit_service.bootstrap import definition as visit_definition

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    # The first test also waits for the department to be loaded (two minutes or more on a busy
    # 2-core machine), and a browser starved of CPU is slow, not wrong.
    pytest.mark.timeout(600),
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without these Chromium reaches for the network at start (updates, sync, field trials).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1440,1000",
)
ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "console"
PAGES = (
    "kpi",
    "sales",
    "targets",
    "composition",
    "receivables",
    "returns",
    "complaints",
    "satisfaction",
    "customer_base",
    "approvals",
)


@dataclass
class System:
    services: dict[str, Service]
    plan: Plan
    console_url: str

    def token(self, actor: Actor) -> str:
        return mint(actor, SIGNING_KEY)

    async def api(self, service: str, actor: Actor, path: str, **params: Any) -> Any:
        response = await self.services[service].get(actor, path, **params)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return response.json()

    async def report(self, actor: Actor, path: str, **params: Any) -> list[dict[str, Any]]:
        return (await self.api("reporting", actor, path, limit=1000, **params))["items"]

    async def command(self, service: str, actor: Actor, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.services[service].ok(actor, name, payload)


@contextlib.asynccontextmanager
async def console_server(settings: ConsoleSettings, clients: dict[str, httpx.AsyncClient]) -> AsyncIterator[str]:
    """The console served over TCP on a free loopback port, in this event loop."""
    async with running(settings, clients=clients) as (console, app):
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host=LOOPBACK, port=port, log_config=None, access_log=False, lifespan="off")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        try:
            yield f"http://{LOOPBACK}:{port}"
        finally:
            console.hub.close()  # the pages' live streams end, so the server stops at once
            server.should_exit = True
            await task


def signing_key_file(directory: Path) -> Path:
    """The session's private key in a file, as the local sign-in of `make run` reads it."""
    path = directory / "signing-key.json"
    path.write_text(json.dumps(SIGNING_KEY.private_jwk()))
    path.chmod(0o600)
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def system(stack_servers, nats_url, tmp_path_factory) -> AsyncIterator[System]:
    """The four services with a small department living two days (to today), and the console."""
    namespace = "t" + secrets.token_hex(4)
    key_dir = tmp_path_factory.mktemp("console-keys")
    databases: list[str] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            services: dict[str, Service] = {}
            for definition in (customer_definition(), visit_definition(), orders_definition(), reporting_definition()):
                name = f"{definition.name}_{uuid.uuid4().hex[:12]}"
                database_url = await create_database(stack_servers.admin_dsn, name)
                databases.append(name)
                services[definition.name] = await start_service_on(stack, definition, database_url, nats_url, namespace)
            today = business_date(datetime.now(UTC), TIMEZONE)
            plan = build_plan(5, scale=0.02, days=2, end=today)
            await drive(
                plan,
                signing_key=SIGNING_KEY,
                nats_url=nats_url,
                nats_login=nats_login_for_tests("system"),
                nats_namespace=namespace,
                patience=20.0,
                clients={name: s.http for name, s in services.items()},
            )
            settings = ConsoleSettings(
                customer_url="http://customer",
                visit_url="http://visit",
                orders_url="http://orders",
                reporting_url="http://reporting",
                nats_url=nats_url,
                stream_prefix=namespace,
                **nats_credentials_for_tests("system"),  # the console hears report changes as outside systems do
                jwks=TEST_JWKS,
                signing_key_file=str(signing_key_file(key_dir)),
                timezone=TIMEZONE,
                local_login=True,
            )
            url = await stack.enter_async_context(
                console_server(settings, {name: s.http for name, s in services.items()})
            )
            system = System(services, plan, url)
            await settled(system, today.isoformat())
            yield system
    finally:
        for name in databases:
            await drop_database(stack_servers.admin_dsn, name)


async def settled(system: System, today: str) -> None:
    """The reports have caught up with what the department did today."""
    manager = system.plan.organisation.sales_manager.actor()
    done = sum(1 for v in system.plan.all("visits") if v.day.isoformat() == today and v.outcome in ("order", "refused"))

    async def board() -> bool:
        items = await system.report(manager, "/reports/kpi", **{"from": today, "to": today})
        return sum(i["done"] for i in items) == done

    await eventually(board, timeout=30)


@pytest.fixture(scope="module")
def chromium() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, f"{', '.join(missing)} missing: apt-get install chromium chromium-driver (.ci/run does)"
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Browser:
    """The page as a person sees it. Selenium blocks, and the console answers on this event
    loop, so every browser call runs in a worker thread."""

    def __init__(self, driver: WebDriver, base: str) -> None:
        self.driver = driver
        self.base = base

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def open(self, path: str) -> None:
        await self.call(self.driver.get, self.base + path)

    async def sign_in(self, person: Any) -> None:
        await self.call(self.driver.delete_all_cookies)
        await self.open("/login")
        if person.role in ("rep", "supervisor", "area_manager"):
            await self.click(f'button[data-staff="{person.staff_id}"]')
        else:

            def department_role() -> None:
                form = self.driver.find_element(By.CSS_SELECTOR, "form.department")
                form.find_element(By.CSS_SELECTOR, f'select[name="role"] option[value="{person.role}"]').click()
                field = form.find_element(By.NAME, "staff_id")
                field.clear()
                field.send_keys(person.staff_id)
                form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

            await self.call(department_role)
        await self.until(lambda d: d.current_url.startswith(self.base + "/kpi"), "the KPI board after signing in")
        assert await self.text(f'[data-viewer="{person.staff_id}"]')

    async def click(self, selector: str) -> None:
        await self.call(lambda: self.driver.find_element(By.CSS_SELECTOR, selector).click())

    async def text(self, selector: str) -> str:
        return await self.call(lambda: self.driver.find_element(By.CSS_SELECTOR, selector).text)

    async def all(self, selector: str) -> list[Any]:
        return await self.call(self.driver.find_elements, By.CSS_SELECTOR, selector)

    async def js(self, script: str) -> Any:
        return await self.call(self.driver.execute_script, script)

    async def until(self, check: Callable[[WebDriver], Any], what: str, timeout: float = 20.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                result = await self.call(check, self.driver)
            except WebDriverException:
                result = None
            if result:
                return result
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not reached within {timeout}s: {what}")
            await asyncio.sleep(0.2)

    async def console_errors(self) -> list[str]:
        entries = await self.call(self.driver.get_log, "browser")
        return [e["message"] for e in entries if e["level"] == "SEVERE"]

    async def screenshot(self, name: str) -> None:
        height = await self.js("return document.body.scrollHeight")
        await self.call(self.driver.set_window_size, 1440, min(max(int(height) + 40, 900), 4000))
        await self.call(self.driver.save_screenshot, str(ARTIFACTS / f"{name}.png"))
        await self.call(self.driver.set_window_size, 1440, 1000)

    async def table(self, name: str) -> dict[str, dict[str, str]]:
        """A table of the page: row key → column → the text shown."""

        def read() -> dict[str, dict[str, str]]:
            rows = self.driver.find_elements(By.CSS_SELECTOR, f'table[data-table="{name}"] tbody tr')
            return {
                row.get_attribute("data-key"): {
                    cell.get_attribute("data-col"): cell.text for cell in row.find_elements(By.CSS_SELECTOR, "td")
                }
                for row in rows
            }

        return await self.call(read)

    async def field(self, name: str) -> str:
        return await self.call(
            lambda: self.driver.find_element(By.CSS_SELECTOR, f'form.filters [name="{name}"]').get_attribute("value")
        )


@pytest_asyncio.fixture(loop_scope="module")
async def browser(system, chromium) -> Browser:
    await asyncio.to_thread(chromium.get_log, "browser")  # what earlier tests left
    return Browser(chromium, system.console_url)


def person(system: System, role: str, n: int = 0) -> Any:
    return [p for p in system.plan.organisation.staff if p.role == role][n]


def supervisor_with_reps(system: System) -> tuple[Any, list[Any]]:
    org = system.plan.organisation
    for sup in (p for p in org.staff if p.role == "supervisor"):
        reps = [p for p in org.staff if p.role == "rep" and p.district_id == sup.district_id]
        if reps:
            return sup, reps
    raise AssertionError("the plan has no supervisor with reps")


def orderable(system: System, rep: Any) -> list[Any]:
    """The rep's active customers without overdue invoices, those without a credit limit
    first: an order of theirs needs approval for its amount alone."""
    overdue = {d.customer_id for d in system.plan.overdue_invoices()}
    customers = [
        c
        for c in system.plan.organisation.customers
        if c.rep_id == rep.staff_id and c.status == "active" and c.customer_id not in overdue
    ]
    return sorted(customers, key=lambda c: (c.credit is not None, -(c.credit.limit_fen if c.credit else 0)))


def percent_of(text: str) -> float | None:
    return None if text.strip() in ("—", "") else float(text.strip().rstrip("%"))


def number_of(text: str) -> int:
    return int(text.replace(",", "").strip())


# -- the tests -------------------------------------------------------------------------------------


async def test_every_page_renders_its_charts_without_console_errors(system, browser) -> None:
    supervisor, _ = supervisor_with_reps(system)
    await browser.sign_in(supervisor)
    for page in PAGES:
        await browser.open(f"/{page}")
        assert await browser.call(lambda: browser.driver.find_element(By.CSS_SELECTOR, "main#content")), page
        assert not await browser.all("[data-error-status]"), f"{page}: {await browser.text('main')}"
        charts = await browser.all(".chart")
        if page != "approvals":
            assert charts, page
        await browser.until(
            lambda d: (
                all(c.get_attribute("data-drawn") == "true" for c in d.find_elements(By.CSS_SELECTOR, ".chart"))
                and all(c.find_elements(By.CSS_SELECTOR, "canvas") for c in d.find_elements(By.CSS_SELECTOR, ".chart"))
            ),
            f"{page}: every chart drawn",
        )
        if page != "approvals":
            await browser.until(lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "on", "live")
        await browser.screenshot(page)
        assert await browser.console_errors() == [], page
    # Chinese by default, English on request; back to Chinese.
    await browser.open("/kpi")
    assert (await browser.text('[data-nav="kpi"]')) == "KPI看板"
    await browser.click("a.lang")
    await browser.until(lambda d: d.find_element(By.CSS_SELECTOR, '[data-nav="kpi"]').text == "KPI board", "English")
    await browser.screenshot("kpi-english")
    await browser.click("a.lang")
    await browser.until(lambda d: d.find_element(By.CSS_SELECTOR, '[data-nav="kpi"]').text == "KPI看板", "Chinese")
    assert await browser.console_errors() == []


async def test_the_figures_on_the_pages_are_the_reports_figures_for_the_same_filter(system, browser) -> None:
    supervisor, reps = supervisor_with_reps(system)
    actor = supervisor.actor()
    await browser.sign_in(supervisor)
    await browser.open("/kpi?preset=last_30_days")
    first, last = await browser.field("from"), await browser.field("to")
    window = {"from": first, "to": last}
    shown = await browser.table("kpi")
    board = {i["rep_id"]: i for i in await system.report(actor, "/reports/kpi", **window, group_by="rep")}
    sales = {
        i["rep_id"]: i for i in await system.report(actor, "/reports/sales", **window, period="total", group_by="rep")
    }
    collected = {i["rep_id"]: i for i in await system.report(actor, "/reports/collections", **window, group_by="rep")}
    assert set(board) <= set(shown) and {r.staff_id for r in reps} >= set(shown) - {""}
    names = {p.staff_id: p.name for p in system.plan.organisation.staff}
    for rep_id, row in shown.items():
        item = board.get(rep_id, {})
        assert row["name"] == names[rep_id]
        assert number_of(row["done"]) == item.get("done", 0)
        assert number_of(row["planned"]) == item.get("planned", 0)
        for figure in ("visit_success", "required_sku_distribution", "on_time_delivery"):
            value = item.get("kpis", {}).get(figure, {}).get("value")
            assert percent_of(row[figure]) == (None if value is None else round(value * 100, 1)), (rep_id, figure)
        assert fen_of(row["net_sales"]) == sales.get(rep_id, {}).get("amount_fen", 0)
        assert fen_of(row["collected"]) == collected.get(rep_id, {}).get("collected_fen", 0)
    [total] = await system.report(actor, "/reports/kpi", **window, group_by="total")
    assert number_of(await browser.text('[data-card="done"] .card-value')) == total["done"]

    await browser.open(f"/sales?preset=last_30_days&dim=customer&period=week&district_id={supervisor.district_id}")
    shown = await browser.table("sales-by-customer")
    rows = await system.report(
        actor, "/reports/sales", **window, period="total", group_by="customer", district_id=supervisor.district_id
    )
    assert {k: fen_of(v["amount_fen"]) for k, v in shown.items()} == {r["customer_id"]: r["amount_fen"] for r in rows}
    weeks = await system.report(actor, "/reports/sales", **window, period="week", district_id=supervisor.district_id)
    shown = await browser.table("sales-per-week")
    assert {k: fen_of(v["amount_fen"]) for k, v in shown.items()} == {w["period_start"]: w["amount_fen"] for w in weeks}

    await browser.open("/receivables")
    shown = await browser.table("receivables-by-customer")
    ageing = await system.report(actor, "/reports/receivables", group_by="customer")
    buckets = ("not_due", "d1_30", "d31_60", "d61_90", "d90_plus", "open_fen", "past_due_fen")
    assert {k: tuple(fen_of(v[b]) for b in buckets) for k, v in shown.items()} == {
        r["customer_id"]: tuple(r[b] for b in buckets) for r in ageing
    }
    assert await browser.console_errors() == []


async def test_a_rep_cannot_reach_another_reps_board(system, browser) -> None:
    org = system.plan.organisation
    reps = [p for p in org.staff if p.role == "rep"]
    me, other = reps[0], reps[1]
    await browser.sign_in(me)
    await browser.open("/kpi?preset=last_30_days")
    assert set(await browser.table("kpi")) <= {me.staff_id}
    for path in (f"/kpi?rep_id={other.staff_id}", f"/sales?rep_id={other.staff_id}&dim=rep"):
        await browser.open(path)
        alert = (await browser.all("[data-error-status]"))[0]
        assert await browser.call(alert.get_attribute, "data-error-status") == "403", path
        assert await browser.call(alert.get_attribute, "data-error-code") == "outside_line", path
        assert not await browser.all("table[data-table]"), path
        assert other.name not in await browser.text("main"), path
    # The filter offers the rep nobody else.
    options = await browser.all('select[name="rep_id"] option')
    assert [await browser.call(o.get_attribute, "value") for o in options] == ["", me.staff_id]
    # The CSV of the other rep is refused alike.
    cookie = await browser.call(browser.driver.get_cookie, "console_session")
    async with httpx.AsyncClient(base_url=system.console_url, cookies={"console_session": cookie["value"]}) as http:
        refused = await http.get("/kpi.csv", params={"rep_id": other.staff_id})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "outside_line"
        own = await http.get("/kpi.csv")
        assert own.status_code == 200 and other.staff_id not in own.text
    assert [m for m in await browser.console_errors() if "403" not in m] == []


async def test_decisions_made_on_the_approvals_page_reach_the_services(system, browser) -> None:
    org = system.plan.organisation
    supervisor, reps = supervisor_with_reps(system)
    rep = reps[0]
    customers = orderable(system, rep)
    sku = org.skus[0]
    # Two orders over the approval threshold (5,000 yuan), one to approve and one to reject; the
    # service says whose decision they wait for.
    quantity = 600_000 // sku.list_price_fen
    orders = [
        await system.command(
            "orders",
            rep.actor(),
            "place_order",
            {"customer_id": customers[0].customer_id, "lines": [{"sku": sku.sku, "quantity": quantity + n}]},
        )
        for n in range(2)
    ]
    assert all(o["status"] == "pending_approval" for o in orders), orders
    assert orders[0]["required_role"] == orders[1]["required_role"], orders
    approver_of = {
        "supervisor": supervisor,
        "area_manager": org.manager_of_area(rep.area_id),
        "sales_manager": org.sales_manager,
        "general_manager": org.general_manager,
    }
    approver = approver_of[orders[0]["required_role"]]
    await browser.sign_in(approver)
    await browser.open("/approvals")
    for order in orders:
        await browser.until(
            lambda d, oid=order["order_id"]: d.find_elements(By.CSS_SELECTOR, f'tr[data-key="{oid}"]'),
            "the orders in the queue",
        )
    row = f'[data-queue="order"] tr[data-key="{orders[0]["order_id"]}"]'
    assert await browser.text(f'{row} [data-col="customer"]') == customers[0].name
    assert fen_of(await browser.text(f'{row} [data-col="amount_fen"]')) == orders[0]["amount_fen"]
    await browser.click(f'{row} form[data-decision="approve"] button')
    await browser.until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-flash="ok"]'), "the approval confirmed")
    rejected = f'[data-queue="order"] tr[data-key="{orders[1]["order_id"]}"]'

    def reject_with_reason() -> None:
        form = browser.driver.find_element(By.CSS_SELECTOR, f'{rejected} form[data-decision="reject"]')
        form.find_element(By.NAME, "reason").send_keys("客户信用待核实")
        form.find_element(By.CSS_SELECTOR, "button").click()

    await browser.call(reject_with_reason)
    await browser.until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-flash="ok"]'), "the rejection confirmed")
    assert not await browser.all(row) and not await browser.all(rejected)

    first = (await system.api("orders", approver.actor(), f"/orders/{orders[0]['order_id']}"))["order"]
    second = (await system.api("orders", approver.actor(), f"/orders/{orders[1]['order_id']}"))["order"]
    assert (first["status"], first["approved_by"]) == ("confirmed", approver.staff_id)
    assert (second["status"], second["reject_reason"]) == ("rejected", "客户信用待核实")

    # An unplanned visit the supervisor approves; the visit service records the approver.
    tomorrow = (business_date(datetime.now(UTC), TIMEZONE) + timedelta(days=1)).isoformat()
    visit = await system.command(
        "visit",
        rep.actor(),
        "request_unplanned_visit",
        {"customer_id": customers[-1].customer_id, "business_date": tomorrow},
    )
    await browser.sign_in(supervisor)
    await browser.open("/approvals")
    row = f'[data-queue="visit"] tr[data-key="{visit["visit_id"]}"]'
    await browser.click(f'{row} form[data-decision="approve"] button')
    await browser.until(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-flash="ok"]'), "the visit approved")
    card = await system.api("visit", supervisor.actor(), f"/visits/{visit['visit_id']}")
    assert card["approval"]["status"] == "approved" and card["approval"]["approver_id"] == supervisor.staff_id

    # A decision the service refuses (the supervisor may not approve a sales manager's order) is
    # shown with the service's code, and changes nothing.
    big = await system.command(
        "orders",
        rep.actor(),
        "place_order",
        {"customer_id": customers[0].customer_id, "lines": [{"sku": sku.sku, "quantity": 200_000}]},
    )
    assert big["required_role"] in ("area_manager", "sales_manager", "general_manager"), big
    await browser.open(f"/approvals?role={big['required_role']}")
    assert await browser.all('[data-queue="order"] [data-error-status="403"]')
    assert await browser.console_errors() == [] or all("403" in m for m in await browser.console_errors())


async def test_the_kpi_board_follows_a_new_delivery_without_a_reload(system, browser) -> None:
    org = system.plan.organisation
    supervisor, reps = supervisor_with_reps(system)
    rep = reps[0]
    customer = orderable(system, rep)[0]
    await browser.sign_in(supervisor)
    await browser.open("/kpi?preset=today")
    before = fen_of((await browser.table("kpi")).get(rep.staff_id, {}).get("net_sales", "¥0.00"))
    await browser.js("window.__sameDocument = 'yes'")
    sku = org.skus[1]
    order = await system.command(
        "orders",
        rep.actor(),
        "place_order",
        {"customer_id": customer.customer_id, "lines": [{"sku": sku.sku, "quantity": 3}]},
    )
    assert order["status"] == "confirmed", order
    logistics = org.logistics.actor()
    await system.command("orders", logistics, "dispatch_order", {"order_id": order["order_id"]})
    await system.command("orders", logistics, "deliver_order", {"order_id": order["order_id"]})

    def shows_the_delivery(driver: WebDriver) -> bool:
        cells = driver.find_elements(
            By.CSS_SELECTOR, f'table[data-table="kpi"] tr[data-key="{rep.staff_id}"] [data-col="net_sales"]'
        )
        return bool(cells) and fen_of(cells[0].text) == before + order["amount_fen"]

    await browser.until(shows_the_delivery, "the board shows the new delivery", timeout=30)
    assert await browser.js("return window.__sameDocument") == "yes"
    assert int(await browser.js("return document.getElementById('content').getAttribute('data-refreshed')")) >= 1
    assert re.search(r"\d", await browser.text("#updated"))
    await browser.screenshot("kpi-after-delivery")
    assert await browser.console_errors() == []


async def test_forms_without_their_csrf_token_change_nothing(system) -> None:
    supervisor, reps = supervisor_with_reps(system)
    sku = system.plan.organisation.skus[0]
    order = await system.command(
        "orders",
        reps[0].actor(),
        "place_order",
        {
            "customer_id": orderable(system, reps[0])[0].customer_id,
            "lines": [{"sku": sku.sku, "quantity": 600_000 // sku.list_price_fen}],
        },
    )
    async with httpx.AsyncClient(base_url=system.console_url) as http:
        refused = await http.post("/login", data={"staff_id": supervisor.staff_id})
        assert refused.status_code == 403 and "console_session" not in refused.cookies
        page = await http.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        signed = await http.post("/login", data={"staff_id": supervisor.staff_id, "csrf": csrf})
        assert signed.status_code == 303 and http.cookies.get("console_session")
        decision = {"kind": "order", "id": order["order_id"], "decision": "approve"}
        assert (await http.post("/approvals/decide", data=decision)).status_code == 403
        assert (await http.post("/approvals/decide", data={**decision, "csrf": "forged"})).status_code == 403
    after = (await system.api("orders", supervisor.actor(), f"/orders/{order['order_id']}"))["order"]
    assert after["status"] == "pending_approval"


async def test_behind_an_authenticating_proxy_the_header_token_is_the_viewer(system) -> None:
    """A deployment: no local sign-in; the proxy in front sets the viewer's platform token."""
    settings = ConsoleSettings(
        customer_url="http://customer",
        visit_url="http://visit",
        orders_url="http://orders",
        reporting_url="http://reporting",
        nats_url="nats://127.0.0.1:9",  # the feed waits; pages are served
        jwks=TEST_JWKS,
        token_header="X-Forwarded-Access-Token",
    )
    supervisor, _ = supervisor_with_reps(system)
    async with running(settings, clients={n: s.http for n, s in system.services.items()}) as (_, app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as http:
            anonymous = await http.get("/kpi")
            assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
            sign_in = await http.get("/login")
            assert "data-staff" not in sign_in.text and "OIDC" in sign_in.text
            forged = mint(Actor(id="x", role=Role.sales_manager), SigningKey.generate(SIGNING_KEY.kid))
            assert (await http.get("/kpi", headers={"X-Forwarded-Access-Token": forged})).status_code == 303
            token = mint(supervisor.actor(), SIGNING_KEY)
            board = await http.get("/kpi", headers={"X-Forwarded-Access-Token": f"Bearer {token}"})
            assert board.status_code == 200 and f'data-viewer="{supervisor.staff_id}"' in board.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', sign_in.text).group(1)
            local = await http.post("/login", data={"staff_id": supervisor.staff_id, "csrf": csrf})
            assert local.status_code == 403 and "console_session" not in local.cookies
            ready = await http.get("/health/ready")
            assert ready.status_code == 503 and ready.json()["checks"] == {"nats": False}


# -- the sales office and field work ---------------------------------------------------------------

OFFICE_PAGES = ("office", "units", "office_reports")
FIELD_PAGES = ("check_ins", "photos")


def office_people(system: System) -> Any:
    office = system.plan.organisation.office
    assert office is not None, "the simulated department has a sales office"
    return office


async def drawn_without_errors(browser: Browser, page: str) -> None:
    assert not await browser.all("[data-error-status]"), f"{page}: {await browser.text('main')}"
    assert await browser.all(".chart"), page
    await browser.until(
        lambda d: all(
            c.get_attribute("data-drawn") == "true" and c.find_elements(By.CSS_SELECTOR, "canvas")
            for c in d.find_elements(By.CSS_SELECTOR, ".chart")
        ),
        f"{page}: every chart drawn",
    )


async def test_the_office_and_field_pages_render_without_console_errors(system, browser) -> None:
    office = office_people(system)
    await browser.sign_in(office.supervisor)
    for page in OFFICE_PAGES:
        await browser.open(f"/{page}")
        await drawn_without_errors(browser, page)
        assert await browser.field("project_id") == office.project_id
        if page != "units":  # the units come from the orders service: not a report, not live
            await browser.until(lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "on", "live")
        await browser.screenshot(page)
        assert await browser.console_errors() == [], page
    supervisor, _ = supervisor_with_reps(system)
    await browser.sign_in(supervisor)
    for page in FIELD_PAGES:
        await browser.open(f"/{page}?preset=last_30_days&status=all")
        await drawn_without_errors(browser, page)
        if page == "photos":
            # The photos are shown: each image came through the console and decoded.
            images = await browser.all('table[data-table="photo-review"] img.thumb')
            assert images, "the simulated department took photos of displays"
            await browser.until(
                lambda d, images=images: all(
                    d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i) for i in images
                ),
                "every photo loaded",
            )
        await browser.screenshot(page)
        assert await browser.console_errors() == [], page
    # English on request.
    await browser.click("a.lang")
    await browser.until(lambda d: d.find_element(By.CSS_SELECTOR, '[data-nav="photos"]').text == "Photo review", "en")
    await browser.screenshot("photos-english")
    await browser.click("a.lang")
    assert await browser.console_errors() == []


async def test_the_office_pages_show_the_services_figures(system, browser) -> None:
    office = office_people(system)
    actor = office.supervisor.actor()
    today = business_date(datetime.now(UTC), TIMEZONE).isoformat()
    project = office.project_id
    await browser.sign_in(office.supervisor)

    await browser.open(f"/office?project_id={project}&date={today}")
    board = await system.api("customer", actor, f"/offices/{project}/board", date=today)
    shown = await browser.table("office-rotation")
    assert set(shown) == {r["rep_id"] for r in board["reps"]}
    for r in board["reps"]:
        row = shown[r["rep_id"]]
        assert row["name"] == r["name"]
        assert (number_of(row["turns"]), number_of(row["duty_receptions"])) == (r["turns"], r["duty_receptions"])
    for count in ("walk_ins", "calls", "new_customers", "duty_receptions"):
        assert number_of(await browser.text(f'[data-card="{count}"] .card-value')) == board["counts"][count], count
    if board["next_in_turn"]:
        names = {r["rep_id"]: r["name"] for r in board["reps"]}
        assert await browser.text('[data-card="next_in_turn"] .card-value') == names[board["next_in_turn"]]
    for register in ("walk_in", "phone"):
        lines = await system.api(
            "customer", actor, f"/offices/{project}/registers/{register}", date_from=today, date_to=today, limit=200
        )
        shown = await browser.table(f"register-{register}")
        assert sorted(int(k) for k in shown) == sorted(line["entry_no"] for line in lines["items"]), register
        for line in lines["items"]:
            assert shown[str(line["entry_no"])]["rep"] == line["rep_name"]
    leads = [
        lead
        for stage in ("walk_in", "phone")
        for lead in (await system.api("customer", actor, "/leads", project_id=project, stage=stage, limit=200))["items"]
        if lead["come_to_see_by"] or lead["follow_up_by"]
    ]
    assert set(await browser.table("follow-ups-due")) == {lead["lead_id"] for lead in leads}

    await browser.open(f"/units?project_id={project}&date={today}")
    units = await system.api("orders", actor, f"/projects/{project}/units", limit=2000)
    shown = await browser.table("units")
    assert set(shown) == {u["unit_id"] for u in units["items"][:200]}
    for unit in units["items"][:200]:
        assert shown[unit["unit_id"]]["total_price_fen"] == yuan(unit["total_price_fen"])  # none unpriced: —
    counts = units["counts"]
    assert number_of(await browser.text('[data-card="available"] .card-value')) == counts.get("available", 0)
    sold = sum(counts.get(s, 0) for s in ("contracted", "mortgage", "handed_over"))
    assert number_of(await browser.text('[data-card="sold"] .card-value')) == sold
    control = await system.api("orders", actor, f"/projects/{project}/sales-control", date=today)
    assert len(await browser.table("sales-control-changes")) == len(control["changes"])
    # Every unit is in the CSV, the price in yuan.
    cookie = await browser.call(browser.driver.get_cookie, "console_session")
    async with httpx.AsyncClient(base_url=system.console_url, cookies={"console_session": cookie["value"]}) as http:
        csv = await http.get("/units.csv", params={"project_id": project, "table": "units"})
        assert csv.status_code == 200 and len(csv.text.strip().splitlines()) == 1 + units["total"]

    await browser.open(f"/office_reports?project_id={project}&preset=today")
    leads_report = await system.report(
        actor, "/reports/office-leads", project_id=project, group_by="rep", **{"from": today, "to": today}
    )
    shown = await browser.table("office-leads")
    assert set(shown) == {r["rep_id"] for r in leads_report}
    for r in leads_report:
        figures = tuple(number_of(shown[r["rep_id"]][k]) for k in ("calls", "walk_ins", "deposits", "subscriptions"))
        assert figures == (r["calls"], r["walk_ins"], r["deposits"], r["subscriptions"]), r["rep_id"]
    closes = await system.report(actor, "/reports/daily-close", project_id=project, date=today)
    shown = await browser.table("daily-close")
    assert {k: fen_of(v["amount_fen"]) for k, v in shown.items()} == {
        c["rep_id"]: c["result"]["amount_fen"] for c in closes
    }
    claims = await system.report(actor, "/reports/weekly-targets", project_id=project, week=today)
    shown = await browser.table("weekly-targets")
    assert {k: number_of(v["claimed_subscriptions"]) for k, v in shown.items()} == {
        c["rep_id"]: c["claimed_subscriptions"] for c in claims
    }
    by_layout = await system.report(
        actor, "/reports/office-sales", project_id=project, group_by="layout", **{"from": today, "to": today}
    )
    shown = await browser.table("office-sales-by-layout")
    assert by_layout and {k: fen_of(v["subscribed_amount_fen"]) for k, v in shown.items()} == {
        r["layout_name"]: r["subscribed_amount_fen"] for r in by_layout
    }
    inventory = await system.report(actor, "/reports/unit-inventory", project_id=project, group_by="building")
    shown = await browser.table("unit-inventory")
    assert {k: number_of(v["available"]) for k, v in shown.items()} == {
        str(r["building"]): r["available"] for r in inventory
    }
    assert await browser.console_errors() == []


async def test_the_office_reports_follow_a_new_call_without_a_reload(system, browser) -> None:
    office = office_people(system)
    project = office.project_id
    await browser.sign_in(office.supervisor)
    await browser.open(f"/office_reports?project_id={project}&preset=today")
    await browser.until(lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "on", "live")
    before = {k: number_of(v["calls"]) for k, v in (await browser.table("office-leads")).items()}
    await browser.js("window.__sameDocument = 'yes'")
    reply = await system.command(
        "customer",
        office.front_desk.actor(),
        "receive_phone_enquiry",
        {"project_id": project, "phone": f"139{secrets.randbelow(10**8):08d}", "name": "来电测试"},
    )
    rep = reply["rep_id"]

    def shows_the_call(driver: WebDriver) -> bool:
        cells = driver.find_elements(
            By.CSS_SELECTOR, f'table[data-table="office-leads"] tr[data-key="{rep}"] [data-col="calls"]'
        )
        return bool(cells) and number_of(cells[0].text) == before.get(rep, 0) + 1

    await browser.until(shows_the_call, "the register shows the new call", timeout=30)
    assert await browser.js("return window.__sameDocument") == "yes"
    assert await browser.console_errors() == []


async def test_the_field_pages_show_the_visit_services_figures(system, browser) -> None:
    supervisor, _ = supervisor_with_reps(system)
    actor = supervisor.actor()
    await browser.sign_in(supervisor)
    await browser.open("/check_ins?preset=last_30_days")
    window = {"from": await browser.field("from"), "to": await browser.field("to")}
    flagged = await system.api("visit", actor, "/check-ins/flagged", **window)
    shown = await browser.table("flagged-check-ins")
    assert set(shown) == {c["visit_id"] for c in flagged["check_ins"]}
    assert flagged["check_ins"], "the simulated department fakes some check-ins"
    names = {p.staff_id: p.name for p in system.plan.organisation.staff}
    for c in flagged["check_ins"]:
        row = shown[c["visit_id"]]
        assert row["rep"] == names[c["rep_id"]]
        distance = row["distance_m"].strip()
        assert (None if distance == "—" else number_of(distance)) == (
            None if c["distance_m"] is None else round(c["distance_m"])
        )
    assert len(await browser.table("repeated-coordinates")) == len(flagged["repeated_coordinates"])
    assert number_of(await browser.text('[data-card="flagged_check_ins"] .card-value')) == len(flagged["check_ins"])

    await browser.open("/photos?preset=last_30_days&status=all")
    review = await system.api("visit", actor, "/photos/review", **window, status="all")
    shown = await browser.table("photo-review")
    assert set(shown) == {p["photo_id"] for p in review["photos"]} and review["photos"]
    # The image the console serves is the visit service's, byte for byte; without a session,
    # nothing.
    photo = review["photos"][0]
    original = await system.services["visit"].http.get(
        photo["content_url"], headers={"Authorization": f"Bearer {system.token(actor)}"}
    )
    assert original.status_code == 200
    cookie = await browser.call(browser.driver.get_cookie, "console_session")
    path = f"/photos/{photo['visit_id']}/{photo['photo_id']}"
    async with httpx.AsyncClient(base_url=system.console_url, cookies={"console_session": cookie["value"]}) as http:
        shown_image = await http.get(path)
        assert shown_image.status_code == 200 and shown_image.content == original.content
        assert shown_image.headers["content-type"] == photo["content_type"]
    async with httpx.AsyncClient(base_url=system.console_url) as http:
        anonymous = await http.get(path)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "missing_token"
    assert await browser.console_errors() == []


async def test_a_rep_cannot_reach_a_supervisors_field_pages(system, browser) -> None:
    supervisor, reps = supervisor_with_reps(system)
    rep = reps[0]
    today = business_date(datetime.now(UTC), TIMEZONE)
    window = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
    review = await system.api("visit", supervisor.actor(), "/photos/review", status="all", **window)
    others = [p for p in review["photos"] if p["rep_id"] != rep.staff_id]
    await browser.sign_in(rep)
    for page in FIELD_PAGES:
        await browser.open(f"/{page}?preset=last_30_days")
        alert = (await browser.all("[data-error-status]"))[0]
        assert await browser.call(alert.get_attribute, "data-error-status") == "403", page
        assert await browser.call(alert.get_attribute, "data-error-code") != "", page
        assert not await browser.all("table[data-table]"), page
    cookie = await browser.call(browser.driver.get_cookie, "console_session")
    async with httpx.AsyncClient(base_url=system.console_url, cookies={"console_session": cookie["value"]}) as http:
        for page in FIELD_PAGES:
            refused = await http.get(f"/{page}.csv")
            assert refused.status_code == 403, page
        if others:
            photo = others[0]
            refused = await http.get(f"/photos/{photo['visit_id']}/{photo['photo_id']}")
            assert refused.status_code == 403 and refused.json()["error"]["service"] == "visit"
    assert [m for m in await browser.console_errors() if "403" not in m] == []


async def test_an_office_rep_sees_the_office_with_their_own_register_lines(system, browser) -> None:
    office = office_people(system)
    today = business_date(datetime.now(UTC), TIMEZONE).isoformat()
    rep = office.reps[0]
    names = await system.api("customer", office.supervisor.actor(), "/staff", district_id=office.district_id)
    mine = next(s["name"] for s in names["items"] if s["staff_id"] == rep.staff_id)
    await browser.sign_in(rep)
    await browser.open(f"/office?project_id={office.project_id}&date={today}")
    assert not await browser.all("[data-error-status]"), await browser.text("main")
    own = await system.api(
        "customer",
        rep.actor(),
        f"/offices/{office.project_id}/registers/walk_in",
        date_from=today,
        date_to=today,
        limit=200,
    )
    shown = await browser.table("register-walk_in")
    assert sorted(int(k) for k in shown) == sorted(line["entry_no"] for line in own["items"])
    assert {row["rep"] for row in shown.values()} <= {mine}
    # The rotation is the office's: every rep signed in today.
    board = await system.api("customer", rep.actor(), f"/offices/{office.project_id}/board", date=today)
    assert set(await browser.table("office-rotation")) == {r["rep_id"] for r in board["reps"]}
    await browser.open(f"/units?project_id={office.project_id}")
    assert not await browser.all("[data-error-status]") and await browser.table("units")
    await browser.screenshot("office-rep")
    assert await browser.console_errors() == []
