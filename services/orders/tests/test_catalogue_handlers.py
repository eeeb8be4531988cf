"""The catalogue handlers on the unit of work in memory (`salesplatform.testing`): the real bus
checks, handlers, aggregates and event registry, no server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orders_service.application.handlers import build_bus
from orders_service.domain.catalogue import Sku
from orders_service.domain.events import registry
from orders_service.domain.policy import OrderPolicy
from salesplatform.clock import FixedClock
from salesplatform.command import Outcome, Request
from salesplatform.commands import CommandBus
from salesplatform.events import Actor, Role
from salesplatform.testing import MemoryEventStore, MemoryResults, MemoryUnitOfWork, NeedsDatabase, dispatch_in_memory

pytestmark = pytest.mark.fast

MANAGER = Actor(id="m1", role=Role.sales_manager)
AREA_MANAGER = Actor(id="am1", role=Role.area_manager, area="a1")
TEA = {"sku": "TEA-500", "name": "Green tea 500 ml", "brand": "Hill", "product_group": "tea", "package": "bottle"}


@pytest.fixture
def bus() -> CommandBus:
    return build_bus(registry, FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)), OrderPolicy(), [])


@pytest.fixture
def store() -> MemoryEventStore:
    return MemoryEventStore(registry)


async def send(bus: CommandBus, store: MemoryEventStore, command: str, actor: Actor = MANAGER, /, **payload) -> Outcome:
    return await dispatch_in_memory(bus, store, Request(command, payload, actor))


async def sku(bus: CommandBus, store: MemoryEventStore, code: str) -> Sku:
    return await MemoryUnitOfWork(store, bus.clock, MANAGER).get(Sku, code)


async def test_a_sku_is_defined_once_with_its_default_prices(bus, store) -> None:
    defined = await send(bus, store, "define_sku", **TEA, list_price_fen=450, floor_price_fen=400)
    again = await send(bus, store, "define_sku", **TEA, list_price_fen=500, floor_price_fen=400)
    assert defined.result == {"sku": "TEA-500"}
    assert (again.status, again.error.code) == (409, "sku_exists")
    kept = await sku(bus, store, "TEA-500")
    assert (kept.prices_for(None), kept.prices_for("a1"), kept.version) == ((450, 400), (450, 400), 1)


async def test_a_floor_above_the_list_price_is_refused_and_nothing_written(bus, store) -> None:
    refused = await send(bus, store, "define_sku", **TEA, list_price_fen=400, floor_price_fen=450)
    invalid = await send(bus, store, "define_sku", **TEA, list_price_fen=0, floor_price_fen=0)
    assert (refused.status, refused.error.code) == (409, "floor_above_list")
    assert invalid.status == 422
    assert store.log == []


async def test_an_area_price_applies_in_its_area_only(bus, store) -> None:
    await send(bus, store, "define_sku", **TEA, list_price_fen=450, floor_price_fen=400)
    area = await send(
        bus, store, "set_sku_price", AREA_MANAGER, sku="TEA-500", area_id="a1", list_price_fen=480, floor_price_fen=420
    )
    same = await send(bus, store, "set_sku_price", sku="TEA-500", area_id="a1", list_price_fen=480, floor_price_fen=420)
    assert area.result == same.result == {"sku": "TEA-500", "area_id": "a1"}
    kept = await sku(bus, store, "TEA-500")
    assert (kept.prices_for("a1"), kept.prices_for("a2"), kept.version) == ((480, 420), (450, 400), 2)


async def test_an_area_manager_sets_prices_of_their_own_area_only(bus, store) -> None:
    await send(bus, store, "define_sku", **TEA, list_price_fen=450, floor_price_fen=400)
    other = await send(
        bus, store, "set_sku_price", AREA_MANAGER, sku="TEA-500", area_id="a2", list_price_fen=480, floor_price_fen=420
    )
    default = await send(
        bus, store, "set_sku_price", AREA_MANAGER, sku="TEA-500", list_price_fen=480, floor_price_fen=420
    )
    rep = await send(
        bus,
        store,
        "set_sku_price",
        Actor(id="r1", role=Role.rep),
        sku="TEA-500",
        list_price_fen=480,
        floor_price_fen=420,
    )
    assert [(o.status, o.error.code) for o in (other, default, rep)] == [
        (403, "outside_line"),
        (403, "outside_line"),
        (403, "role_not_allowed"),
    ]
    assert store.version("sku-TEA-500") == 1


async def test_pricing_an_unknown_sku_is_not_found(bus, store) -> None:
    unknown = await send(bus, store, "set_sku_price", sku="NONE", list_price_fen=480, floor_price_fen=420)
    assert (unknown.status, unknown.error.code) == (404, "sku_not_found")
    assert store.log == []


async def test_a_repeated_key_replays_the_first_answer(bus, store) -> None:
    results = MemoryResults()
    first = await dispatch_in_memory(
        bus,
        store,
        Request("define_sku", {**TEA, "list_price_fen": 450, "floor_price_fen": 400}, MANAGER, idempotency_key="k1"),
        results,
    )
    again = await dispatch_in_memory(
        bus,
        store,
        Request("define_sku", {**TEA, "list_price_fen": 450, "floor_price_fen": 400}, MANAGER, idempotency_key="k1"),
        results,
    )
    assert first.ok and again.replayed and again.result == first.result
    assert store.version("sku-TEA-500") == 1


async def test_the_required_skus_are_checked_against_the_catalogue_read_model(bus, store) -> None:
    """Which SKUs exist is asked of the catalogue's read model: not served in memory."""
    with pytest.raises(NeedsDatabase):
        await send(bus, store, "set_required_skus", channel="retail", skus=["TEA-500"])
