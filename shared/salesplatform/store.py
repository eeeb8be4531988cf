"""The PostgreSQL event store: append with optimistic concurrency, load a stream, read the log.

Functions take a connection, never a pool: the caller owns the transaction, so the events, the
inline projections and the outbox row commit together.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import asyncpg
import orjson

from salesplatform.errors import ConcurrencyConflict
from salesplatform.events import Actor, Envelope, Role, trusted
from salesplatform.ids import uuid4


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended; the store gives it its stream version."""

    event_type: str
    schema_version: int
    data: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    actor: Actor
    correlation_id: str | None = None
    causation_id: str | None = None
    event_id: uuid.UUID | None = None
    metadata: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored, with its place in the global log."""

    position: int
    tx_id: int
    envelope: Envelope
    origin: str | None = None

    @property
    def event_type(self) -> str:
        return self.envelope.event_type

    @property
    def data(self) -> dict[str, Any]:
        return self.envelope.data


@dataclass(frozen=True, slots=True, order=True)
class LogPosition:
    """A place in the global log: (transaction id, position), compared in that order."""

    tx_id: int = 0
    position: int = 0


LOG_START = LogPosition()

# Note: `tx_id` is selected as a bigint under its own name, so ORDER BY must say
# `events.tx_id` to sort by the indexed column rather than by the converted output value.
_COLUMNS = (
    "position, tx_id::text::bigint AS tx_id, stream_id, stream_version, event_id, event_type, "
    "schema_version, occurred_at, recorded_at, correlation_id, causation_id, actor, data, origin, metadata"
)


async def init_connection(conn: asyncpg.Connection) -> None:
    """Codecs every platform connection uses: jsonb as orjson-decoded Python values, in jsonb's
    binary form (a version byte, then the JSON text), so no text is decoded and encoded again
    on the way."""
    await conn.set_type_codec(
        "jsonb",
        encoder=_jsonb_encode,
        decoder=_jsonb_decode,
        schema="pg_catalog",
        format="binary",
    )


_JSONB_VERSION = b"\x01"


def _jsonb_encode(value: Any) -> bytes:
    return _JSONB_VERSION + orjson.dumps(value)


def _jsonb_decode(data: bytes) -> Any:
    return orjson.loads(memoryview(data)[1:])


# Actors as read from the log: few people and systems write many events each (actors are
# frozen, so one instance serves all of them). Bounded.
_ACTORS: dict[tuple[Any, ...], Actor] = {}
_ACTORS_MAX = 10_000


def _actor(raw: dict[str, Any]) -> Actor:
    key = (raw["id"], raw["role"], raw.get("district"), raw.get("area"), raw.get("replayed_by"))
    actor = _ACTORS.get(key)
    if actor is None:
        if len(_ACTORS) >= _ACTORS_MAX:
            _ACTORS.clear()
        actor = _ACTORS[key] = trusted(
            Actor, id=key[0], role=Role(key[1]), district=key[2], area=key[3], replayed_by=key[4]
        )
    return actor


def _row_to_recorded(row: asyncpg.Record) -> RecordedEvent:
    # Columns in the order of _COLUMNS.
    (
        position,
        tx_id,
        stream_id,
        stream_version,
        event_id,
        event_type,
        schema_version,
        occurred_at,
        recorded_at,
        correlation_id,
        causation_id,
        actor,
        data,
        origin,
        metadata,
    ) = row
    envelope = trusted(
        Envelope,
        event_id=event_id,
        event_type=event_type,
        schema_version=schema_version,
        stream_id=stream_id,
        stream_version=stream_version,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        correlation_id=correlation_id,
        causation_id=causation_id,
        actor=_actor(actor),
        data=data,
        metadata=metadata,
    )
    return RecordedEvent(position, tx_id, envelope, origin)


@dataclass(frozen=True, slots=True)
class StreamAppend:
    """Events for one stream that must be at `expected_version` (0: a new stream)."""

    stream_id: str
    expected_version: int
    events: list[NewEvent]


async def append(
    conn: asyncpg.Connection,
    stream_id: str,
    expected_version: int,
    events: list[NewEvent],
    *,
    outbox: bool = False,
) -> list[RecordedEvent]:
    """Append `events` to a stream that must be at `expected_version` (0: a new stream).

    Two guards: the version check in the INSERT refuses a stale or too-high expectation, and
    the primary key (stream_id, stream_version) refuses the loser of a race between two writers
    that both read the same version. Either way: ConcurrencyConflict, nothing appended.

    `outbox`: also queue the events for publishing and wake the relay and the catch-up
    runners at commit (NOTIFY events), in the same statement.

    A third keeps the global log consistent with stream order: the log is read in transaction-id
    order, so a transaction may only extend a stream whose last event was written by an older
    (or the same) transaction. A younger head means this transaction took its id before that
    writer but appends after it; it gets a ConcurrencyConflict and is retried with a new id.
    """
    return await append_streams(conn, [StreamAppend(stream_id, expected_version, events)], outbox=outbox)


async def append_streams(
    conn: asyncpg.Connection, appends: list[StreamAppend], *, outbox: bool = False
) -> list[RecordedEvent]:
    """`append` for several streams in one statement (the writes of many commands run
    together): all or nothing, with the same three guards for every stream. A stream appears
    at most once. Returns the recorded events in log order (the order given)."""
    appends = [a for a in appends if a.events]
    if not appends:
        return []
    if len({a.stream_id for a in appends}) != len(appends):
        raise ValueError("a stream appears twice in one append")
    events = [e for a in appends for e in a.events]
    streams: list[str] = []
    versions: list[int] = []
    bases: list[int] = []
    for a in appends:
        for k in range(1, len(a.events) + 1):
            streams.append(a.stream_id)
            bases.append(a.expected_version)
            versions.append(a.expected_version + k)
    actors: dict[int, Any] = {}
    ids = [e.event_id or uuid4() for e in events]
    # Queued for the relay, which the notification wakes at commit (in the same statement:
    # no round trip of its own).
    queue = (
        ", queued AS (INSERT INTO outbox (tx_id, position) SELECT pg_current_xact_id(), position FROM appended)"
        ", notified AS MATERIALIZED (SELECT pg_notify('events', ''))"
        if outbox
        else ""
    )
    try:
        rows = await conn.fetch(
            f"""
            WITH appended AS (
            INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version,
                                occurred_at, recorded_at, correlation_id, causation_id, actor, data,
                                metadata)
            SELECT v.stream_id, v.stream_version, v.event_id, v.event_type, v.schema_version,
                   v.occurred_at, v.recorded_at, v.correlation_id, v.causation_id, v.actor, v.data,
                   v.metadata
            FROM unnest($1::text[], $2::int[], $3::int[], $4::uuid[], $5::text[], $6::int[],
                        $7::timestamptz[], $8::timestamptz[], $9::text[], $10::text[],
                        $11::jsonb[], $12::jsonb[], $13::jsonb[])
                 WITH ORDINALITY AS v(stream_id, base, stream_version, event_id, event_type,
                                      schema_version, occurred_at, recorded_at, correlation_id,
                                      causation_id, actor, data, metadata, ord)
            LEFT JOIN LATERAL (
                SELECT h.stream_version, h.tx_id FROM events h
                WHERE h.stream_id = v.stream_id ORDER BY h.stream_version DESC LIMIT 1
            ) AS head ON true
            WHERE coalesce(head.stream_version, 0) = v.base
              AND coalesce(head.tx_id <= pg_current_xact_id(), true)
            ORDER BY v.ord
            RETURNING position, tx_id::text::bigint AS tx_id, stream_id, stream_version
            ){queue}
            SELECT appended.* FROM appended{", notified" if outbox else ""}
            """,
            streams,
            bases,
            versions,
            ids,
            [e.event_type for e in events],
            [e.schema_version for e in events],
            [e.occurred_at for e in events],
            [e.recorded_at for e in events],
            [e.correlation_id for e in events],
            [e.causation_id for e in events],
            [_actor_json(e.actor, actors) for e in events],
            [e.data for e in events],
            [e.metadata for e in events],
        )
    except asyncpg.UniqueViolationError as exc:
        raise ConcurrencyConflict(_moved_on(appends, "is no longer at version")) from exc
    if len(rows) != len(events):
        raise ConcurrencyConflict(_moved_on(appends, "is not at version"))
    # The events as written, from what was sent (decoding the stored JSON again would only
    # give back the same values), with the places the log gave them.
    placed = {(r[2], r[3]): (r[0], r[1]) for r in rows}
    recorded = []
    for stream_id, version, event_id, e in zip(streams, versions, ids, events, strict=True):
        position, tx_id = placed[(stream_id, version)]
        envelope = trusted(
            Envelope,
            event_id=event_id,
            event_type=e.event_type,
            schema_version=e.schema_version,
            stream_id=stream_id,
            stream_version=version,
            occurred_at=e.occurred_at,
            recorded_at=e.recorded_at,
            correlation_id=e.correlation_id,
            causation_id=e.causation_id,
            actor=e.actor,
            data=e.data,
            metadata=e.metadata,
        )
        recorded.append(RecordedEvent(position, tx_id, envelope))
    recorded.sort(key=lambda r: r.position)
    return recorded


def _actor_json(actor: Actor, seen: dict[int, Any]) -> Any:
    """The actor as stored; the events of one command share one actor, dumped once."""
    dumped = seen.get(id(actor))
    if dumped is None:
        dumped = seen[id(actor)] = actor.model_dump(mode="json", exclude={"replayed_by"})
        if actor.replayed_by is not None:
            dumped["replayed_by"] = actor.replayed_by
    return dumped


def _moved_on(appends: list[StreamAppend], what: str) -> str:
    if len(appends) == 1:
        return f"stream {appends[0].stream_id} {what} {appends[0].expected_version}"
    return f"one of {len(appends)} streams {what} expected (first: {appends[0].stream_id})"


async def copy_foreign(conn: asyncpg.Connection, origin: str, envelopes: list[Envelope]) -> list[RecordedEvent]:
    """Keep copies of other services' events; an event already kept is ignored (by event_id).

    Returns only the newly stored ones, in log order, so a redelivered message changes nothing.
    """
    if not envelopes:
        return []
    actors: dict[int, Any] = {}
    rows = await conn.fetch(
        """
        INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version,
                            occurred_at, recorded_at, correlation_id, causation_id, actor, data,
                            origin, metadata)
        SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::int[],
                             $6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[],
                             $10::jsonb[], $11::jsonb[], $12::text[], $13::jsonb[])
        ON CONFLICT DO NOTHING
        RETURNING event_id, position, tx_id::text::bigint AS tx_id
        """,
        [e.stream_id for e in envelopes],
        [e.stream_version for e in envelopes],
        [e.event_id for e in envelopes],
        [e.event_type for e in envelopes],
        [e.schema_version for e in envelopes],
        [e.occurred_at for e in envelopes],
        [e.recorded_at for e in envelopes],
        [e.correlation_id for e in envelopes],
        [e.causation_id for e in envelopes],
        [_actor_json(e.actor, actors) for e in envelopes],
        [e.data for e in envelopes],
        [origin] * len(envelopes),
        [e.metadata for e in envelopes],
    )
    # The copies as received (the stored JSON holds the same values), with their places here.
    by_id = {e.event_id: e for e in envelopes}
    stored = [RecordedEvent(r[1], r[2], by_id[r[0]], origin) for r in rows]
    stored.sort(key=lambda r: r.position)
    return stored


async def load_stream(conn: asyncpg.Connection, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version",
        stream_id,
        after_version,
    )
    return [_row_to_recorded(r) for r in rows]


async def load_payloads(
    conn: asyncpg.Connection, after: dict[str, int]
) -> dict[str, list[tuple[str, int, dict[str, Any]]]]:
    """Streams as (event_type, schema_version, data) in order, each from after the version
    given: what replaying aggregates needs, without building envelopes (the command path loads
    streams for every command). One index range scan per stream (a join against an array of
    streams was measured several times slower on a fast-growing log)."""
    rows = await conn.fetch(_streams_after(len(after)), *(x for pair in after.items() for x in pair))
    out: dict[str, list[tuple[str, int, dict[str, Any]]]] = {}
    for r in rows:
        out.setdefault(r[0], []).append((r[1], r[2], r[3]))
    return out


async def load_many_payloads(
    conn: asyncpg.Connection, after: dict[str, int]
) -> dict[str, list[tuple[str, int, dict[str, Any]]]]:
    """`load_payloads` for many streams at once (a batch's reads ahead): one statement of a
    fixed text, an index range scan per stream through a lateral join. `OFFSET 0` keeps the
    lateral subquery from being merged into a join: merged, a generic plan made while the
    table was small hashes a scan of the whole log and keeps doing so as the log grows."""
    rows = await conn.fetch(
        "SELECT e.stream_id, e.event_type, e.schema_version, e.data"
        " FROM unnest($1::text[], $2::int[]) AS s(stream_id, after_version)"
        " CROSS JOIN LATERAL (SELECT stream_id, event_type, schema_version, data, stream_version FROM events"
        "   WHERE stream_id = s.stream_id AND stream_version > s.after_version OFFSET 0) AS e"
        " ORDER BY e.stream_id, e.stream_version",
        list(after),
        list(after.values()),
    )
    out: dict[str, list[tuple[str, int, dict[str, Any]]]] = {}
    for r in rows:
        out.setdefault(r[0], []).append((r[1], r[2], r[3]))
    return out


@functools.cache
def _streams_after(n: int) -> str:
    one = (
        "SELECT stream_id, event_type, schema_version, data, stream_version FROM events"
        " WHERE stream_id = ${} AND stream_version > ${}"
    )
    parts = [one.format(2 * i + 1, 2 * i + 2) for i in range(n)]
    return " UNION ALL ".join(f"({p})" for p in parts) + " ORDER BY stream_id, stream_version"


async def load_event(conn: asyncpg.Connection, event_id: uuid.UUID) -> RecordedEvent | None:
    """One event of the log by its id (own or copied from another service)."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM events WHERE event_id = $1", event_id)
    return _row_to_recorded(row) if row is not None else None


async def stream_version(conn: asyncpg.Connection, stream_id: str) -> int:
    return cast(
        "int",
        await conn.fetchval("SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1", stream_id),
    )


async def read_log(
    conn: asyncpg.Connection,
    after: LogPosition,
    limit: int,
    *,
    event_types: list[str] | None = None,
    settled_only: bool = True,
) -> list[RecordedEvent]:
    """Read the global log after `after`, in (tx_id, position) order.

    Gap policy: with `settled_only`, only events of transactions older than the oldest one still
    running are returned. Every transaction that could still commit has a larger tx_id than
    anything returned, so advancing the checkpoint past what was read never skips an event that
    commits late. `settled_only=False` is for a reader that holds a lock keeping writers out.
    """
    settled = "AND tx_id < pg_snapshot_xmin(pg_current_snapshot())" if settled_only else ""
    types = "AND event_type = ANY($4::text[])" if event_types is not None else ""
    args: list[Any] = [str(after.tx_id), after.position, limit]
    if event_types is not None:
        args.append(event_types)
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM events
        WHERE (tx_id, position) > ($1::text::xid8, $2) {settled} {types}
        ORDER BY events.tx_id, events.position
        LIMIT $3
        """,
        *args,
    )
    return [_row_to_recorded(r) for r in rows]


async def read_log_of_types(
    conn: asyncpg.Connection,
    after: LogPosition,
    limit: int,
    event_types: frozenset[str] | set[str] | list[str],
    *,
    settled_only: bool = True,
) -> tuple[list[RecordedEvent], int, LogPosition]:
    """Scan up to `limit` events of the log after `after` (same order and gap policy as
    `read_log`) but return only those of `event_types`, with how many were scanned and the
    position reached — so a reader of a few types moves past the rest without loading them.

    Two statements, one snapshot each, agree: everything at or below the scanned end belongs
    to transactions that had finished before the first one ran.
    """
    settled = "AND tx_id < pg_snapshot_xmin(pg_current_snapshot())" if settled_only else ""
    end = await conn.fetchrow(
        f"""
        SELECT tx_id::text::bigint AS tx_id, position, scanned FROM (
            SELECT tx_id, position, count(*) OVER () AS scanned FROM (
                SELECT tx_id, position FROM events
                WHERE (tx_id, position) > ($1::text::xid8, $2) {settled}
                ORDER BY tx_id, position LIMIT $3
            ) batch
        ) counted ORDER BY tx_id DESC, position DESC LIMIT 1
        """,
        str(after.tx_id),
        after.position,
        limit,
    )
    if end is None:
        return [], 0, after
    reached = LogPosition(end["tx_id"], end["position"])
    return await read_log_between(conn, after, reached, event_types), end["scanned"], reached


async def read_log_between(
    conn: asyncpg.Connection, after: LogPosition, upto: LogPosition, event_types: Iterable[str] | None
) -> list[RecordedEvent]:
    """The events of `event_types` (None: of every type) in the stretch (after, upto] of the log,
    in log order. The log is named with its schema: a projection's generation may be first on
    the search path."""
    bounds = (str(after.tx_id), after.position, str(upto.tx_id), upto.position)
    of_types = "" if event_types is None else "AND event_type = ANY($5::text[])"
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM public.events
        WHERE (tx_id, position) > ($1::text::xid8, $2) AND (tx_id, position) <= ($3::text::xid8, $4)
          {of_types}
        ORDER BY events.tx_id, events.position
        """,
        *bounds,
        *(() if event_types is None else (list(event_types),)),
    )
    return [_row_to_recorded(r) for r in rows]


@dataclass(frozen=True, slots=True)
class LogScan:
    """What a stretch of the log holds for a reader of some event types, without the events."""

    scanned: int  # events of any type in the stretch
    reached: LogPosition  # its end (inclusive)
    matching: int  # events of the reader's types
    present: frozenset[str]  # which of the reader's types occur
    oldest_recorded: datetime | None = None  # when the earliest recorded of those was recorded
    metadata: tuple[dict[str, str], ...] = ()  # the distinct metadata those events keep


async def scan_log_of_types(
    conn: asyncpg.Connection, after: LogPosition, limit: int, event_types: Iterable[str]
) -> LogScan | None:
    """Scan up to `limit` settled events after `after` (the order and gap policy of `read_log`)
    and say what they hold of `event_types`, in one statement: for a projection that reads its
    events from the log itself with set-based SQL. None: nothing settled after `after`."""
    row = await conn.fetchrow(
        """
        WITH batch AS MATERIALIZED (
            SELECT tx_id, position, event_type, recorded_at, metadata FROM events
            WHERE (tx_id, position) > ($1::text::xid8, $2) AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY tx_id, position LIMIT $3
        )
        SELECT last.tx_id::text::bigint, last.position, counted.scanned, counted.matching, counted.present,
               counted.oldest, counted.metadata
        FROM (SELECT count(*) AS scanned, count(*) FILTER (WHERE event_type = ANY($4::text[])) AS matching,
                     array_agg(DISTINCT event_type) FILTER (WHERE event_type = ANY($4::text[])) AS present,
                     min(recorded_at) FILTER (WHERE event_type = ANY($4::text[])) AS oldest,
                     array_agg(DISTINCT metadata)
                       FILTER (WHERE event_type = ANY($4::text[]) AND metadata IS NOT NULL) AS metadata
              FROM batch) counted
        CROSS JOIN LATERAL (SELECT tx_id, position FROM batch ORDER BY tx_id DESC, position DESC LIMIT 1) last
        """,
        str(after.tx_id),
        after.position,
        limit,
        list(event_types),
    )
    if row is None:
        return None
    return LogScan(row[2], LogPosition(row[0], row[1]), row[3], frozenset(row[4] or ()), row[5], tuple(row[6] or ()))


async def log_head(conn: asyncpg.Connection) -> LogPosition:
    row = await conn.fetchrow(
        "SELECT tx_id::text::bigint AS tx_id, position FROM events "
        "ORDER BY events.tx_id DESC, events.position DESC LIMIT 1"
    )
    return LogPosition(row["tx_id"], row["position"]) if row else LOG_START
