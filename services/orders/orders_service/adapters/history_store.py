"""Appending imported history to the event log at close to COPY speed.

Bulk (a file, one transaction per chunk): the events of new streams are copied straight into
`events` with binary COPY; the outbox rows follow with one `INSERT … SELECT`, and the inline
read models are updated from the new events, all in the chunk's transaction, so the relay
publishes them like any other history. COPY cannot skip a duplicate, so duplicates are kept
away before it: the importer looks up the event ids of the chunk's records and leaves out every
record already stored (a record's events are always appended together). Should the same
records be imported concurrently after all, the unique event id makes the COPY fail and the
chunk is refused whole, never half-stored.

Events appended to streams that existed before the transaction (a delivery for an order
imported earlier) go through one `INSERT … SELECT … ON CONFLICT DO NOTHING` with the same guards
as the platform's append: the stream must still be at the expected version, and its head must
have been written by an older transaction, so the global log keeps stream order.

The batch form (the `import_history` command, inside a command's transaction that other
commands may share) uses that guarded insert for everything.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import asyncpg
import orjson

from salesplatform.errors import ConcurrencyConflict
from salesplatform.events import Actor, Envelope, trusted
from salesplatform.projections import Projection, apply_inline
from salesplatform.store import RecordedEvent


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    event_type: str
    occurred_at: datetime
    data: dict[str, Any]
    causation_id: str
    # The stream was written before this transaction (its head's writer must be older).
    existing_stream: bool = False


_COLUMNS = (
    "stream_id",
    "stream_version",
    "event_id",
    "event_type",
    "schema_version",
    "occurred_at",
    "recorded_at",
    "correlation_id",
    "causation_id",
    "actor",
    "data",
)

_GUARDED_INSERT = """
WITH ins AS (
    INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version,
                        occurred_at, recorded_at, correlation_id, causation_id, actor, data)
    SELECT s.stream_id, s.stream_version, s.event_id, s.event_type, 1, s.occurred_at, $1, $2,
           s.causation_id, $3::jsonb, s.data::jsonb
    FROM unnest($4::int[], $5::uuid[], $6::text[], $7::int[], $8::text[], $9::timestamptz[],
                $10::text[], $11::text[], $12::boolean[])
         AS s(seq, event_id, stream_id, stream_version, event_type, occurred_at, data, causation_id, existing)
    WHERE NOT s.existing
       OR coalesce((SELECT h.stream_version = s.stream_version - 1 AND h.tx_id <= pg_current_xact_id()
                    FROM events h WHERE h.stream_id = s.stream_id
                    ORDER BY h.stream_version DESC LIMIT 1), false)
    ORDER BY s.seq
    ON CONFLICT DO NOTHING
    RETURNING event_id, position
), queued AS (
    INSERT INTO outbox (tx_id, position) SELECT pg_current_xact_id(), position FROM ins
)
SELECT event_id, position FROM ins
"""


async def _copy_new_streams(
    conn: asyncpg.Connection,
    events: Sequence[HistoryEvent],
    actor: dict[str, Any],
    recorded_at: datetime,
    correlation_id: str,
) -> list[tuple[uuid.UUID, int]]:
    """COPY into events (the transaction's first write), then queue them in the outbox.
    Returns (event id, position) of each (binary COPY: the platform's jsonb codec is binary)."""
    try:
        await conn.copy_records_to_table(
            "events",
            records=[
                (
                    e.stream_id,
                    e.stream_version,
                    e.event_id,
                    e.event_type,
                    1,
                    e.occurred_at,
                    recorded_at,
                    correlation_id,
                    e.causation_id,
                    actor,
                    e.data,
                )
                for e in events
            ],
            columns=_COLUMNS,
        )
    except asyncpg.UniqueViolationError as exc:
        raise ConcurrencyConflict(
            "some of these records were stored while this import ran (an import of the same file at the"
            " same time?); run the import again, records already imported are skipped"
        ) from exc
    # COPY numbers the rows in the order it reads them, so the positions this transaction
    # appended, in order, belong to `events` in order (checked at both ends).
    rows = await conn.fetch(
        """
        WITH mine AS (
            SELECT position FROM events WHERE tx_id = pg_current_xact_id()
        ), queued AS (
            INSERT INTO outbox (tx_id, position) SELECT pg_current_xact_id(), position FROM mine
        )
        SELECT position FROM mine ORDER BY position
        """
    )
    first, last = rows[0]["position"], rows[-1]["position"]
    ends = {
        r["position"]: r["event_id"]
        for r in await conn.fetch(
            "SELECT position, event_id FROM events WHERE position = ANY($1::bigint[])",
            [first, last],
        )
    }
    if len(rows) != len(events) or (ends[first], ends[last]) != (events[0].event_id, events[-1].event_id):
        raise RuntimeError("the copied events do not read back in the order they were written")
    return [(e.event_id, r["position"]) for e, r in zip(events, rows, strict=True)]


async def _insert_guarded(
    conn: asyncpg.Connection,
    events: Sequence[HistoryEvent],
    actor: dict[str, Any],
    recorded_at: datetime,
    correlation_id: str,
) -> list[tuple[uuid.UUID, int]]:
    rows = await conn.fetch(
        _GUARDED_INSERT,
        recorded_at,
        correlation_id,
        actor,
        list(range(len(events))),
        [e.event_id for e in events],
        [e.stream_id for e in events],
        [e.stream_version for e in events],
        [e.event_type for e in events],
        [e.occurred_at for e in events],
        [orjson.dumps(e.data).decode() for e in events],
        [e.causation_id for e in events],
        [e.existing_stream for e in events],
    )
    if len(rows) < len(events):
        stored = {r["event_id"] for r in rows}
        missing = [e.event_id for e in events if e.event_id not in stored]
        present = {
            r["event_id"]
            for r in await conn.fetch("SELECT event_id FROM events WHERE event_id = ANY($1::uuid[])", missing)
        }
        lost = [e for e in events if e.event_id in set(missing) - present]
        if lost:
            raise ConcurrencyConflict(
                f"stream {lost[0].stream_id} moved on during the import; run the import again,"
                " records already imported are skipped"
            )
    return cast("list[tuple[uuid.UUID, int]]", rows)


async def append_history(
    conn: asyncpg.Connection,
    events: Sequence[HistoryEvent],
    *,
    actor: Actor,
    recorded_at: datetime,
    correlation_id: str,
    inline: Sequence[Projection],
    bulk: bool,
    timings: dict[str, float] | None = None,
) -> list[RecordedEvent]:
    """Append in the caller's transaction; returns the events stored now (not the skipped ones).

    `bulk` needs a transaction of its own (the chunk's), for it reads back what this transaction
    appended. Otherwise the guarded insert serves a transaction shared with other commands.
    `timings` adds up the seconds spent appending and updating the read models.
    """
    if not events:
        return []
    started = time.perf_counter()
    actor_json = actor.model_dump(mode="json")
    rows: list[tuple[uuid.UUID, int]] = []
    if bulk:
        new = [e for e in events if not e.existing_stream]
        old = [e for e in events if e.existing_stream]
        if new:
            rows.extend(await _copy_new_streams(conn, new, actor_json, recorded_at, correlation_id))
        if old:
            rows.extend(await _insert_guarded(conn, old, actor_json, recorded_at, correlation_id))
    else:
        rows.extend(await _insert_guarded(conn, events, actor_json, recorded_at, correlation_id))
    appended = time.perf_counter()
    if timings is not None:
        timings["append"] = timings.get("append", 0.0) + appended - started
    if not rows:
        return []
    tx_id = await conn.fetchval("SELECT pg_current_xact_id()::text::bigint")
    by_id = {e.event_id: e for e in events}
    recorded = []
    for event_id, position in sorted(rows, key=lambda r: r[1]):
        e = by_id[event_id]
        envelope = trusted(
            Envelope,
            event_id=e.event_id,
            event_type=e.event_type,
            schema_version=1,
            stream_id=e.stream_id,
            stream_version=e.stream_version,
            occurred_at=e.occurred_at,
            recorded_at=recorded_at,
            correlation_id=correlation_id,
            causation_id=e.causation_id,
            actor=actor,
            data=e.data,
        )
        recorded.append(RecordedEvent(position, tx_id, envelope))
    for projection in inline:
        await apply_inline(conn, projection, recorded)
    await conn.execute("SELECT pg_notify('events', '')")
    if timings is not None:
        timings["read_models"] = timings.get("read_models", 0.0) + time.perf_counter() - appended
    return recorded
