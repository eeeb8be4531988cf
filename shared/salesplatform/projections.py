"""Read models built from the event log: inline, catch-up, and rebuilt without downtime.

A projection keeps its tables in a schema of its own per *generation* (`p_<name>_<n>`), and the
`projections` row names the generation that answers queries. Projection SQL uses unqualified
table names; the runner points `search_path` at the right generation.

- Inline: applied inside the appending transaction (read-your-writes).
- Catch-up: a runner reads the global log after the generation's checkpoint and stores the new
  checkpoint in the same transaction as the change (exactly-once effect).
- Rebuild: a new generation is filled from position 0 while the active one keeps serving; the
  switch takes the projection's lock exclusively (writers hold it shared while they apply),
  applies the last events and flips `active_schema` in one transaction. Several projections
  rebuild in one pass over the log, stretch by stretch, and switch together.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, cast

import asyncpg
import structlog

from salesplatform import tracing
from salesplatform.errors import ConcurrencyConflict
from salesplatform.metrics import DETACHED, ServiceMetrics
from salesplatform.outages import OutageLog, is_outage, is_transient
from salesplatform.store import (
    LOG_START,
    LogPosition,
    RecordedEvent,
    load_event,
    read_log,
    read_log_between,
    read_log_of_types,
    scan_log_of_types,
)

log = structlog.get_logger(__name__)

Change = dict[str, Any]
ChangeSink = Callable[[str, list[Change]], Awaitable[None]]
FailureSink = Callable[[str, RecordedEvent, str], Awaitable[None]]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
# `synchronous_commit` for a transaction that applies events: 'on' if it appended events too
# (events are only ever written with synchronous commits), else 'off'.
_ON_IF_APPENDED = (
    "CASE WHEN EXISTS (SELECT 1 FROM public.events WHERE tx_id = pg_current_xact_id_if_assigned())"
    " THEN 'on' ELSE 'off' END"
)
_APPLY_ATTEMPTS = 3


def says_nothing_about_the_event(exc: BaseException) -> bool:
    """Whether a failure to apply events is no fault of theirs: an outage, contention, or a
    reactor's append that needs a younger transaction id. The whole batch is then tried again
    later in a new transaction, and no event is recorded as failed."""
    return isinstance(exc, ConcurrencyConflict) or is_transient(exc)


class Projection:
    """A read model. Subclasses set `name`, `schema_sql` and implement `apply`.

    `event_types`: the types it reads (None: all). `code_version`: bump it when the apply logic
    or the tables change; the service then rebuilds the projection on start.
    `inline`: apply in the appending transaction instead of by the catch-up runner.
    `reads_log`: the projection reads its events from the log itself, with set-based SQL over
    a stretch of it (`apply_range`); the catch-up runner then only scans the stretch for the
    types present instead of loading the events. It must name its `event_types`.
    `rebuild_weight`: its share of the work when several projections are rebuilt together.
    """

    name: ClassVar[str]
    schema_sql: ClassVar[str]
    event_types: ClassVar[frozenset[str] | None] = None
    code_version: ClassVar[int] = 1
    inline: ClassVar[bool] = False
    reads_log: ClassVar[bool] = False
    rebuild_weight: ClassVar[float] = 1.0

    def handles(self, event: RecordedEvent) -> bool:
        return self.event_types is None or event.event_type in self.event_types

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        """Apply one event. Override this, or `apply_batch` for set-based work."""
        raise TypeError(f"{type(self).__name__} overrides neither apply nor apply_batch")

    async def apply_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> list[Change]:
        """Apply many events; override for set-based speed. Returns the changed keys."""
        changes: list[Change] = []
        for event in events:
            if self.handles(event):
                out = await self.apply(conn, event)
                if out:
                    changes.extend(out)
        return changes

    async def apply_range(
        self,
        conn: asyncpg.Connection,
        after: LogPosition,
        upto: LogPosition,
        present: frozenset[str] | None,
        *,
        changes: bool = True,
    ) -> list[Change]:
        """Apply the events of its types in the stretch (after, upto] of `public.events`;
        `present`: the types that occur there (None: not known). With `changes` false (a
        rebuild, which publishes nothing) it need not say what changed. For projections that
        set `reads_log`."""
        raise TypeError(f"{type(self).__name__} sets reads_log but does not override apply_range")


class StatementRuns:
    """A projection's statements, sent in order, where a run of one statement with different
    arguments (a batch's contacts logged, say) goes in one round trip (`executemany`). Call
    `flush` before using the connection directly, and at the end."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._sql = ""
        self._args: list[Sequence[Any]] = []

    async def execute(self, sql: str, *args: Any) -> None:
        if sql != self._sql:
            await self.flush()
            self._sql = sql
        self._args.append(args)

    async def flush(self) -> None:
        if self._args:
            await self.conn.executemany(self._sql, self._args)
            self._args = []


def _lock_key(name: str) -> str:
    # sql/003_lock_projections.sql builds the same key.
    return f"projection:{name}"


async def _use_schema(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute("SELECT set_config('search_path', $1, true)", f"{schema}, public")


async def _reset_schema(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT set_config('search_path', 'public', true)")


async def ensure_projection(conn: asyncpg.Connection, projection: Projection) -> bool:
    """Create generation 1 if the projection is new. Returns True when a rebuild is due: the
    code is newer than the active generation. Older code (a replica of the previous release
    during a rolling update, once a newer one has switched) keeps the active generation rather
    than rebuilding it back; an operator who rolls a release back asks for that rebuild."""
    if not _NAME.match(projection.name):
        raise ValueError(f"bad projection name {projection.name!r}")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _lock_key(projection.name))
        row = await conn.fetchrow("SELECT code_version FROM projections WHERE name = $1", projection.name)
        if row is not None:
            if row["code_version"] > projection.code_version:
                log.warning(
                    "projection_newer_than_code",
                    projection=projection.name,
                    active_code_version=row["code_version"],
                    code_version=projection.code_version,
                )
            return bool(row["code_version"] < projection.code_version)
        schema = await _create_generation(conn, projection, 1, "active")
        await conn.execute(
            "INSERT INTO projections (name, active_schema, generation, code_version) VALUES ($1, $2, 1, $3)",
            projection.name,
            schema,
            projection.code_version,
        )
    return False


async def _create_generation(conn: asyncpg.Connection, projection: Projection, generation: int, status: str) -> str:
    """The schema of a generation, with the projection's empty tables, and its row in
    `projection_generations`. Returns the schema's name."""
    schema = f"p_{projection.name}_{generation}"
    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    await _use_schema(conn, schema)
    await conn.execute(projection.schema_sql)
    await _reset_schema(conn)
    await conn.execute(
        "INSERT INTO projection_generations (name, generation, schema_name, code_version, status)"
        " VALUES ($1, $2, $3, $4, $5)",
        projection.name,
        generation,
        schema,
        projection.code_version,
        status,
    )
    return schema


async def apply_inline(
    conn: asyncpg.Connection,
    projection: Projection,
    events: list[RecordedEvent],
    locked: dict[str, str] | None = None,
    *,
    restore: bool = True,
) -> Any:
    """Apply in the caller's transaction, to whichever generation is active once the shared
    lock is held (a rebuild's switch holds it exclusively).

    `locked` remembers, for the rest of the transaction, which projections' locks are held and
    their schema: the lock lasts until commit, so later commands of a batch skip both queries.
    With `restore=False` the caller restores the search_path itself (once for several
    projections) and gets `(changes, previous search_path or None)`.
    """
    relevant = [e for e in events if projection.handles(e)]
    if not relevant:
        return [] if restore else ([], None)
    schema = await locked_schema(conn, projection.name, locked if locked is not None else {})
    # Restore whatever search_path the caller had: a reactor runs commands from inside its
    # own projection and must find its own tables again afterwards.
    previous = await conn.fetchval(
        "WITH o AS MATERIALIZED (SELECT current_setting('search_path') AS old)"
        " SELECT o.old FROM o WHERE set_config('search_path', $1, true) IS NOT NULL",
        f"{schema}, public",
    )
    if not restore:
        return await projection.apply_batch(conn, relevant), previous
    try:
        return await projection.apply_batch(conn, relevant)
    finally:
        await conn.execute("SELECT set_config('search_path', $1, true)", previous)


async def locked_schema(conn: asyncpg.Connection, projection_name: str, locked: dict[str, str]) -> str:
    """The active schema of a projection, with its lock held shared until the transaction ends,
    so no rebuild switches it meanwhile. `locked` remembers, for the rest of the transaction,
    the projections already locked and their schemas."""
    return (await locked_schemas(conn, [projection_name], locked))[projection_name]


async def locked_schemas(conn: asyncpg.Connection, names: Sequence[str], locked: dict[str, str]) -> dict[str, str]:
    """`locked_schema` of several projections, the ones not yet locked in one round trip."""
    missing = [n for n in names if n not in locked]
    if missing:
        found = dict(await conn.fetch("SELECT name, active_schema FROM public.lock_projections($1::text[])", missing))
        unknown = set(missing) - found.keys()
        if unknown:
            raise LookupError(f"no projection {', '.join(sorted(unknown))}")
        locked.update(found)
    return {n: locked[n] for n in names}


async def active_schema(conn: asyncpg.Connection, projection_name: str) -> str:
    """The schema of a projection's active generation, for queries inside another transaction
    (a command handler checking a read model): `f"SELECT … FROM {schema}.customers"`."""
    schema = await conn.fetchval("SELECT active_schema FROM public.projections WHERE name = $1", projection_name)
    if schema is None:
        raise LookupError(f"no projection {projection_name}")
    return cast("str", schema)


@contextlib.asynccontextmanager
async def reading(pool: asyncpg.Pool, projection_name: str) -> AsyncIterator[asyncpg.Connection]:
    """A read-only connection whose search_path is the active generation of a projection."""
    async with pool.acquire() as conn:
        async with conn.transaction(readonly=True):
            schema = await conn.fetchval(
                "SELECT set_config('search_path', active_schema || ', public', true) FROM projections WHERE name = $1",
                projection_name,
            )
            if schema is None:
                raise LookupError(f"no projection {projection_name}")
            yield conn


@dataclass
class _Generation:
    schema: str
    generation: int
    checkpoint: LogPosition


async def _apply_guarded(
    conn: asyncpg.Connection,
    projection: Projection,
    events: list[RecordedEvent],
    on_failure: FailureSink | None,
) -> list[Change]:
    """Apply a batch; if it fails, isolate the events that fail, record them, go on.

    A failing event never blocks the projection and is never lost: it is kept in
    `projection_failures` with the reason and handed to `on_failure` (the dead-letter subject).
    """
    relevant = [e for e in events if projection.handles(e)]
    if not relevant:
        return []
    try:
        async with conn.transaction():
            return await projection.apply_batch(conn, relevant)
    except Exception as exc:  # the events are applied one by one below, where a failure is recorded
        if says_nothing_about_the_event(exc):
            raise
    changes: list[Change] = []
    for event in relevant:
        error = ""
        for _ in range(_APPLY_ATTEMPTS):
            try:
                async with conn.transaction():
                    changes.extend(await projection.apply_batch(conn, [event]))
                error = ""
                break
            except Exception as exc:  # recorded below, never swallowed silently
                if says_nothing_about_the_event(exc):
                    raise
                error = f"{type(exc).__name__}: {exc}"
        if error:
            log.error(
                "projection_event_failed",
                projection=projection.name,
                event_id=str(event.envelope.event_id),
                position=event.position,
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
    return changes


async def reapply(pool: asyncpg.Pool, projection: Projection, event_id: uuid.UUID) -> list[Change] | None:
    """Apply again an event `projection` could not apply (kept in `projection_failures`), once
    what failed it is fixed: to the active generation with its lock held, in the transaction
    that clears the failure. None if the event is not among its failures (applied again
    already, or it never failed). Raises what the projection raises; nothing is kept then."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            failed = await conn.fetchval(
                "SELECT true FROM public.projection_failures WHERE name = $1 AND event_id = $2 FOR UPDATE",
                projection.name,
                event_id,
            )
            event = await load_event(conn, event_id) if failed else None
            if event is None:
                return None
            schema = await locked_schema(conn, projection.name, {})
            await conn.execute("SELECT set_config('search_path', $1, true)", f"{schema}, public")
            if projection.reads_log:
                at = LogPosition(event.tx_id, event.position)
                before = LogPosition(event.tx_id, event.position - 1)
                changes = await projection.apply_range(conn, before, at, frozenset({event.event_type}))
            else:
                changes = await projection.apply_batch(conn, [event])
            await conn.execute(
                "DELETE FROM public.projection_failures WHERE name = $1 AND event_id = $2", projection.name, event_id
            )
    log.info("projection_event_reapplied", projection=projection.name, event_id=str(event_id))
    return changes


@dataclass(frozen=True, slots=True)
class Applied:
    """What a committed catch-up batch applied, for its lag and its trace: when the earliest of
    its events was recorded, and the metadata (trace contexts) its events keep."""

    oldest_recorded: datetime | None
    metadata: tuple[dict[str, str], ...]


async def catch_up_once(
    conn: asyncpg.Connection,
    projection: Projection,
    *,
    batch_size: int = 1000,
    on_failure: FailureSink | None = None,
    on_applied: Callable[[Applied], None] | None = None,
) -> tuple[int, list[Change]]:
    """One batch of the active generation, in one transaction. Returns (events read, changes).

    Unless the batch appended events (a reactor running commands), the commit does not wait for
    the disk: a read model is derived data, and its changes commit atomically with its
    checkpoint, so a crash can only take back both together and the batch is applied again from
    the log. Events are only ever written with synchronous commits.

    `on_applied` hears what a batch that applied events applied, once it committed."""
    applied_now: Applied | None = None
    async with conn.transaction():
        # One runner at a time per projection (replicas, or a runner and an operator), then the
        # switch lock shared; the checkpoint is read only after both are held (one round trip:
        # sql/004_start_catch_up.sql).
        row = await conn.fetchrow("SELECT * FROM public.start_catch_up($1)", projection.name)
        gen = _Generation(row[0], row[1], LogPosition(row[2], row[3]))
        changes: list[Change] = []
        if projection.reads_log and projection.event_types is not None:
            scan = await scan_log_of_types(conn, gen.checkpoint, batch_size, projection.event_types)
            if scan is None:
                return 0, []
            scanned, reached, applied = scan.scanned, scan.reached, scan.matching
            if applied and on_applied is not None:
                applied_now = Applied(scan.oldest_recorded, scan.metadata)
            if scan.present:
                await _use_schema(conn, gen.schema)
                changes = await _apply_range_guarded(
                    conn, projection, gen.checkpoint, scan.reached, scan.present, on_failure
                )
        else:
            events, scanned, reached = await _read_for(conn, projection, gen.checkpoint, batch_size, True)
            if not scanned:
                return 0, []
            applied = len(events)
            if events and on_applied is not None:
                applied_now = Applied(
                    min(e.envelope.recorded_at for e in events),
                    tuple(e.envelope.metadata for e in events if e.envelope.metadata),
                )
            if events:
                # The generation's schema stays first on the search path until the commit: what
                # follows names the public tables.
                await _use_schema(conn, gen.schema)
                changes = await _apply_guarded(conn, projection, events, on_failure)
        await conn.execute(
            "WITH saved AS ("
            "  UPDATE public.projection_generations SET tx_id = $3::text::xid8, position = $4,"
            "  events_applied = events_applied + $5 WHERE name = $1 AND generation = $2 RETURNING 1"
            f") SELECT set_config('synchronous_commit', {_ON_IF_APPENDED}, true) FROM saved",
            projection.name,
            gen.generation,
            str(reached.tx_id),
            reached.position,
            applied,
        )
    if applied_now is not None and on_applied is not None:
        on_applied(applied_now)
    return scanned, changes


async def _apply_range_guarded(
    conn: asyncpg.Connection,
    projection: Projection,
    after: LogPosition,
    upto: LogPosition,
    present: frozenset[str] | None,
    on_failure: FailureSink | None,
    *,
    changes: bool = True,
) -> list[Change]:
    """`apply_range`; if it fails, the stretch's events are loaded and applied the guarded way
    (`_apply_guarded`), so an event that fails is isolated and recorded as for any projection."""
    try:
        async with conn.transaction():
            return await projection.apply_range(conn, after, upto, present, changes=changes)
    except Exception as exc:  # any failure: the events are applied one by one below
        if says_nothing_about_the_event(exc):
            raise
        log.warning("projection_range_failed", projection=projection.name, error=repr(exc))
    assert projection.event_types is not None
    events = await read_log_between(conn, after, upto, projection.event_types)
    return await _apply_guarded(conn, projection, events, on_failure)


async def _read_for(
    conn: asyncpg.Connection, projection: Projection, after: LogPosition, limit: int, settled_only: bool
) -> tuple[list[RecordedEvent], int, LogPosition]:
    """The next batch for a projection: only its event types are loaded, if it names them."""
    if projection.event_types is not None:
        return await read_log_of_types(conn, after, limit, projection.event_types, settled_only=settled_only)
    events = await read_log(conn, after, limit, settled_only=settled_only)
    if not events:
        return [], 0, after
    return events, len(events), LogPosition(events[-1].tx_id, events[-1].position)


# A rebuild cuts the log into stretches of this many events; a projection that loads its events
# (rather than reading them with set-based SQL) gets them at most this many of the log at a time.
STRETCH_EVENTS = 100_000
LOADED_EVENTS = 5_000
# Lanes building projections side by side: the work is in PostgreSQL, one backend per lane.
REBUILD_LANES = 2
# Sorting and grouping a stretch of 100,000 events stays in memory with this much.
REBUILD_WORK_MEM = "64MB"

Progress = Callable[[int], Awaitable[None] | None]
T = TypeVar("T")


class RebuildRunning(RuntimeError):
    """A rebuild of one of the projections asked for is running already (on any replica)."""


async def rebuild(
    pool: asyncpg.Pool,
    projections: Sequence[Projection],
    *,
    stretch_events: int = STRETCH_EVENTS,
    lanes: int = REBUILD_LANES,
    on_progress: Progress | None = None,
    on_failure: FailureSink | None = None,
    on_started: Callable[[dict[str, int]], None] | None = None,
) -> dict[str, int]:
    """Build a new generation of each projection from the start of the log, reading the log
    once, then switch all of them in one transaction. Returns the new generation of each.

    The settled log is cut into stretches of `stretch_events`, and every projection applies
    each stretch to its new generation in the transaction that records its checkpoint: a
    projection that `reads_log` with its set-based statements (`apply_range`), any other with
    the stretch's events of its types (`apply_batch`, `LOADED_EVENTS` of the log at a time,
    so what it holds in memory stays small), both guarded as the catch-up runner is
    (an event that fails is kept in `projection_failures` and handed to `on_failure`). The
    projections are spread over `lanes` connections by their `rebuild_weight`.

    The active generations keep answering queries (and being updated) until the switch, which
    holds every projection's lock exclusively, applies the last events and flips them all.
    `on_started` is told the generations once they exist (from then on `projection_generations`
    shows them being built); `on_progress` the events passed so far. Raises `RebuildRunning` if
    one of them is being rebuilt already (its rebuild holds the lock `rebuild:<name>`).
    """
    if not projections:
        return {}
    async with pool.acquire() as conn:
        held: list[str] = []
        try:
            for name in sorted({p.name for p in projections}):
                if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", f"rebuild:{name}"):
                    raise RebuildRunning(f"a rebuild of {name} is running already")
                held.append(name)
            return await _rebuild(pool, conn, projections, stretch_events, lanes, on_progress, on_failure, on_started)
        finally:
            with contextlib.suppress(Exception):  # a broken connection lets go of its locks
                for name in held:
                    await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"rebuild:{name}")


async def _rebuild(
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    projections: Sequence[Projection],
    size: int,
    lanes: int,
    on_progress: Progress | None,
    on_failure: FailureSink | None,
    on_started: Callable[[dict[str, int]], None] | None,
) -> dict[str, int]:
    shares = [members for members in _share(projections, lanes) if members]
    async with contextlib.AsyncExitStack() as stack:
        # Projections are independent until the switch: the lanes build side by side, the
        # first on this connection, the others each on one of its own.
        lane_conns = [conn, *[await stack.enter_async_context(pool.acquire()) for _ in shares[1:]]]
        made = await _all_or_nothing([_new_generations(c, m) for c, m in zip(lane_conns, shares, strict=True)])
        generations = {name: g for share in made for name, g in share.items()}
        log.info("projection_rebuild_started", generations=generations)
        if on_started is not None:
            on_started(generations)
        passed: dict[str, int] = dict.fromkeys(generations, 0)

        async def lane(
            own: asyncpg.Connection, members: list[Projection], after: LogPosition, ends: list[tuple[LogPosition, int]]
        ) -> None:
            for upto, n in ends:
                async with own.transaction():
                    await _building(own)
                    await _apply_stretch(own, members, generations, after, upto, n, on_failure)
                    await _commit_lazily(own)
                after = upto
                for p in members:
                    passed[p.name] += n
                await _report(on_progress, min(passed.values()))

        checkpoint = LOG_START
        applied = 0
        while True:
            # The settled log ahead is cut into stretches; every lane applies the same stretches.
            stretches = await _cut(conn, checkpoint, size)
            if not stretches:
                break
            await _all_or_nothing([lane(c, m, checkpoint, stretches) for c, m in zip(lane_conns, shares, strict=True)])
            checkpoint = stretches[-1][0]
            ahead = sum(n for _, n in stretches)
            applied += ahead
            if ahead < size:
                break

    inline = [p for p in projections if p.inline]
    async with conn.transaction():
        await _building(conn)
        # Inline writers and the catch-up runner hold these locks shared while they apply: with
        # every one held exclusively, the runner cannot apply, and no writer is between applying
        # an inline projection and committing.
        for name in sorted(generations):
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _lock_key(name))
        # What settled meanwhile goes to every projection. A transaction still running (a
        # consumer copying foreign events, which takes no lock) has a larger id than anything
        # settled, so its events come after these checkpoints and the runner applies them.
        while (end := await _stretch_end(conn, checkpoint, size, settled_only=True)) is not None:
            upto, n = end
            await _apply_stretch(conn, projections, generations, checkpoint, upto, n, on_failure)
            checkpoint = upto
            applied += n
        # Inline projections are never caught up by the runner; their writers are held off by
        # the locks, so all they can miss is committed and visible: apply it now.
        while inline and (end := await _stretch_end(conn, checkpoint, size, settled_only=False)) is not None:
            upto, n = end
            await _apply_stretch(conn, inline, generations, checkpoint, upto, n, on_failure)
            checkpoint = upto
        for p in projections:
            await _switch(conn, p, generations[p.name])
    await _report(on_progress, applied)
    log.info("projection_rebuilt", generations=generations, events=applied)
    return generations


def _share(projections: Sequence[Projection], lanes: int) -> list[list[Projection]]:
    """Spread the projections over the lanes by their weight, heaviest first."""
    shares: list[list[Projection]] = [[] for _ in range(max(1, lanes))]
    loads = [0.0] * len(shares)
    for p in sorted(projections, key=lambda p: -p.rebuild_weight):
        i = loads.index(min(loads))
        shares[i].append(p)
        loads[i] += p.rebuild_weight
    return shares


async def _all_or_nothing(work: list[Awaitable[T]]) -> list[T]:
    """The results of all the work, or the first failure once all of it has stopped."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        return list(await asyncio.gather(*tasks))
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


async def _new_generations(conn: asyncpg.Connection, projections: Sequence[Projection]) -> dict[str, int]:
    """A new, empty generation `building` of each projection, in one transaction; the retired
    ones and any left building by a rebuild that stopped are dropped."""
    names = [p.name for p in projections]
    async with conn.transaction():
        await _commit_lazily(conn)
        for row in await conn.fetch(
            "SELECT schema_name FROM projection_generations"
            " WHERE name = ANY($1::text[]) AND status IN ('retired', 'building')",
            names,
        ):
            await conn.execute(f"DROP SCHEMA IF EXISTS {row['schema_name']} CASCADE")
        latest = dict(
            await conn.fetch(
                "WITH gone AS (DELETE FROM projection_generations"
                "  WHERE name = ANY($1::text[]) AND status IN ('retired', 'building'))"
                " SELECT name, max(generation) FROM projection_generations"
                " WHERE name = ANY($1::text[]) AND status = 'active' GROUP BY name",
                names,
            )
        )
        generations = {}
        for p in projections:
            generations[p.name] = generation = latest.get(p.name, 0) + 1
            await _create_generation(conn, p, generation, "building")
    return generations


async def _building(conn: asyncpg.Connection) -> None:
    """For the rest of the transaction: sorting and grouping a stretch stays in memory."""
    await conn.execute("SELECT set_config('work_mem', $1, true)", REBUILD_WORK_MEM)


async def _commit_lazily(conn: asyncpg.Connection) -> None:
    """The commit of a transaction that builds a new generation does not wait for the disk,
    unless it appended events (a reactor running commands): a generation is of use only once
    switched, the switch's commit waits for all that came before it, and a crash before takes
    back nothing but a rebuild's progress, which the next rebuild redoes from the start."""
    await conn.execute(f"SELECT set_config('synchronous_commit', {_ON_IF_APPENDED}, true)")


async def _stretch_end(
    conn: asyncpg.Connection, after: LogPosition, limit: int, *, settled_only: bool
) -> tuple[LogPosition, int] | None:
    """The last of the next `limit` events after `after`, and how many there are (None: none)."""
    settled = "AND tx_id < pg_snapshot_xmin(pg_current_snapshot())" if settled_only else ""
    bounds = (str(after.tx_id), after.position)
    # A whole stretch ahead: its last event, found by skipping along the log's index.
    row = await conn.fetchrow(
        f"SELECT tx_id::text AS tx, position FROM public.events WHERE (tx_id, position) > ($1::text::xid8, $2)"
        f" {settled} ORDER BY tx_id, position OFFSET $3 LIMIT 1",
        *bounds,
        limit - 1,
    )
    if row is not None:
        return LogPosition(int(row["tx"]), row["position"]), limit
    # The short end of the log: its last event and how many there are.
    row = await conn.fetchrow(
        f"""
        SELECT tx_id::text AS tx, position, n FROM (
            SELECT tx_id, position, row_number() OVER (ORDER BY tx_id, position) AS n
            FROM (SELECT tx_id, position FROM public.events
                  WHERE (tx_id, position) > ($1::text::xid8, $2) {settled}
                  ORDER BY events.tx_id, events.position LIMIT $3) AS head
        ) AS counted ORDER BY n DESC LIMIT 1
        """,
        *bounds,
        limit,
    )
    if row is None:
        return None
    return LogPosition(int(row["tx"]), row["position"]), row["n"]


async def _cut(conn: asyncpg.Connection, after: LogPosition, size: int) -> list[tuple[LogPosition, int]]:
    """The settled events after `after` as stretches of `size` events (the last may be short):
    the end of each, and how many it holds."""
    out: list[tuple[LogPosition, int]] = []
    while (end := await _stretch_end(conn, after, size, settled_only=True)) is not None:
        out.append(end)
        after, n = end
        if n < size:
            break
    return out


async def _apply_stretch(
    conn: asyncpg.Connection,
    projections: Sequence[Projection],
    generations: dict[str, int],
    after: LogPosition,
    upto: LogPosition,
    scanned: int,
    on_failure: FailureSink | None,
) -> None:
    """Apply the stretch (after, upto] to the new generation of each projection, and record
    their checkpoints at `upto`, in the caller's transaction."""
    applied: list[int] = []
    for p in projections:
        await _use_schema(conn, f"p_{p.name}_{generations[p.name]}")
        try:
            if p.reads_log:
                # Statements for types the stretch does not hold find nothing through the
                # (event_type, tx_id, position) index: no need to list the types first.
                await _apply_range_guarded(conn, p, after, upto, None, on_failure, changes=False)
                applied.append(scanned)
            else:
                applied.append(await _apply_loaded(conn, p, after, upto, on_failure))
        finally:
            await _reset_schema(conn)
    await conn.execute(
        "UPDATE public.projection_generations g SET tx_id = $4::text::xid8, position = $5,"
        " events_applied = g.events_applied + b.applied"
        " FROM unnest($1::text[], $2::int[], $3::bigint[]) AS b(name, generation, applied)"
        " WHERE g.name = b.name AND g.generation = b.generation",
        [p.name for p in projections],
        [generations[p.name] for p in projections],
        applied,
        str(upto.tx_id),
        upto.position,
    )


async def _apply_loaded(
    conn: asyncpg.Connection,
    projection: Projection,
    after: LogPosition,
    upto: LogPosition,
    on_failure: FailureSink | None,
) -> int:
    """Apply the events of the projection's types in the stretch (after, upto] through
    `apply_batch`, loading `LOADED_EVENTS` of the log at a time. Returns how many it applied.
    Nothing can commit inside a stretch once it is cut (see `rebuild`), so reading past its end
    and leaving out what lies beyond sees the same events every time."""
    applied = 0
    while after < upto:
        events, scanned, reached = await _read_for(conn, projection, after, LOADED_EVENTS, False)
        if not scanned:
            break
        inside = [e for e in events if LogPosition(e.tx_id, e.position) <= upto]
        if inside:
            await _apply_guarded(conn, projection, inside, on_failure)
        applied += len(inside)
        after = reached
    return applied


async def _switch(conn: asyncpg.Connection, projection: Projection, generation: int) -> None:
    name = projection.name
    await conn.execute(
        "UPDATE projection_generations SET status = 'retired', finished_at = now() WHERE name = $1 AND status = 'active'",
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
        f"p_{name}_{generation}",
        generation,
        projection.code_version,
    )


# How long a busy runner waits for more commits before it runs; one that waited at least
# IDLE_SECONDS for work was idle and runs at once.
COALESCE_SECONDS = 0.005
IDLE_SECONDS = 0.05


class ProjectionRunner:
    """Keeps the catch-up projections of a service up to date with its log.

    Woken by `wake()` (LISTEN/NOTIFY on new events) and by a polling fallback.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        projections: list[Projection],
        *,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        on_changes: ChangeSink | None = None,
        on_failure: FailureSink | None = None,
        outages: OutageLog | None = None,
    ) -> None:
        self.pool = pool
        self.projections = projections
        self.outages = outages or OutageLog()
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.on_changes = on_changes
        self.on_failure = on_failure
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        # Where lags and spans go (the runtime's).
        self.metrics: ServiceMetrics = DETACHED
        self.tracer = tracing.OFF

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run_once(self) -> int:
        """Catch every projection up to the settled head; returns events read. The projections
        catch up side by side, each on a connection of its own, so a new event waits for the
        slowest of them rather than for all of them in turn."""
        if len(self.projections) == 1:
            return await self._catch_up(self.projections[0])
        # Every projection's turn ends before a failure is raised: none goes on with its
        # connection while the runner starts over.
        read = await asyncio.gather(*(self._catch_up(p) for p in self.projections), return_exceptions=True)
        for outcome in read:
            if isinstance(outcome, BaseException):
                raise outcome
        return sum(n for n in read if isinstance(n, int))

    async def _catch_up(self, projection: Projection) -> int:
        total = 0
        async with self.pool.acquire() as conn:
            while True:
                applied = functools.partial(self._applied, projection.name, tracing.now_ns())
                n, changes = await catch_up_once(
                    conn, projection, batch_size=self.batch_size, on_failure=self.on_failure, on_applied=applied
                )
                total += n
                if changes and self.on_changes is not None:
                    await self.on_changes(projection.name, changes)
                if n < self.batch_size or self._stopping.is_set():
                    break
        return total

    def _applied(self, name: str, started_ns: int, what: Applied) -> None:
        if what.oldest_recorded is not None:
            self.metrics.observe_lag(name, what.oldest_recorded, datetime.now(UTC))
        tracing.batch_spans(self.tracer, f"project {name}", what.metadata, started_ns, **{"sales.projection": name})

    async def run(self) -> None:
        backoff = 0.5
        last_read = 0.0  # when the last run that read events ended
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                if await self.run_once():
                    last_read = time.perf_counter()
                backoff = 0.5
                self.outages.recovered("projections")
            except Exception as exc:  # noqa: BLE001 - the runner outlives any failure, with a backoff
                if is_outage(exc):
                    self.outages.failed("projections", exc)
                else:
                    log.warning("projection_runner_retry", error=str(exc), backoff=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            # Busy (woken soon after the last run that read events): a few milliseconds more
            # make one batch of many commits. Woken after a while idle: catch up at once.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            if time.perf_counter() - last_read < IDLE_SECONDS:
                await asyncio.sleep(COALESCE_SECONDS)


async def record_rebuild_failure(pool: asyncpg.Pool, name: str, error: str) -> None:
    """Keep why the rebuild of `name` stopped on the generation it was building (the next
    rebuild drops that generation, and its error with it)."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE public.projection_generations SET error = $2, finished_at = now()"
            " WHERE name = $1 AND status = 'building'",
            name,
            error,
        )


async def rebuild_states(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    """Each projection's latest generation as the database holds it, whichever replica builds
    it: `running` while it is being built (with the events applied so far), `failed` with the
    error if its rebuild stopped, `done` once it answers queries."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (name) name, generation, status, events_applied, started_at, finished_at, error"
        " FROM public.projection_generations ORDER BY name, generation DESC"
    )
    states = {}
    for r in rows:
        building = r["status"] == "building"
        status = "done" if not building else "running" if r["error"] is None else "failed"
        states[r["name"]] = {
            "projection": r["name"],
            "status": status,
            "generation": r["generation"],
            "events": r["events_applied"],
            "started_at": r["started_at"],
            "finished_at": r["finished_at"],
            "error": r["error"],
        }
    return states
