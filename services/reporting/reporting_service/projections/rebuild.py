"""Rebuild several projections in one pass over the log, then switch them together.

The platform rebuilds one projection at a time, each reading the whole log into Python. The
reports are many views of the same events, and their statements read the log inside PostgreSQL
(base.py), so here the log is cut once into stretches of 100,000 events and every projection
applies each stretch to its new generation, in the transaction that records its checkpoint. The
projections are spread over two lanes (connections) that build side by side. The active
generations keep answering (and keep being caught up) until the switch, which holds every
projection's lock exclusively, applies the last settled events and flips all of them at once;
the runner goes on from there. It keeps the platform's bookkeeping (`projections`,
`projection_generations`, `projection_failures`) and its locks, so the catch-up runner, the
platform's own rebuild and GET /admin/projections see these generations like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

import asyncpg
import structlog

from reporting_service.projections.base import Stretch, StretchProjection
from salesplatform.projections import FailureSink, Projection, says_nothing_about_the_event
from salesplatform.store import (
    LOG_START,
    LogPosition,
    RecordedEvent,
    read_log,
    read_log_between,
)

log = structlog.get_logger(__name__)

STRETCH_EVENTS = 100_000
# Lanes building projections side by side: the work is in PostgreSQL, one backend per lane.
LANES = 2
# Sorting and grouping a stretch of 100,000 events stays in memory with this much.
WORK_MEM = "64MB"
_LOCK = "reporting:rebuild-all"

Progress = Callable[[int], Awaitable[None] | None]


class RebuildRunning(RuntimeError):
    pass


async def rebuild_together(
    pool: asyncpg.Pool,
    projections: Sequence[Projection],
    *,
    stretch_events: int = STRETCH_EVENTS,
    lanes: int = LANES,
    on_progress: Progress | None = None,
    on_failure: FailureSink | None = None,
    on_started: Callable[[dict[str, int]], None] | None = None,
) -> dict[str, int]:
    """Build a new generation of each projection from the start of the log; switch them in one
    transaction. Returns the new generation of each. `on_started` is told the generations once
    they exist (from then on `projection_generations` shows them being built)."""
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", _LOCK):
            raise RebuildRunning("a rebuild of the reports is already running")
        try:
            return await _rebuild(pool, conn, projections, stretch_events, lanes, on_progress, on_failure, on_started)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", _LOCK)


async def _rebuild(
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    projections: Sequence[Projection],
    stretch_events: int,
    lanes: int,
    on_progress: Progress | None,
    on_failure: FailureSink | None,
    on_started: Callable[[dict[str, int]], None] | None,
) -> dict[str, int]:
    generations = {p.name: await _new_generation(conn, p) for p in projections}
    log.info("reports_rebuild_started", generations=generations)
    if on_started is not None:
        on_started(generations)
    done: dict[str, int] = dict.fromkeys(generations, 0)
    checkpoint = LOG_START
    applied = 0
    while True:
        # The settled log ahead is cut into stretches; every lane applies the same stretches.
        stretches = await _cut(conn, checkpoint, stretch_events)
        if not stretches:
            break

        # Projections are independent until the switch, so they are built side by side, each
        # lane on its own connection, each stretch committed with the lane's checkpoints.
        async def lane(members: list[Projection], stretches: list[tuple[Stretch, int]] = stretches) -> None:
            async with pool.acquire() as own:
                for stretch, n in stretches:
                    async with own.transaction():
                        await own.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
                        await _apply_everywhere(own, members, generations, stretch, on_failure)
                        await _save_checkpoints(own, {p.name: generations[p.name] for p in members}, stretch.upto, n)
                    for p in members:
                        done[p.name] += n
                    await _report(on_progress, min(done.values()))

        await _all_or_nothing([lane(members) for members in _share(projections, lanes) if members])
        checkpoint = stretches[-1][0].upto
        ahead = sum(n for _, n in stretches)
        applied += ahead
        if ahead < stretch_events:
            break

    inline = [p for p in projections if p.inline]
    async with conn.transaction():
        await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        # Holding every projection's lock exclusively: the catch-up runner cannot apply, and no
        # writer is between applying an inline projection and committing.
        for name in sorted(generations):
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"projection:{name}")
        # What settled meanwhile goes to every projection. A transaction still running (a
        # consumer copying events) has a larger id than anything settled, so its events come
        # after these checkpoints and the runner applies them once they commit.
        while True:
            upto, n = await _stretch_end(conn, checkpoint, stretch_events, settled_only=True)
            if upto is None:
                break
            await _apply_everywhere(conn, projections, generations, Stretch(checkpoint, upto), on_failure)
            await _save_checkpoints(conn, generations, upto, n)
            checkpoint = upto
            applied += n
        # Inline projections are never caught up by the runner; their writers are held off by
        # the locks, so all they can miss is committed and visible: apply it now.
        while inline:
            upto, n = await _stretch_end(conn, checkpoint, stretch_events, settled_only=False)
            if upto is None:
                break
            await _apply_everywhere(conn, inline, generations, Stretch(checkpoint, upto), on_failure)
            await _save_checkpoints(conn, {p.name: generations[p.name] for p in inline}, upto, n)
            checkpoint = upto
        for p in projections:
            await _switch(conn, p, generations[p.name])
    await _report(on_progress, applied)
    log.info("reports_rebuilt", generations=generations, events=applied)
    return generations


def _share(projections: Sequence[Projection], lanes: int) -> list[list[Projection]]:
    """Spread the projections over the lanes by their weight, heaviest first."""
    shares: list[list[Projection]] = [[] for _ in range(max(1, lanes))]
    loads = [0.0] * len(shares)
    for p in sorted(projections, key=lambda p: -getattr(p, "rebuild_weight", 1.0)):
        i = loads.index(min(loads))
        shares[i].append(p)
        loads[i] += getattr(p, "rebuild_weight", 1.0)
    return shares


async def _all_or_nothing(work: list[Awaitable[None]]) -> None:
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _report(on_progress: Progress | None, applied: int) -> None:
    if on_progress is not None:
        result = on_progress(applied)
        if result is not None:
            await result


def _schema(name: str, generation: int) -> str:
    return f"p_{name}_{generation}"


async def _new_generation(conn: asyncpg.Connection, projection: Projection) -> int:
    name = projection.name
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"rebuild:{name}")
        for row in await conn.fetch(
            "SELECT schema_name FROM projection_generations WHERE name = $1 AND status IN ('retired', 'building')",
            name,
        ):
            await conn.execute(f"DROP SCHEMA IF EXISTS {row['schema_name']} CASCADE")
        await conn.execute(
            "DELETE FROM projection_generations WHERE name = $1 AND status IN ('retired', 'building')",
            name,
        )
        generation = 1 + await conn.fetchval(
            "SELECT coalesce(max(generation), 0) FROM projection_generations WHERE name = $1", name
        )
        schema = _schema(name, generation)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        await _use(conn, schema)
        await conn.execute(projection.schema_sql)
        await _use(conn, None)
        await conn.execute(
            "INSERT INTO projection_generations (name, generation, schema_name, code_version, status)"
            " VALUES ($1, $2, $3, $4, 'building')",
            name,
            generation,
            schema,
            projection.code_version,
        )
    return cast("int", generation)


async def _use(conn: asyncpg.Connection, schema: str | None) -> None:
    path = f"{schema}, public" if schema else "public"
    await conn.execute("SELECT set_config('search_path', $1, true)", path)


async def _stretch_end(
    conn: asyncpg.Connection, after: LogPosition, limit: int, *, settled_only: bool
) -> tuple[LogPosition | None, int]:
    """The last of the next `limit` events after `after`, and how many there are."""
    settled = "AND tx_id < pg_snapshot_xmin(pg_current_snapshot())" if settled_only else ""
    row = await conn.fetchrow(
        f"""
        SELECT tx_id::text AS tx, position, n FROM (
            SELECT tx_id, position, row_number() OVER (ORDER BY tx_id, position) AS n
            FROM (SELECT tx_id, position FROM events
                  WHERE (tx_id, position) > ($1::text::xid8, $2) {settled}
                  ORDER BY events.tx_id, events.position LIMIT $3) AS head
        ) AS counted ORDER BY n DESC LIMIT 1
        """,
        str(after.tx_id),
        after.position,
        limit,
    )
    if row is None:
        return None, 0
    return LogPosition(int(row["tx"]), row["position"]), row["n"]


async def _cut(conn: asyncpg.Connection, after: LogPosition, size: int) -> list[tuple[Stretch, int]]:
    """The settled events after `after`, as stretches of `size` events (the last may be short)."""
    out: list[tuple[Stretch, int]] = []
    while True:
        upto, n = await _stretch_end(conn, after, size, settled_only=True)
        if upto is None:
            return out
        out.append((Stretch(after, upto), n))
        after = upto
        if n < size:
            return out


async def _apply_everywhere(
    conn: asyncpg.Connection,
    projections: Sequence[Projection],
    generations: dict[str, int],
    stretch: Stretch,
    on_failure: FailureSink | None,
) -> None:
    for p in projections:
        await _use(conn, _schema(p.name, generations[p.name]))
        try:
            await _apply_guarded(conn, p, stretch, on_failure)
        finally:
            await _use(conn, None)


async def _apply_guarded(
    conn: asyncpg.Connection, projection: Projection, stretch: Stretch, on_failure: FailureSink | None
) -> None:
    """Apply a stretch; if it fails, apply its events one by one and keep the ones that fail in
    `projection_failures` (and hand them to `on_failure`), as the platform's runner does."""
    try:
        async with conn.transaction():
            await _apply(conn, projection, stretch)
        return
    except Exception as exc:  # retried event by event below
        if says_nothing_about_the_event(exc):
            raise
        log.warning("rebuild_stretch_failed", projection=projection.name, error=repr(exc))
    for tx_id, position in await _relevant_positions(conn, projection, stretch):
        single = Stretch(LogPosition(tx_id, position - 1), LogPosition(tx_id, position))
        try:
            async with conn.transaction():
                await _apply(conn, projection, single)
        except Exception as exc:  # kept below with its reason, never dropped silently
            if says_nothing_about_the_event(exc):
                raise
            error = f"{type(exc).__name__}: {exc}"
            events = await read_log(conn, single.after, 1, settled_only=False)
            event = events[0]
            log.error(
                "projection_event_failed",
                projection=projection.name,
                event_id=str(event.envelope.event_id),
                error=error,
            )
            await conn.execute(
                "INSERT INTO public.projection_failures (name, event_id, position, error)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                projection.name,
                event.envelope.event_id,
                event.position,
                error,
            )
            if on_failure is not None:
                await on_failure(projection.name, event, error)


async def _apply(conn: asyncpg.Connection, projection: Projection, stretch: Stretch) -> None:
    if isinstance(projection, StretchProjection):
        # Statements for types the stretch does not hold find nothing through the
        # (event_type, tx_id, position) index, so there is no need to list the types first.
        await projection.apply_stretch(conn, stretch, None, changes=False)
        return
    events = await _events_of(conn, projection, stretch)
    if events:
        await projection.apply_batch(conn, events)


async def _relevant_positions(
    conn: asyncpg.Connection, projection: Projection, stretch: Stretch
) -> list[tuple[int, int]]:
    types = sorted(projection.event_types) if projection.event_types is not None else None
    rows = await conn.fetch(
        "SELECT e.tx_id::text AS tx, e.position FROM public.events e"
        f" WHERE ($1::text[] IS NULL OR e.event_type = ANY($1::text[])) AND {stretch.predicate('e')}"
        " ORDER BY e.tx_id, e.position",
        types,
    )
    return [(int(r["tx"]), r["position"]) for r in rows]


async def _events_of(conn: asyncpg.Connection, projection: Projection, stretch: Stretch) -> list[RecordedEvent]:
    return await read_log_between(conn, stretch.after, stretch.upto, projection.event_types)


async def _save_checkpoints(
    conn: asyncpg.Connection, generations: dict[str, int], at: LogPosition, applied: int
) -> None:
    await conn.execute(
        "UPDATE projection_generations g SET tx_id = $3::text::xid8, position = $4,"
        " events_applied = events_applied + $5"
        " FROM unnest($1::text[], $2::int[]) AS b(name, generation)"
        " WHERE g.name = b.name AND g.generation = b.generation",
        list(generations),
        list(generations.values()),
        str(at.tx_id),
        at.position,
        applied,
    )


async def _switch(conn: asyncpg.Connection, projection: Projection, generation: int) -> None:
    name = projection.name
    await conn.execute(
        "UPDATE projection_generations SET status = 'retired', finished_at = now()"
        " WHERE name = $1 AND status = 'active'",
        name,
    )
    await conn.execute(
        "UPDATE projection_generations SET status = 'active', finished_at = now() WHERE name = $1 AND generation = $2",
        name,
        generation,
    )
    await conn.execute(
        "UPDATE projections SET active_schema = $2, generation = $3, code_version = $4 WHERE name = $1",
        name,
        _schema(name, generation),
        generation,
        projection.code_version,
    )
