"""Logs: every line a service process writes is JSON (uvicorn's included, tracebacks as fields);
refused requests are logged without their token; every path carries a correlation id."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import httpx
import orjson
import pytest_asyncio
import structlog
from structlog.testing import capture_logs
from tally import SIGNING_KEY, definition

from salesplatform.auth import mint
from salesplatform.commands import Request
from salesplatform.events import Actor, Role
from salesplatform.service import Runtime, http_app

REP = Actor(id="r1", role=Role.rep, district="d1", area="a1")
CLERK = Actor(id="c1", role=Role.clerk)

# A real uvicorn server, configured as a service configures it, that serves one request that
# fails, one that succeeds, and stops.
SERVER = textwrap.dedent(
    """
    import asyncio, logging, socket
    import httpx, structlog, uvicorn
    from salesplatform.logging import configure_logging

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == "/boom":
            raise RuntimeError("the handler broke")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main():
        configure_logging("probe")
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=True, lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await client.get("/boom")
            await client.get("/fine")
        structlog.get_logger("probe").info("probe_done", answer=42)
        logging.getLogger("probe.stdlib").warning("plain %s", "words")
        server.should_exit = True
        await task

    asyncio.run(main())
    """
)


def test_every_line_of_a_real_server_is_json_with_tracebacks_as_fields() -> None:
    done = subprocess.run([sys.executable, "-c", SERVER], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert all(line["service"] == "probe" and "timestamp" in line and "level" in line for line in lines)
    [failure] = [line for line in lines if "exception" in line]
    assert failure["logger"] == "uvicorn.error" and failure["level"] == "error"
    [raised] = failure["exception"]
    assert raised["exc_type"] == "RuntimeError" and raised["exc_value"] == "the handler broke"
    assert raised["frames"] and "Traceback" not in done.stdout
    access = [line for line in lines if line.get("logger") == "uvicorn.access"]
    assert [a["event"].split('"')[1] for a in access] == ["GET /boom HTTP/1.1", "GET /fine HTTP/1.1"]
    assert any(
        line.get("event") == "plain words" and line["logger"] == "probe.stdlib" and line["level"] == "warning"
        for line in lines
    )
    assert any(line.get("event") == "probe_done" and line["answer"] == 42 for line in lines)


@pytest_asyncio.fixture
async def rt(service_settings):
    async with Runtime(definition(), service_settings) as runtime:
        yield runtime


@pytest_asyncio.fixture
async def http(rt):
    transport = httpx.ASGITransport(app=http_app(rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        yield client


async def test_refused_http_requests_are_logged_without_the_token(rt, http) -> None:
    token = mint(CLERK, SIGNING_KEY)
    with capture_logs() as logs:
        unauthenticated = await http.post("/commands/open_sheet", json={"sheet_id": "x", "title": "T"})
        forbidden = await http.post(
            "/commands/open_sheet",
            json={"sheet_id": "x", "title": "T"},
            headers={"Authorization": f"Bearer {token}", "X-Correlation-Id": "corr-403"},
        )
        missing = await http.get("/no/such/page", headers={"Authorization": f"Bearer {token}"})
    assert (unauthenticated.status_code, forbidden.status_code, missing.status_code) == (401, 403, 404)
    refused = [entry for entry in logs if entry["event"] == "request_refused"]
    assert [(r["status"], r["path"]) for r in refused] == [
        (401, "/commands/open_sheet"),
        (403, "/commands/open_sheet"),
        (404, "/no/such/page"),
    ]
    assert [r["code"] for r in refused[:2]] == ["missing_token", "role_not_allowed"]
    assert token not in repr(logs)


async def test_request_reply_and_ingest_carry_a_correlation_id(rt, outside) -> None:
    """A request without a Correlation-Id gets one: its log lines, its events and its result
    carry it; one that sends its own keeps it."""
    subject = rt.topology.subject("cmd", "open_sheet")
    with capture_logs() as logs:
        reply = await outside.request(
            subject, orjson.dumps({"sheet_id": "n1", "title": "T"}), headers={"Authorization": "Bearer x"}, timeout=10
        )
        assert orjson.loads(reply.data)["status"] == 401
        reply = await outside.request(
            subject,
            orjson.dumps({"sheet_id": "n1", "title": "T"}),
            headers={"Authorization": f"Bearer {mint(REP, SIGNING_KEY)}", "Correlation-Id": "corr-own"},
            timeout=10,
        )
        assert orjson.loads(reply.data)["ok"]
    [refused] = [e for e in logs if e["event"] == "command_refused"]
    assert refused["status"] == 401 and refused["transport"] == "nats" and refused["correlation_id"]
    assert "Bearer x" not in repr(logs)

    results = await outside.subscribe(rt.topology.subject("result", ">"))
    await outside.flush()
    await outside.jetstream().publish(
        rt.topology.subject("ingest", "open_sheet"),
        orjson.dumps({"sheet_id": "i1", "title": "T"}),
        headers={"Authorization": f"Bearer {mint(REP, SIGNING_KEY)}", "Idempotency-Key": str(uuid.uuid4())},
    )
    result = await results.next_msg(timeout=10)
    correlation_id = result.headers["Correlation-Id"]
    assert correlation_id
    async with rt.pool.acquire() as conn:
        rows = await conn.fetch("SELECT stream_id, correlation_id FROM events ORDER BY position")
    assert {r["stream_id"]: r["correlation_id"] for r in rows} == {
        "sheet-n1": "corr-own",
        "sheet-i1": correlation_id,
    }


async def test_a_commands_log_fields_do_not_outlive_it(rt) -> None:
    """A loop that runs one command after another (a group-commit worker) must not log the
    next one, or a batch, under the previous command's correlation id."""
    outcome = await rt.bus.dispatch(
        Request("open_sheet", {"sheet_id": "c1", "title": "T"}, REP, correlation_id="corr-first")
    )
    assert outcome.ok
    assert not {"command", "correlation_id", "actor_id"} & set(structlog.contextvars.get_contextvars())
