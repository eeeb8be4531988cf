"""The console's `/metrics`: its process, its build and how long each request took, by route
template and status, in the families and labels every service uses."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from console_service.bootstrap import running
from console_service.config import ConsoleSettings
from salesplatform.auth import SigningKey

KEY = SigningKey.generate("platform")


def _settings() -> ConsoleSettings:
    return ConsoleSettings(
        customer_url="http://customer",
        visit_url="http://visit",
        orders_url="http://orders",
        reporting_url="http://reporting",
        nats_url="nats://127.0.0.1:9",  # the feed waits; pages are served
        jwks=json.dumps({"keys": [KEY.public_jwk()]}),
    )


async def test_the_console_serves_its_process_build_and_request_durations() -> None:
    clients = {
        name: httpx.AsyncClient(base_url=f"http://{name}") for name in ("customer", "visit", "orders", "reporting")
    }
    async with running(_settings(), clients=clients) as (_, app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as http:
            for path in ("/health/live", "/health/live", "/login", "/photos/v-1/p-1", "/no/such/page"):
                await http.get(path)
            scraped = await http.get("/metrics")
    for client in clients.values():
        await client.aclose()
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "python_info"} <= set(families)
    (build,) = families["sales_build_info"].samples
    assert build.labels["service"] == "console" and build.labels["version"]
    counts = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in families["sales_http_request_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels["service"] == "console"
    }
    assert counts == {
        ("GET", "/health/live", "200"): 2,
        ("GET", "/login", "200"): 1,
        ("GET", "/photos/{visit_id}/{photo_id}", "401"): 1,  # not signed in
        ("GET", "", "404"): 1,  # no route: one series whatever the path
    }
