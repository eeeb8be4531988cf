"""`GET /metrics`: what operators scrape moves with what the service does."""

from __future__ import annotations

import asyncio
import re

import httpx
import orjson
from tally import SIGNING_KEY, definition
from waiting import wait_for

from salesplatform.auth import mint
from salesplatform.events import Actor, Role
from salesplatform.metrics import family
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


def test_the_exposition_format_escapes_label_values() -> None:
    text = family("x_total", "counter", "Things.", [({"reason": 'say "hi"\nback\\slash'}, 3), ({}, 0.5)])
    assert text == (
        "# HELP x_total Things.\n# TYPE x_total counter\n"
        'x_total{reason="say \\"hi\\"\\nback\\\\slash"} 3\nx_total 0.5\n'
    )


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
