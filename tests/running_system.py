"""Helpers of the cross-service tests: a running service and patience for asynchronous effects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider

from salesplatform.auth import mint
from salesplatform.clock import Clock
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY, settings_for_tests
from salesplatform.events import Actor
from salesplatform.service import Runtime, ServiceDefinition, http_app

SIGNING_KEY = TEST_SIGNING_KEY


@dataclass
class Service:
    runtime: Runtime
    http: httpx.AsyncClient

    async def command(self, actor: Actor, name: str, payload: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.http.post(
            f"/commands/{name}",
            json=payload,
            headers={"Authorization": f"Bearer {mint(actor, SIGNING_KEY)}", **headers},
        )

    async def ok(self, actor: Actor, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        r = await self.command(actor, name, payload)
        assert r.status_code == 200, f"{name}: {r.status_code} {r.text}"
        return r.json()

    async def get(self, actor: Actor, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers={"Authorization": f"Bearer {mint(actor, SIGNING_KEY)}"})


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll `check()` until it returns something truthy; effects across services are asynchronous."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"not reached within {timeout}s; last result: {last!r}")


async def start_service_on(
    stack: contextlib.AsyncExitStack,
    definition: ServiceDefinition,
    database_url: str,
    nats_url: str,
    namespace: str,
    clock: Clock | None = None,
    tracer_provider: TracerProvider | None = None,
    **settings: object,
) -> Service:
    """A real service on its own database and the test namespace of NATS, its HTTP API on an
    in-process client; stopped when `stack` closes. Its spans go to `tracer_provider` if given."""
    config = settings_for_tests(database_url, nats_url, namespace, service=definition.name, pool_max=6, **settings)
    runtime = await stack.enter_async_context(
        Runtime(definition, config, clock=clock, run_timers=False, tracer_provider=tracer_provider)
    )
    client = await stack.enter_async_context(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(runtime)), base_url=f"http://{definition.name}")
    )
    return Service(runtime, client)
