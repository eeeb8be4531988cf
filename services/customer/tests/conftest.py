"""Fixtures of the customer service's tests: a real runtime (PostgreSQL + NATS from the
platform's pytest plugin), a fixed clock, an HTTP client and a small territory with staff."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import pytest_asyncio

from customer_service.bootstrap import definition
from salesplatform.auth import mint
from salesplatform.clock import FixedClock
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY, ensure_streams_of, settings_for_tests
from salesplatform.events import Actor, Role
from salesplatform.service import Runtime, http_app
from salesplatform.settings import ServiceSettings

SIGNING_KEY = TEST_SIGNING_KEY
# An outside system (a CRM, a call centre) sending commands.
SYSTEM = Actor(id="crm", role=Role.system)
START = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # Monday 09:30 in Shanghai

# The territory of the tests: division N; areas A1 (districts D1, D2) and A2 (district D3).
PEOPLE = SimpleNamespace(
    r1=Actor(id="r1", role=Role.rep, district="D1", area="A1"),
    r2=Actor(id="r2", role=Role.rep, district="D1", area="A1"),
    r3=Actor(id="r3", role=Role.rep, district="D2", area="A1"),
    r4=Actor(id="r4", role=Role.rep, district="D3", area="A2"),
    s1=Actor(id="s1", role=Role.supervisor, district="D1", area="A1"),
    s2=Actor(id="s2", role=Role.supervisor, district="D2", area="A1"),
    s3=Actor(id="s3", role=Role.supervisor, district="D3", area="A2"),
    am1=Actor(id="am1", role=Role.area_manager, area="A1"),
    am2=Actor(id="am2", role=Role.area_manager, area="A2"),
    sm=Actor(id="sm", role=Role.sales_manager),
    gm=Actor(id="gm", role=Role.general_manager),
    clerk=Actor(id="k1", role=Role.clerk),
    inspector=Actor(id="i1", role=Role.inspector),
    system=SYSTEM,
)

OWNER = {
    "name": "王建国",
    "phone": "13812345678",
    "title": "老板",
    "personality": "直爽, 重面子",
    "hobbies": "钓鱼",
    "family": "妻子在店里帮忙, 儿子上大学",
    "education": "高中",
    "age": 52,
}


def make_outlet(**overrides: Any) -> dict[str, Any]:
    """A register_customer payload for a retail outlet."""
    payload: dict[str, Any] = {
        "name": "建国便利店",
        "address": "上海市浦东新区张杨路100号",
        "phone": "021-58881234",
        "nature": "company",
        "ownership": "private",
        "channel": "retail",
        "location_type": "residential",
        "source": "rep_visit",
        "base": {"industry": "便利店", "organisation_form": "个体工商户", "owner": OWNER},
        "characteristics": {"staff_count": 4, "annual_sales_fen": 120_000_000, "growth_potential": "medium"},
        "business_status": {"cooperation_attitude": "积极"},
        "trading_status": {"trade_terms": "现款"},
        "contacts": [{"name": "李小红", "phone": "13998765432", "role": "店长", "note": "下午在店"}],
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def outlet():
    """`outlet(**overrides)`: a register_customer payload."""
    return make_outlet


@pytest.fixture
def owner() -> dict[str, Any]:
    return dict(OWNER)


@pytest.fixture
def people() -> SimpleNamespace:
    return PEOPLE


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest_asyncio.fixture
async def service_settings(make_database, nats_url, unique_prefix) -> ServiceSettings:
    return settings_for_tests(await make_database("cust"), nats_url, unique_prefix, service="customer", pool_max=6)


@pytest_asyncio.fixture
async def rt(service_settings, clock):
    # The services this one consumes from exist in a running system; their streams are made
    # here so the runtime's consumers attach at once (waiting for a missing stream slows its
    # shutdown by seconds).
    await ensure_streams_of(service_settings.nats_url, service_settings.stream_prefix, ("visit", "orders"))
    async with Runtime(definition(), service_settings, clock=clock, run_timers=False) as runtime:
        yield runtime


class Api:
    """Commands and queries over HTTP as a given actor."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @staticmethod
    def headers(actor: Actor, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(actor, SIGNING_KEY)}", **extra}

    async def command(self, actor: Actor, name: str, payload: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.client.post(f"/commands/{name}", json=payload, headers=self.headers(actor, **headers))

    async def ok(self, actor: Actor, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        r = await self.command(actor, name, payload)
        assert r.status_code == 200, r.text
        return r.json()

    async def get(self, actor: Actor, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers(actor))


@pytest_asyncio.fixture
async def api(rt):
    transport = httpx.ASGITransport(app=http_app(rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://customer") as client:
        yield Api(client)


async def seed_territory(rt: Runtime) -> None:
    commands = [
        ("define_division", {"division_id": "N", "name": "华东分区"}),
        ("define_area", {"area_id": "A1", "name": "浦东片区", "division_id": "N"}),
        ("define_area", {"area_id": "A2", "name": "杭州片区", "division_id": "N"}),
        ("define_district", {"district_id": "D1", "name": "张江小区", "area_id": "A1"}),
        ("define_district", {"district_id": "D2", "name": "陆家嘴小区", "area_id": "A1"}),
        ("define_district", {"district_id": "D3", "name": "西湖小区", "area_id": "A2"}),
        ("assign_staff", {"staff_id": "s1", "name": "赵主任", "role": "supervisor", "district_id": "D1"}),
        ("assign_staff", {"staff_id": "s2", "name": "钱主任", "role": "supervisor", "district_id": "D2"}),
        ("assign_staff", {"staff_id": "s3", "name": "孙主任", "role": "supervisor", "district_id": "D3"}),
        ("assign_staff", {"staff_id": "am1", "name": "周经理", "role": "area_manager", "area_id": "A1"}),
        ("assign_staff", {"staff_id": "am2", "name": "吴经理", "role": "area_manager", "area_id": "A2"}),
        ("assign_staff", {"staff_id": "r1", "name": "郑一", "role": "rep", "district_id": "D1", "supervisor_id": "s1"}),
        ("assign_staff", {"staff_id": "r2", "name": "王二", "role": "rep", "district_id": "D1", "supervisor_id": "s1"}),
        ("assign_staff", {"staff_id": "r3", "name": "冯三", "role": "rep", "district_id": "D2", "supervisor_id": "s2"}),
        ("assign_staff", {"staff_id": "r4", "name": "陈四", "role": "rep", "district_id": "D3", "supervisor_id": "s3"}),
    ]
    for name, payload in commands:
        outcome = await rt.run_command(name, payload, SYSTEM)
        assert outcome.ok, (name, outcome.error.to_dict())


@pytest_asyncio.fixture
async def org(rt) -> SimpleNamespace:
    await seed_territory(rt)
    return PEOPLE


class Archive:
    """Shortcuts through the command bus for setting up cards."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def run(self, actor: Actor, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        outcome = await self.rt.run_command(name, payload, actor)
        assert outcome.ok, (name, outcome.error.to_dict())
        return outcome.result

    async def register(self, actor: Actor = PEOPLE.r1, **overrides: Any) -> str:
        return (await self.run(actor, "register_customer", make_outlet(**overrides)))["customer_id"]

    async def approved(self, actor: Actor = PEOPLE.r1, status: str = "active", **overrides: Any) -> str:
        customer_id = await self.register(actor, **overrides)
        await self.run(PEOPLE.sm, "approve_customer", {"customer_id": customer_id, "status": status})
        return customer_id


@pytest_asyncio.fixture
async def archive(rt, org) -> Archive:
    return Archive(rt)
