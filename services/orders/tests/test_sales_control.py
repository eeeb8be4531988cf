"""Sales control through the real runtime (PostgreSQL, NATS): units and price lists, two
deposits racing for one unit (alone, in one batch, in concurrent batches), the 24-hour deposit,
the subscription unsigned and signed, who takes deposits, the daily check and the queries."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest_asyncio
from orders_testkit import (
    CUSTOMER_SERVICE,
    REP,
    SALES_MANAGER,
    SIGNING_KEY,
    SUPERVISOR,
    SYSTEM,
    feed_customers,
    ok,
    refused,
)

from orders_service.application.timers import check_deadlines
from orders_service.application.units import unit_claim
from orders_service.domain.policy import OrderPolicy
from salesplatform.auth import mint
from salesplatform.commands import Request
from salesplatform.events import Actor, Envelope, Role
from salesplatform.service import http_app
from salesplatform.uow import try_claims

OTHER_REP = Actor(id="r2", role=Role.rep, district="d1", area="a1")
FINANCE = Actor(id="finance", role=Role.system)
LEADS = {"L1": "r1", "L2": "r2", "L3": "r1"}


def customer_event(stream: str, version: int, event_type: str, data: dict[str, Any]) -> Envelope:
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    return Envelope(
        event_id=uuid.uuid4(),
        event_type=event_type,
        schema_version=1,
        stream_id=stream,
        stream_version=version,
        occurred_at=at,
        recorded_at=at,
        actor=CUSTOMER_SERVICE,
        data=data,
    )


def unit_spec(unit_no: str, layout: str = "A2", rooms: int = 3, area: str = "118.56") -> dict[str, Any]:
    return {
        "unit_id": f"P1-3-{unit_no}",
        "building": "3",
        "unit_no": unit_no,
        "floor": int(unit_no[:-2]),
        "layout_name": layout,
        "rooms": rooms,
        "halls": 2,
        "bathrooms": 2 if rooms > 2 else 1,
        "area_sqm": area,
        "orientation": "south_north",
        "position": "中间套",
    }


@pytest_asyncio.fixture
async def project(rt) -> None:
    """The sales office of P1 (district d1) and three of its leads, as the customer service said;
    four units of building 3, priced in the first release."""
    events = [
        customer_event(
            "sales_office-P1",
            1,
            "sales_office.opened",
            {"project_id": "P1", "name": "滨江一号", "district_id": "d1", "area_id": "a1", "division_id": "v1"},
        )
    ]
    for lead, rep in LEADS.items():
        events.append(
            customer_event(
                f"lead-{lead}",
                1,
                "lead.registered",
                {
                    "lead_id": lead,
                    "project_id": "P1",
                    "district_id": "d1",
                    "area_id": "a1",
                    "source": "walk_in",
                    "rep_id": rep,
                    "at": "2026-03-02T01:00:00+00:00",
                },
            )
        )
    await feed_customers(rt, events)
    units = [unit_spec("1201"), unit_spec("1202"), unit_spec("1501", "B1", 2, "89.10"), unit_spec("1801")]
    await ok(rt, "define_units", {"project_id": "P1", "units": units}, SALES_MANAGER)
    prices = [
        {"unit_id": u["unit_id"], "unit_price_fen": 24_000_00, "total_price_fen": 2_845_440_00}
        for u in units
        if u["unit_no"] != "1801"  # not in this release
    ]
    await ok(rt, "issue_price_list", {"project_id": "P1", "release": "一期一批", "prices": prices}, SALES_MANAGER)


def deposit(lead: str = "L1", unit: str = "P1-3-1201", amount: int = 50_000_00, **kw: Any) -> dict[str, Any]:
    return {
        "unit_id": unit,
        "lead_id": lead,
        "amount_fen": amount,
        "method": "transfer",
        "source_of_funds": "own_funds",
        **kw,
    }


async def reserved_events(rt, unit_id: str) -> int:
    async with rt.pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'unit.reserved'", f"unit-{unit_id}"
        )


async def test_two_deposits_racing_for_one_unit_the_first_wins(rt, project) -> None:
    outcomes = await asyncio.gather(
        rt.run_command("take_deposit", deposit("L1"), SALES_MANAGER),
        rt.run_command("take_deposit", deposit("L2"), SALES_MANAGER),
    )
    assert sorted(o.ok for o in outcomes) == [False, True]
    won, lost = (outcomes[0], outcomes[1]) if outcomes[0].ok else (outcomes[1], outcomes[0])
    assert (lost.status, lost.error.code) == (409, "unit_already_reserved")
    assert await reserved_events(rt, "P1-3-1201") == 1
    assert won.result["status"] == "reserved" and won.result["credited_rep_id"] == LEADS[won.result["lead_id"]]


async def test_two_deposits_for_one_unit_in_one_batch_the_first_wins(rt, project) -> None:
    outcomes = await rt.bus.dispatch_many(
        [
            Request("take_deposit", deposit("L1"), SALES_MANAGER),
            Request("take_deposit", deposit("L2"), SALES_MANAGER),
            Request("take_deposit", deposit("L2", "P1-3-1202"), SALES_MANAGER),
        ]
    )
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].error.code == "unit_already_reserved"
    assert await reserved_events(rt, "P1-3-1201") == 1


async def test_deposits_in_concurrent_batches_wait_for_the_units_claim(rt, project) -> None:
    """While another transaction holds the unit's claim, a deposit on it is not decided, alone or
    in a batch; once it commits, the first to go wins and the other finds the unit reserved."""
    async with rt.pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        assert await try_claims(holder, [unit_claim("P1-3-1201")]) == ["unit:P1-3-1201"]
        alone = asyncio.create_task(rt.run_command("take_deposit", deposit("L1"), SALES_MANAGER))
        batch = asyncio.create_task(
            rt.bus.dispatch_many(
                [
                    Request("take_deposit", deposit("L2"), SALES_MANAGER),
                    Request("take_deposit", deposit("L2", "P1-3-1202"), SALES_MANAGER),
                ]
            )
        )
        await asyncio.sleep(0.5)
        assert not alone.done()
        await tx.commit()
    first = await asyncio.wait_for(alone, 10)
    in_batch = await asyncio.wait_for(batch, 10)
    assert in_batch[1].ok  # the other unit was never held up
    assert sorted([first.ok, in_batch[0].ok]) == [False, True]
    assert await reserved_events(rt, "P1-3-1201") == 1


async def test_a_partial_deposit_not_completed_in_24_hours_is_flagged(rt, project, clock) -> None:
    taken = await ok(rt, "take_deposit", deposit(amount=20_000_00, agreed_fen=50_000_00), SALES_MANAGER)
    assert taken["deposit_due_by"] == (clock.now() + timedelta(hours=24)).isoformat()
    assert taken["receipt"]["amount_in_words"] == "人民币贰万元整" and taken["receipt"]["receipt_no"] == "P1-3-1201-D1"
    clock.advance(timedelta(hours=23))
    assert (await check_deadlines(rt)).of("flag_unit_deposit_overdue") == []
    clock.advance(timedelta(hours=2))
    assert (await check_deadlines(rt)).of("flag_unit_deposit_overdue") == ["P1-3-1201"]
    assert (await check_deadlines(rt)).of("flag_unit_deposit_overdue") == []  # flagged once
    await ok(rt, "take_deposit", deposit(amount=30_000_00), FINANCE)
    async with rt.pool.acquire() as conn:
        kinds = await conn.fetch(
            "SELECT event_type FROM events WHERE stream_id = 'unit-P1-3-1201' ORDER BY stream_version"
        )
    assert [k["event_type"] for k in kinds][-4:] == [
        "unit.deposit_received",
        "unit.deposit_overdue",
        "unit.deposit_received",
        "unit.deposit_completed",
    ]


async def test_a_subscription_is_valid_only_once_the_sales_manager_signs_it(rt, project) -> None:
    await ok(rt, "take_deposit", deposit(amount=50_000_00, agreed_fen=50_000_00), SALES_MANAGER)
    fill = {
        "unit_id": "P1-3-1201",
        "subscription_no": "RG-0001",
        "payment_plan": "mortgage",
        "contract_due_on": "2026-03-09",
    }
    assert await refused(rt, "fill_subscription", fill, OTHER_REP) == (403, "outside_line")  # not r1's deal
    assert await refused(rt, "fill_subscription", {**fill, "price_fen": 2_800_000_00}, REP) == (
        403,
        "beyond_rep_authority",
    )
    filled = await ok(rt, "fill_subscription", fill, REP)
    assert (filled["status"], filled["signed"]) == ("reserved", False)
    # Unsigned, it is not valid: no contract, and the unit is still only reserved.
    assert await refused(rt, "sign_contract", {"unit_id": "P1-3-1201", "contract_no": "HT-1"}, SALES_MANAGER) == (
        409,
        "subscription_not_signed",
    )
    assert await refused(rt, "sign_subscription", {"unit_id": "P1-3-1201"}, SUPERVISOR) == (403, "role_not_allowed")
    signed = await ok(rt, "sign_subscription", {"unit_id": "P1-3-1201"}, SALES_MANAGER)
    assert (signed["status"], signed["kept_by"], signed["credited_rep_id"]) == ("subscribed", "sm1", "r1")
    await ok(rt, "sign_contract", {"unit_id": "P1-3-1201", "contract_no": "HT-1"}, SALES_MANAGER)
    await ok(rt, "start_mortgage", {"unit_id": "P1-3-1201", "bank": "建设银行", "loan_fen": 1_900_000_00}, SYSTEM)
    done = await ok(rt, "hand_over", {"unit_id": "P1-3-1201"}, SYSTEM)
    assert done["status"] == "handed_over"
    assert await refused(rt, "take_deposit", deposit("L2"), SALES_MANAGER) == (409, "unit_already_reserved")


async def test_who_takes_deposits_and_who_sets_prices(rt, project) -> None:
    assert await refused(rt, "take_deposit", deposit(), REP) == (403, "not_a_deposit_taker")
    assert await refused(rt, "name_deposit_taker", {"project_id": "P1", "staff_id": "r1"}, SUPERVISOR) == (
        403,
        "role_not_allowed",
    )
    await ok(rt, "name_deposit_taker", {"project_id": "P1", "staff_id": "r1"}, SALES_MANAGER)
    await ok(rt, "take_deposit", deposit(), REP)
    assert await refused(rt, "take_deposit", deposit("L2", "P1-3-1801"), SALES_MANAGER) == (409, "unit_not_on_sale")
    assert await refused(rt, "take_deposit", deposit("L9", "P1-3-1202"), SALES_MANAGER) == (404, "unknown_lead")
    assert await refused(rt, "take_deposit", deposit(method="cheque"), SALES_MANAGER) == (422, "validation_failed")
    price = {
        "project_id": "P1",
        "release": "一期二批",
        "prices": [{"unit_id": "P1-3-1201", "unit_price_fen": 1, "total_price_fen": 1}],
    }
    for actor in (REP, SUPERVISOR, Actor(id="gm1", role=Role.general_manager), SYSTEM):
        assert (await refused(rt, "issue_price_list", price, actor))[0] == 403
    # A new price does not change a deal already made.
    raised = {
        **price,
        "prices": [{"unit_id": "P1-3-1201", "unit_price_fen": 26_000_00, "total_price_fen": 3_082_560_00}],
    }
    await ok(rt, "issue_price_list", raised, SALES_MANAGER)
    assert await refused(rt, "take_deposit", deposit(amount=1), SALES_MANAGER) == (409, "deposit_exceeds_agreed")
    fill = {"unit_id": "P1-3-1201", "subscription_no": "RG-7", "payment_plan": "full", "contract_due_on": "2026-03-09"}
    await ok(rt, "fill_subscription", fill, REP)
    signed = await ok(rt, "sign_subscription", {"unit_id": "P1-3-1201"}, SALES_MANAGER)
    async with rt.pool.acquire() as conn:
        price_now = await conn.fetchval(
            "SELECT data->>'price_fen' FROM events WHERE stream_id = 'unit-P1-3-1201' AND event_type = 'unit.subscribed'"
        )
    assert signed["status"] == "subscribed" and int(price_now) == 2_845_440_00


async def test_the_daily_check_recommendations_and_inventory_over_http(rt, project, clock) -> None:
    await ok(rt, "take_deposit", deposit(), SALES_MANAGER)
    await ok(rt, "take_deposit", deposit("L2", "P1-3-1202", amount=10_000_00, agreed_fen=50_000_00), SALES_MANAGER)
    await ok(
        rt, "release_reservation", {"unit_id": "P1-3-1202", "reason": "客户放弃", "deposit": "refunded"}, SALES_MANAGER
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(rt)), base_url="http://orders") as client:

        async def get(actor: Actor, path: str, **params: Any) -> httpx.Response:
            return await client.get(
                path, params=params, headers={"Authorization": f"Bearer {mint(actor, SIGNING_KEY)}"}
            )

        inventory = (await get(REP, "/projects/P1/units")).json()
        assert inventory["counts"] == {"reserved": 1, "available": 2, "unreleased": 1}
        assert [u["unit_no"] for u in inventory["items"]] == ["1201", "1202", "1501", "1801"]
        assert inventory["items"][0]["layout"] == "3室2厅2卫"
        outsider = Actor(id="r9", role=Role.rep, district="d9", area="a9")
        assert (await get(outsider, "/projects/P1/units")).status_code == 403

        check = (await get(SUPERVISOR, "/projects/P1/sales-control")).json()
        assert check["business_date"] == "2026-03-02" and check["counts"]["reserved"] == 1
        assert [c["unit_no"] for c in check["changes"] if c["event_type"] == "unit.priced"] == ["1201", "1202", "1501"]
        assert [(c["unit_no"], c["event_type"]) for c in check["changes"] if c["event_type"] != "unit.priced"] == [
            ("1201", "unit.reserved"),
            ("1201", "unit.deposit_received"),
            ("1201", "unit.deposit_completed"),
            ("1202", "unit.reserved"),
            ("1202", "unit.deposit_received"),
            ("1202", "unit.reservation_released"),
        ]
        await ok(
            rt,
            "check_sales_control",
            {"project_id": "P1", "discrepancies": [{"unit_id": "P1-3-1202", "note": "退定未见退款单"}]},
            REP,
        )
        check = (await get(REP, "/projects/P1/sales-control")).json()
        assert (
            check["checks"][0]["checked_by"] == "r1"
            and check["checks"][0]["discrepancies"][0]["unit_id"] == "P1-3-1202"
        )
        yesterday = (await get(REP, "/projects/P1/sales-control", date="2026-03-01")).json()
        assert yesterday["changes"] == []

        picks = (await get(REP, "/projects/P1/recommendations", rooms=3, area_min=100, area_max=130)).json()["layouts"]
        assert [p["layout_name"] for p in picks] == ["A2"] and picks[0]["available_units"] == 1  # 1201 is reserved
        due = (await get(SALES_MANAGER, "/projects/P1/deposits-due")).json()["items"]
        assert due == []  # 1202's partial deposit went with the release
        unit = (await get(REP, "/units/P1-3-1201")).json()
        assert (
            unit["receipts"][0]["amount_in_words"] == "人民币伍万元整"
            and unit["history"][0]["event_type"] == "unit.defined"
        )


async def test_the_daily_check_is_of_the_business_day_of_the_services_order_rules(rt, project) -> None:
    """The routes read the order rules of the running service per request: the day the check
    shows by default is today where the rules' time zone says (02:00 UTC is still the 1st of
    March in Los Angeles, the 2nd in Shanghai)."""
    app = http_app(rt)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://orders") as client:
        headers = {"Authorization": f"Bearer {mint(SUPERVISOR, SIGNING_KEY)}"}
        shanghai = (await client.get("/projects/P1/sales-control", headers=headers)).json()
        rt.definition = replace(rt.definition, rules=OrderPolicy(timezone="America/Los_Angeles"))
        pacific = (await client.get("/projects/P1/sales-control", headers=headers)).json()
    assert (shanghai["business_date"], pacific["business_date"]) == ("2026-03-02", "2026-03-01")
