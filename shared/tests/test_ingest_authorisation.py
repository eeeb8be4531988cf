"""A queued command is authorised as of sending: its token is judged at the moment JetStream
stored the message, so an outage longer than the token's life does not turn the command into a
dead letter; within a maximum queue age. Nor does a key set that cannot be fetched yet."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson
from tally import SIGNING_KEY, definition
from waiting import wait_for

from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import TEST_JWKS, next_stream_message, stream_messages
from salesplatform.devstack.servers import free_port
from salesplatform.events import Actor, Role
from salesplatform.service import Runtime, http_app

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


class _KeySetServer:
    """Serves the session's public key set at a URL, from when it is started."""

    def __init__(self, port: int) -> None:
        body = TEST_JWKS.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_commands_wait_while_the_key_set_cannot_be_fetched(service_settings, outside) -> None:
    """The key set's URL is unreachable from the start: nothing about a token can be known, so
    HTTP answers 503 and an ingested command waits (it is not dead-lettered) until the set is
    fetched, then runs."""
    port = free_port()
    settings = service_settings.model_copy(
        update={"jwks": None, "jwks_url": f"http://127.0.0.1:{port}/jwks.json", "jwks_refresh_seconds": 300}
    )
    async with Runtime(definition(), settings) as rt:
        assert (await rt.ready())["keys"] is False
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(rt)), base_url="http://svc") as http:
            r = await http.post(
                "/commands/open_sheet",
                json={"sheet_id": "http", "title": "M"},
                headers={"Authorization": f"Bearer {mint(REP, SIGNING_KEY)}"},
            )
        assert (r.status_code, r.json()["error"]["code"]) == (503, "keys_unavailable")
        await _send(outside, rt.topology, "waiting", mint(REP, SIGNING_KEY))
        await asyncio.sleep(2.0)
        assert not await _opened(rt, "waiting")
        server = _KeySetServer(port)
        try:
            await wait_for(lambda: _opened(rt, "waiting"), timeout=60)
        finally:
            server.close()
        assert await stream_messages(rt.js, rt.topology.dlq_stream) == []
        assert rt.ingest.rejected == 0 and (await rt.ready())["keys"] is True
