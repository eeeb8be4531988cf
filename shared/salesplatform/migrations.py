"""Versioned SQL migrations, applied under an advisory lock.

The platform's own migrations (`salesplatform/sql`) run first, then the service's. Each file is
applied once, in name order, inside a transaction, and recorded in `schema_migrations`.

A service applies them at start (`make run`), or a deployment runs `python -m <service>
migrate` once per release (a Kubernetes Job) and starts its replicas with
`<SERVICE>_MIGRATE_AT_START=false`: they then wait until every migration they know is applied.
A migration must leave the schema usable by the release before it (expand: add tables, columns
with defaults or nullable, indexes), because the previous release's replicas keep serving on
it during a rolling update; removing what the previous release used (contract) waits for a
later release. Migrations the running code does not know (a newer release's) are ignored.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger(__name__)

_LOCK_KEY = 7_246_001  # any constant; only migrators take it


def _platform_files() -> list[tuple[str, str]]:
    folder = resources.files("salesplatform") / "sql"
    return sorted(
        (f"platform/{p.name}", p.read_text(encoding="utf-8")) for p in folder.iterdir() if p.name.endswith(".sql")
    )


def _service_files(folder: Path | None) -> list[tuple[str, str]]:
    if folder is None or not folder.exists():
        return []
    return sorted((f"service/{p.name}", p.read_text(encoding="utf-8")) for p in folder.glob("*.sql"))


async def migrate(conn: asyncpg.Connection, service_migrations: Path | None = None) -> list[str]:
    """Apply what is missing; return the names applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in _platform_files() + _service_files(service_migrations):
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            log.info("migration_applied", migration=name)
            applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now


class MigrationsPending(RuntimeError):
    """The database lacks migrations this code needs, and they were not applied in time."""


async def pending(conn: asyncpg.Connection, service_migrations: Path | None = None) -> list[str]:
    """The migrations this code knows that the database has not recorded yet, in order."""
    known = [name for name, _ in _platform_files() + _service_files(service_migrations)]
    if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NULL"):
        return known
    done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
    return [name for name in known if name not in done]


async def wait_until_migrated(
    conn: asyncpg.Connection,
    service_migrations: Path | None = None,
    *,
    timeout: float,
    interval: float = 2.0,
    note_every: float = 30.0,
) -> None:
    """Return once every migration this code knows is applied (by a migration Job running
    meanwhile); raise MigrationsPending after `timeout` seconds."""
    started = time.monotonic()
    noted = float("-inf")
    while missing := await pending(conn, service_migrations):
        waited = time.monotonic() - started
        if waited >= timeout:
            raise MigrationsPending(
                f"the database lacks migrations {', '.join(missing)} after {waited:.0f}s: run the service's "
                "`migrate` command (the deployment's migration Job), or let it migrate at start"
            )
        if waited - noted >= note_every:
            log.warning("waiting_for_migrations", pending=missing, waited_seconds=round(waited))
            noted = waited
        await asyncio.sleep(interval)
