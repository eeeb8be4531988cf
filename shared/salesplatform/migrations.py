"""Versioned SQL migrations, applied at start under an advisory lock.

The platform's own migrations (`salesplatform/sql`) run first, then the service's. Each file is
applied once, in name order, inside a transaction, and recorded in `schema_migrations`.
"""

from __future__ import annotations

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
