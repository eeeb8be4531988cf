"""The complaint handlers on the unit of work in memory (`salesplatform.testing`): the real bus
checks, handlers, aggregate and event registry, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from salesplatform.clock import FixedClock
from salesplatform.command import Outcome, Request
from salesplatform.commands import CommandBus
from salesplatform.events import Actor, Role
from salesplatform.testing import MemoryEventStore, MemoryUnitOfWork, NeedsDatabase, dispatch_in_memory
from visit_service.application.handlers import build_bus
from visit_service.domain.complaint import Complaint
from visit_service.domain.events import registry

pytestmark = pytest.mark.fast

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SUPERVISOR = Actor(id="s1", role=Role.supervisor, district="d1")
OTHER_SUPERVISOR = Actor(id="s2", role=Role.supervisor, district="d2")
REP = Actor(id="r1", role=Role.rep, district="d1")


@pytest.fixture
def bus() -> CommandBus:
    return build_bus(registry, FixedClock(NOW))


@pytest.fixture
def store() -> MemoryEventStore:
    return MemoryEventStore(registry)


async def send(
    bus: CommandBus, store: MemoryEventStore, command: str, actor: Actor = SUPERVISOR, /, **payload
) -> Outcome:
    return await dispatch_in_memory(bus, store, Request(command, payload, actor))


async def received(bus: CommandBus, store: MemoryEventStore, complaint_id: str = "c1") -> None:
    """A complaint of rep r1's customer in district d1, received an hour ago (its receipt reads
    the customer directory, so it is written here as the handler would write it)."""
    uow = MemoryUnitOfWork(store, bus.clock, REP)
    complaint = await uow.load(Complaint, complaint_id)
    complaint.receive(
        customer_id="k1",
        channel="phone",
        category="logistics",
        severity="high",
        received_at=NOW - timedelta(hours=1),
        rep_id="r1",
        description="two cases arrived crushed",
        district_id="d1",
        area_id="a1",
    )
    await uow.save(complaint)


async def test_a_complaint_goes_from_acknowledged_to_closed_in_order(bus, store) -> None:
    await received(bus, store)
    steps = [
        ("acknowledge_complaint", {}),
        ("route_complaint", {}),
        ("resolve_complaint", {"resolution": "replaced the two cases"}),
        ("close_complaint", {"customer_confirmed": True}),
    ]
    answers = [await send(bus, store, name, complaint_id="c1", **payload) for name, payload in steps]
    assert [a.error for a in answers] == [None] * 4
    assert [a.result["status"] for a in answers] == ["acknowledged", "routed", "resolved", "closed"]
    assert answers[1].result["department"] == "logistics"  # the category's department by default
    assert [e.event_type for e in store.stored("complaint-c1")] == [
        "complaint.received",
        "complaint.acknowledged",
        "complaint.routed",
        "complaint.resolved",
        "complaint.closed",
    ]
    acknowledged = store.stored("complaint-c1")[1]
    assert acknowledged.actor == SUPERVISOR
    assert (acknowledged.data["by"], acknowledged.data["within_sla"]) == ("s1", True)  # within 48 h


async def test_steps_out_of_order_are_refused_and_write_nothing(bus, store) -> None:
    await received(bus, store)
    written = len(store.log)
    resolve_first = await send(bus, store, "resolve_complaint", complaint_id="c1", resolution="done")
    route_first = await send(bus, store, "route_complaint", complaint_id="c1")
    close_first = await send(bus, store, "close_complaint", complaint_id="c1", customer_confirmed=True)
    assert [(a.status, a.error.code) for a in (resolve_first, route_first, close_first)] == [
        (409, "not_routed"),
        (409, "not_acknowledged"),
        (409, "not_resolved"),
    ]
    assert len(store.log) == written


async def test_outside_the_line_a_complaint_is_not_touched(bus, store) -> None:
    await received(bus, store)
    written = len(store.log)
    outside = await send(bus, store, "acknowledge_complaint", OTHER_SUPERVISOR, complaint_id="c1")
    unknown = await send(bus, store, "acknowledge_complaint", complaint_id="no-such")
    assert (outside.status, outside.error.code) == (403, "outside_line")
    assert unknown.status == 404
    assert len(store.log) == written


async def test_receiving_a_complaint_asks_the_customer_directory_in_the_database(bus, store) -> None:
    with pytest.raises(NeedsDatabase):
        await send(
            bus,
            store,
            "receive_complaint",
            REP,
            customer_id="k1",
            channel="phone",
            category="logistics",
            severity="high",
            description="two cases arrived crushed",
        )
    assert store.log == []
