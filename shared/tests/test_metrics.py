"""`GET /metrics`: what operators scrape moves with what the service does, in the format and
units Prometheus expects."""

from __future__ import annotations

import asyncio
import re

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tally import SIGNING_KEY, definition
from waiting import wait_for

from salesplatform.auth import mint
from salesplatform.events import Actor, Role
from salesplatform.projections import rebuild_states
from salesplatform.service import Runtime, http_app

REP = Actor(id="r1", role=Role.rep, district="d1")


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample of `name` whose labels include `labels`."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match[1] != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(match[3])
    return None


async def test_metrics_follow_commands_backlogs_and_dead_letters(service_settings, outside) -> None:
    async with Runtime(definition(), service_settings) as rt:
        transport = httpx.ASGITransport(app=http_app(rt))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:

            async def scrape() -> str:
                r = await http.get("/metrics")
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
                return r.text

            before = await scrape()
            assert sample(before, "sales_outbox_pending", service="tally") == 0
            assert sample(before, "sales_log_head_position") == 0  # nothing appended yet
            assert sample(before, "sales_projection_positions_behind", projection="event_counts") == 0
            assert sample(before, "sales_commands_total", command="open_sheet") is None

            rt.relay.stop()  # what is committed now stays in the outbox
            await asyncio.sleep(0.1)
            headers = {"Authorization": f"Bearer {mint(REP, SIGNING_KEY)}"}
            for i in range(3):
                r = await http.post("/commands/open_sheet", json={"sheet_id": f"m{i}", "title": "M"}, headers=headers)
                assert r.status_code == 200
            r = await http.post("/commands/open_sheet", json={"sheet_id": "m0", "title": "M"}, headers=headers)
            assert r.status_code == 409
            await outside.jetstream().publish(
                rt.topology.subject("ingest", "open_sheet"), orjson.dumps({"sheet_id": 5}), headers=headers
            )

            async def rejected() -> bool:
                return sample(await scrape(), "sales_ingest_total", outcome="rejected") == 1

            await wait_for(rejected)
            after = await scrape()
            assert sample(after, "sales_commands_total", command="open_sheet", status="200") == 3
            assert sample(after, "sales_commands_total", command="open_sheet", status="409") == 1
            assert sample(after, "sales_commands_total", command="open_sheet", status="422") == 1
            assert sample(after, "sales_outbox_pending", service="tally") == 3
            assert sample(after, "sales_dead_letters_total", reason="rejected") == 1
            assert sample(after, "sales_consumer_pending", durable=rt.ingest.durable) == 0
            assert sample(after, "sales_log_head_position") == 3

            await rt.relay_flush()
            await rt.runner.run_once()
            flushed = await scrape()
            assert sample(flushed, "sales_outbox_pending") == 0
            assert sample(flushed, "sales_events_published_total") >= 3
            assert sample(flushed, "sales_projection_positions_behind", projection="event_counts") == 0
            assert sample(flushed, "sales_projection_events_applied", projection="event_counts") == 3
            assert sample(flushed, "sales_projection_positions_behind", projection="sheet_totals") is None  # inline

            # Latencies, in seconds: each command's by its outcome (the 409 and the ingested 422
            # were refused), each publish batch, each consumer batch, each projection batch's lag.
            assert (
                sample(flushed, "sales_command_duration_seconds_count", command="open_sheet", outcome="accepted") == 3
            )
            assert sample(flushed, "sales_command_duration_seconds_count", command="open_sheet", outcome="refused") == 2
            assert sample(flushed, "sales_command_duration_seconds_bucket", outcome="accepted", le="+Inf") == 3
            assert sample(flushed, "sales_command_duration_seconds_sum", outcome="accepted") > 0
            assert sample(flushed, "sales_relay_publish_duration_seconds_count", service="tally") >= 1
            assert sample(flushed, "sales_consumer_batch_duration_seconds_count", durable=rt.ingest.durable) >= 1
            assert sample(flushed, "sales_projection_lag_seconds_count", projection="event_counts") >= 1
            assert sample(flushed, "sales_projection_lag_seconds_count", projection="sheet_totals") is None


async def test_the_exposition_parses_and_describes_the_process_and_build(service_settings) -> None:
    async with Runtime(definition(), service_settings) as rt:
        transport = httpx.ASGITransport(app=http_app(rt))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
            text = (await http.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["sales_commands"].type == "counter"
    assert families["sales_command_duration_seconds"].type == "histogram"
    assert families["sales_projection_lag_seconds"].type == "histogram"
    assert families["sales_outbox_pending"].type == "gauge"
    build = families["sales_build_info"].samples[0]
    assert build.name == "sales_build_info" and build.value == 1
    assert build.labels["service"] == "tally" and build.labels["version"] not in ("", "unknown")
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    assert families["process_cpu_seconds"].type == "counter"
    assert "python_info" in families
    # Every family says which service it is about.
    for f in families.values():
        if f.name.startswith("sales_"):
            assert all(s.labels.get("service") == "tally" for s in f.samples), f.name


async def test_a_rebuild_is_seen_by_every_replica(service_settings) -> None:
    """The rebuild's state is read from the database: a replica that did not run it reports it."""
    operator = {"Authorization": f"Bearer {mint(Actor(id='ops1', role=Role.operator), SIGNING_KEY)}"}
    async with Runtime(definition(), service_settings) as one, Runtime(definition(), service_settings) as other:
        await one.run_command("open_sheet", {"sheet_id": "s1", "title": "T"}, REP)
        await one.rebuild("event_counts")
        transport = httpx.ASGITransport(app=http_app(other))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
            state = (await http.get("/admin/projections", headers=operator)).json()
            text = (await http.get("/metrics")).text
    rebuilt = state["rebuilds"]["event_counts"]
    assert rebuilt["status"] == "done" and rebuilt["generation"] == 2 and rebuilt["error"] is None
    assert sample(text, "sales_projection_rebuild_running", projection="event_counts") == 0
    assert sample(text, "sales_projection_events_applied", projection="event_counts", generation="2") is not None


async def test_a_failed_rebuild_keeps_its_error_for_every_replica(service_settings) -> None:
    operator = {"Authorization": f"Bearer {mint(Actor(id='ops1', role=Role.operator), SIGNING_KEY)}"}
    async with Runtime(definition(), service_settings) as one, Runtime(definition(), service_settings) as other:
        await one.run_command("open_sheet", {"sheet_id": "s1", "title": "T"}, REP)
        one.runner.stop()  # only the rebuild applies events from here on

        async def lost_connection(conn: object, event: object) -> None:
            raise ConnectionError("the database went away")

        one.projection("event_counts").apply = lost_connection  # type: ignore[method-assign]
        with pytest.raises(ConnectionError):
            await one.rebuild("event_counts")
        transport = httpx.ASGITransport(app=http_app(other))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
            state = (await http.get("/admin/projections", headers=operator)).json()
            text = (await http.get("/metrics")).text
    failed = state["rebuilds"]["event_counts"]
    assert failed["status"] == "failed" and "the database went away" in failed["error"]
    assert sample(text, "sales_projection_rebuild_failed", projection="event_counts") == 1
    assert sample(text, "sales_projection_rebuild_running", projection="event_counts") == 0


async def test_a_rebuild_stopped_with_its_service_is_not_left_running(service_settings) -> None:
    async with Runtime(definition(), service_settings) as rt:
        await rt.run_command("open_sheet", {"sheet_id": "s1", "title": "T"}, REP)
        rt.runner.stop()  # only the rebuild applies events from here on
        # A pass the runner began before it was told to stop ends first (it would otherwise
        # meet the held apply below, and take the projection's lock from the rebuild).
        runner = next(task for task in rt._tasks if task.get_name() == "projections")
        await asyncio.wait_for(runner, 30)
        applying = asyncio.Event()

        async def held(conn: object, event: object) -> None:
            applying.set()
            await asyncio.Event().wait()  # until cancelled

        rt.projection("event_counts").apply = held  # type: ignore[method-assign]
        rebuilding = asyncio.create_task(rt.rebuild("event_counts"))
        await asyncio.wait_for(applying.wait(), 30)
        rebuilding.cancel()  # what stopping the service does to a rebuild still running
        with pytest.raises(asyncio.CancelledError):
            await rebuilding
        async with rt.pool.acquire() as conn:
            states = await rebuild_states(conn)
    assert states["event_counts"]["status"] == "failed"
    assert states["event_counts"]["error"] == "stopped with the service"
