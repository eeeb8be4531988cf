"""A message a consumer keeps failing on is dead-lettered with when it first failed, though the
service restarted in between: the first failure is kept in the service's database."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from tally import definition
from waiting import wait_for

from salesplatform.devstack.pytest_plugin import nats_credentials_for_tests, next_stream_message
from salesplatform.events import Actor, Role
from salesplatform.messaging import FirstFailures, ForeignEventConsumer
from salesplatform.nats_layout import api_prefix
from salesplatform.service import Runtime

REP = Actor(id="r1", role=Role.rep, district="d1")


class _RefusingPool:
    """A pool every acquisition of which fails, not for an outage: the copy never commits."""

    def acquire(self):
        raise ValueError("cannot keep this")


def _copier(board: Runtime, tally: Runtime) -> ForeignEventConsumer:
    """Board's consumer of tally's events, as a (re)started board makes it: nothing in memory."""
    consumer = ForeignEventConsumer(
        _RefusingPool(),
        board.nc.jetstream(prefix=api_prefix("tally")),
        board.dead_letters,
        source=tally.topology,
        consumer_service="board",
        batch_size=10,
        max_deliveries=3,
    )
    consumer.first_failures = FirstFailures(board.pool)
    return consumer


async def _kept(board: Runtime) -> list[datetime]:
    async with board.pool.acquire() as conn:
        return [r[0] for r in await conn.fetch("SELECT first_failed FROM processing_failures")]


async def test_a_dead_letter_keeps_its_first_failure_across_a_restart(service_settings, make_database) -> None:
    board_settings = service_settings.model_copy(
        update={"database_url": await make_database("board"), **nats_credentials_for_tests("board")}
    )
    async with (
        Runtime(definition("tally"), service_settings) as tally,
        Runtime(definition("board"), board_settings) as board,
    ):
        await tally.run_command("open_sheet", {"sheet_id": "s1", "title": "M"}, REP)
        first_run = _copier(board, tally)
        task = asyncio.create_task(first_run.run())
        try:
            await wait_for(lambda: _kept(board), timeout=20)  # failed once, retried later
        finally:
            first_run.stop()
            await asyncio.gather(task, return_exceptions=True)
        (first_failed,) = await _kept(board)
        await asyncio.sleep(1.0)
        restarted_at = time.time()

        again = _copier(board, tally)
        task = asyncio.create_task(again.run())
        try:
            dead = await next_stream_message(board.js, board.topology.dlq_stream, timeout=30)
        finally:
            again.stop()
            await asyncio.gather(task, return_exceptions=True)
    assert dead.headers["Dlq-Reason"] == "processing_failed" and dead.headers["Dlq-Deliveries"] == "3"
    assert datetime.fromisoformat(dead.headers["Dlq-First-Failed"]) == first_failed
    assert first_failed.timestamp() < restarted_at - 0.9
    assert datetime.fromisoformat(dead.headers["Dlq-Last-Failed"]).timestamp() >= restarted_at
