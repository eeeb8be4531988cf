"""The territory and staff handlers on the unit of work in memory (`salesplatform.testing`):
the real bus checks, handlers, aggregates and event registry, no server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from customer_service.application.handlers import build_bus
from customer_service.domain.events import registry
from customer_service.domain.territory import StaffMember, TerritoryUnit
from salesplatform.clock import FixedClock
from salesplatform.command import Outcome, Request
from salesplatform.commands import CommandBus
from salesplatform.events import Actor, Role
from salesplatform.testing import MemoryEventStore, MemoryUnitOfWork, NeedsDatabase, dispatch_in_memory

pytestmark = pytest.mark.fast

MANAGER = Actor(id="m1", role=Role.sales_manager)
AREA_MANAGER = Actor(id="am1", role=Role.area_manager, area="a1")


@pytest.fixture
def bus() -> CommandBus:
    return build_bus(registry, FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)))


@pytest.fixture
def store() -> MemoryEventStore:
    return MemoryEventStore(registry)


async def send(bus: CommandBus, store: MemoryEventStore, command: str, actor: Actor = MANAGER, /, **payload) -> Outcome:
    return await dispatch_in_memory(bus, store, Request(command, payload, actor))


async def territory(bus: CommandBus, store: MemoryEventStore) -> None:
    """Division d1 with areas a1 and a2, district s1 in a1 and s2 in a2."""
    for command, payload in [
        ("define_division", {"division_id": "d1", "name": "East"}),
        ("define_area", {"area_id": "a1", "name": "Harbour", "division_id": "d1"}),
        ("define_area", {"area_id": "a2", "name": "Hills", "division_id": "d1"}),
        ("define_district", {"district_id": "s1", "name": "Quay", "area_id": "a1"}),
        ("define_district", {"district_id": "s2", "name": "Ridge", "area_id": "a2"}),
    ]:
        outcome = await send(bus, store, command, **payload)
        assert outcome.ok, (command, outcome)


async def test_a_manager_defines_division_area_and_district(bus, store) -> None:
    division = await send(bus, store, "define_division", division_id="d1", name="East")
    area = await send(bus, store, "define_area", area_id="a1", name="Harbour", division_id="d1")
    district = await send(bus, store, "define_district", district_id="s1", name="Quay", area_id="a1")
    assert (division.result, area.result, district.result) == (
        {"division_id": "d1", "version": 1},
        {"area_id": "a1", "version": 1},
        {"district_id": "s1", "version": 1},
    )
    assert [(e.stream_id, e.event_type) for e in store.log] == [
        ("territory-d1", "territory.division_defined"),
        ("territory-a1", "territory.area_defined"),
        ("territory-s1", "territory.district_defined"),
    ]
    loaded = await MemoryUnitOfWork(store, bus.clock, MANAGER).get(TerritoryUnit, "s1")
    assert (loaded.kind, loaded.name, loaded.area_id, loaded.division_id) == ("district", "Quay", "a1", "d1")


async def test_defining_again_renames_and_the_same_name_writes_nothing(bus, store) -> None:
    await territory(bus, store)
    written = len(store.log)
    same = await send(bus, store, "define_area", area_id="a1", name="Harbour", division_id="d1")
    renamed = await send(bus, store, "define_area", area_id="a1", name="Old Harbour", division_id="d1")
    assert same.result == {"area_id": "a1", "version": 1}
    assert renamed.result == {"area_id": "a1", "version": 2}
    assert len(store.log) == written + 1


async def test_a_unit_cannot_move_or_hang_from_what_does_not_exist(bus, store) -> None:
    await territory(bus, store)
    written = len(store.log)
    moved = await send(bus, store, "define_district", district_id="s1", name="Quay", area_id="a2")
    orphan = await send(bus, store, "define_area", area_id="a9", name="Nowhere", division_id="d9")
    not_an_area = await send(bus, store, "define_district", district_id="s9", name="Odd", area_id="d1")
    assert (moved.status, moved.error.code) == (409, "territory_parent_fixed")
    assert (orphan.status, orphan.error.code) == (409, "unknown_division")
    assert (not_an_area.status, not_an_area.error.code) == (409, "unknown_area")
    assert len(store.log) == written


async def test_only_those_who_keep_the_territory_define_it(bus, store) -> None:
    rep = Actor(id="r1", role=Role.rep, district="s1", area="a1")
    for actor in (rep, AREA_MANAGER):
        refused = await send(bus, store, "define_division", actor, division_id="d1", name="East")
        assert (refused.status, refused.error.code) == (403, "role_not_allowed")
    bad = await send(bus, store, "define_division", division_id="d1", name="")
    assert bad.status == 422
    assert store.log == []


async def test_an_area_manager_places_staff_in_their_own_area_only(bus, store) -> None:
    await territory(bus, store)
    written = len(store.log)
    outside = await send(
        bus, store, "assign_staff", AREA_MANAGER, staff_id="r2", name="Wei", role="rep", district_id="s2"
    )
    assert (outside.status, outside.error.code) == (403, "outside_line")
    assert len(store.log) == written


async def test_an_area_manager_may_not_take_staff_from_another_area(bus, store) -> None:
    await territory(bus, store)
    uow = MemoryUnitOfWork(store, bus.clock, MANAGER)
    staff = await uow.load(StaffMember, "r2")
    district, area = await uow.load(TerritoryUnit, "s2"), await uow.load(TerritoryUnit, "a2")
    staff.assign("Wei", "rep", district=district, area=area, supervisor=None, customers_owned=0)
    await uow.save(staff)
    written = len(store.log)
    taken = await send(
        bus, store, "assign_staff", AREA_MANAGER, staff_id="r2", name="Wei", role="rep", district_id="s1"
    )
    assert (taken.status, taken.error.code) == (403, "outside_line")
    assert len(store.log) == written


async def test_placing_staff_counts_their_customers_in_the_database(bus, store) -> None:
    """What a rep holds is asked of the archive's read model: not served in memory."""
    await territory(bus, store)
    with pytest.raises(NeedsDatabase):
        await send(bus, store, "assign_staff", staff_id="r2", name="Wei", role="rep", district_id="s1")
    assert store.version("staff-r2") == 0
