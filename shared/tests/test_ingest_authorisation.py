"""A queued command is authorised as of sending: its token is judged at the moment JetStream
stored the message, so an outage longer than the token's life does not turn the command into a
dead letter; within a maximum queue age."""

from __future__ import annotations

import asyncio

import orjson
from tally import SIGNING_KEY, definition
from waiting import wait_for

from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import next_stream_message, stream_messages
from salesplatform.events import Actor, Role
from salesplatform.service import Runtime

REP = Actor(id="r1", role=Role.rep, district="d1")


async def _opened(rt: Runtime, sheet_id: str) -> bool:
    async with rt.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", f"sheet-{sheet_id}") == 1


async def _send(outside, rt_topology, sheet_id: str, token: str) -> None:
    await outside.jetstream().publish(
        rt_topology.subject("ingest", "open_sheet"),
        orjson.dumps({"sheet_id": sheet_id, "title": "M"}),
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_command_whose_token_expires_while_it_waits_is_processed(service_settings, outside) -> None:
    """The service is down; a command is sent with a token valid for 2 s, which expires while
    the command waits; the service comes back and runs the command."""
    async with Runtime(definition(), service_settings) as rt:
        topology = rt.topology  # streams and the ingest consumer exist, as after any first start
    await _send(outside, topology, "waited", mint(REP, SIGNING_KEY, ttl_seconds=2))
    await asyncio.sleep(2.5)  # the token has expired; the command is still in the queue
    async with Runtime(definition(), service_settings) as rt:
        await wait_for(lambda: _opened(rt, "waited"), timeout=15)
        assert await stream_messages(rt.js, rt.topology.dlq_stream) == []
        assert rt.ingest.rejected == 0


async def test_a_command_sent_with_an_expired_token_is_refused(service_settings, outside) -> None:
    async with Runtime(definition(), service_settings) as rt:
        token = mint(REP, SIGNING_KEY, ttl_seconds=1)
        await asyncio.sleep(1.5)
        await _send(outside, rt.topology, "late", token)
        dead = await next_stream_message(rt.js, rt.topology.dlq_stream)
        assert dead.headers["Dlq-Reason"] == "rejected"
        assert orjson.loads(dead.headers["Dlq-Error"])["error"]["code"] == "invalid_token"
        assert not await _opened(rt, "late")


async def test_a_command_that_waited_longer_than_the_queue_allows_is_refused(service_settings, outside) -> None:
    """A command older than `<SERVICE>_INGEST_MAX_QUEUE_HOURS` is refused with its own code,
    even with a token still valid: the sender is told to send it again."""
    settings = service_settings.model_copy(update={"ingest_max_queue_hours": 1 / 3600})  # one second
    async with Runtime(definition(), settings) as rt:
        topology = rt.topology
    await _send(outside, topology, "stale", mint(REP, SIGNING_KEY))
    await asyncio.sleep(1.5)
    async with Runtime(definition(), settings) as rt:
        dead = await next_stream_message(rt.js, rt.topology.dlq_stream, timeout=15)
        error = orjson.loads(dead.headers["Dlq-Error"])["error"]
        assert (error["code"], dead.headers["Dlq-Reason"]) == ("queued_too_long", "rejected")
        assert "send it again" in error["message"]
        assert not await _opened(rt, "stale")
