"""The console's composition root: settings → the services' clients, the name directory, the
change hub and its NATS feed → the web app. Nothing is opened at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import uvicorn

from console_service.adapters.change_feed import ChangeFeed
from console_service.adapters.http import Console, create_app
from console_service.adapters.identity import Identity
from console_service.adapters.services import Services
from console_service.application.changes import ChangeHub
from console_service.application.directory import Directory
from console_service.config import ConsoleSettings
from salesplatform.auth import TokenVerifier, key_source, load_signing_key
from salesplatform.logging import configure_logging
from salesplatform.settings import load


@contextlib.asynccontextmanager
async def running(
    settings: ConsoleSettings, *, clients: Mapping[str, httpx.AsyncClient] | None = None
) -> AsyncIterator[tuple[Console, Any]]:
    """The console with its change feed started: `(console, asgi_app)`. `clients` replaces the
    HTTP clients built from the settings' URLs (tests reach in-process services that way)."""
    services = (
        Services(clients)
        if clients is not None
        else Services.over_http(settings.service_urls(), timeout=settings.api_timeout)
    )
    hub = ChangeHub()
    feed = ChangeFeed(
        settings.nats_url, settings.stream_prefix, hub, user=settings.nats_user, password=settings.nats_password
    )
    verifier = TokenVerifier(
        key_source(
            jwks=settings.jwks,
            jwks_file=settings.jwks_file,
            jwks_url=settings.jwks_url,
            refresh_seconds=settings.jwks_refresh_seconds,
        )
    )
    signing_key = load_signing_key(settings.signing_key_file) if settings.local_login else None
    identity = Identity(verifier, signing_key=signing_key)
    console = Console(settings, identity, services, Directory(services), hub, lambda: feed.connected)
    await verifier.start()
    feed.start()
    try:
        yield console, create_app(console)
    finally:
        hub.close()
        await feed.stop()
        await verifier.stop()
        if clients is None:
            await services.close()


class ConsoleServer(uvicorn.Server):
    """Ends the open live-update streams as soon as a stop is asked for, so the graceful
    shutdown does not wait for browsers to hang up."""

    def __init__(self, config: uvicorn.Config, hub: ChangeHub) -> None:
        super().__init__(config)
        self.hub = hub

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.hub.close()
        super().handle_exit(sig, frame)


def main() -> None:
    settings = load(ConsoleSettings)
    configure_logging("console", settings.log_level)
    # One line per API call is noise in the console's log; failures are logged where they occur.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(serve(settings))


async def serve(settings: ConsoleSettings) -> None:
    async with running(settings) as (console, app):
        config = uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        await ConsoleServer(config, console.hub).serve()
