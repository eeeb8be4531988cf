"""NATS side of a service: streams, the outbox relay, consumers of other services' events,
command request/reply, asynchronous ingest and dead letters.

Built on nats-py directly rather than FastStream's subscribers: the ack policy here is explicit
(ack after commit, nak with backoff on transient errors, dead-letter after bounded deliveries),
and the per-message cost of FastStream's consume path (~190 µs against ~58 µs raw, see
docs/baselines.md) would take most of the ingest budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import nats
import nats.errors
import nats.js.errors
import orjson
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig
from pydantic import ValidationError

from salesplatform import tracing
from salesplatform.auth import TokenVerifier, actor_from_header
from salesplatform.commands import CommandBus, InternalError, Outcome, Request
from salesplatform.errors import ServiceError, Unauthenticated, Unavailable
from salesplatform.events import Actor, Envelope
from salesplatform.metrics import DETACHED, ServiceMetrics
from salesplatform.outages import OutageLog, is_contention, is_outage, is_transient
from salesplatform.store import RecordedEvent, copy_foreign

log = structlog.get_logger(__name__)

DUPLICATE_WINDOW_SECONDS = 120.0
# How long a woken loop that is busy waits for more work to arrive before it runs, so that
# one batch serves many commits.
COALESCE_SECONDS = 0.005
# A loop that waited at least this long for work was idle: it runs what woke it at once (a
# lone event is not held back for company that is not coming).
IDLE_SECONDS = 0.05


@dataclass(frozen=True)
class Topology:
    """Subject and stream names of one service. `namespace` prefixes all of them, so several
    systems (tests) can share one NATS server; production leaves it empty."""

    service: str
    namespace: str = ""

    def subject(self, *parts: str) -> str:
        base = ".".join((self.service, *parts))
        return f"{self.namespace}.{base}" if self.namespace else base

    def of(self, service: str) -> Topology:
        return Topology(service, self.namespace)

    def stream(self, suffix: str = "") -> str:
        name = self.service.upper() + (f"_{suffix}" if suffix else "")
        return f"{self.namespace.upper()}_{name}" if self.namespace else name

    @property
    def event_stream(self) -> str:
        return self.stream()

    @property
    def ingest_stream(self) -> str:
        return self.stream("INGEST")

    @property
    def dlq_stream(self) -> str:
        return self.stream("DLQ")

    @property
    def results_stream(self) -> str:
        return self.stream("RESULTS")

    def event_subject(self, event_type: str) -> str:
        return self.subject("event", event_type)

    def durable(self, name: str) -> str:
        return f"{self.namespace}_{name}" if self.namespace else name


async def ensure_stream(
    js: JetStreamContext, name: str, subjects: list[str], *, update: bool = True, **config: Any
) -> None:
    """Create the stream, or bring an existing one to this configuration (`update`). A
    retention policy JetStream cannot change in place is kept, with a warning that says so."""
    cfg = StreamConfig(name=name, subjects=subjects, duplicate_window=DUPLICATE_WINDOW_SECONDS, **config)
    try:
        await js.add_stream(cfg)
        return
    except nats.js.errors.BadRequestError:
        if not update:
            return
    existing = (await js.stream_info(name)).config
    wanted = RetentionPolicy(cfg.retention or RetentionPolicy.LIMITS)
    kept = RetentionPolicy(existing.retention or RetentionPolicy.LIMITS)
    if kept != wanted:
        log.warning(
            "stream_retention_kept",
            stream=name,
            retention=kept.value,
            wanted=wanted.value,
            hint="JetStream cannot change this in place: once the stream has no pending messages, "
            "delete it and restart the service to recreate it",
        )
        cfg.retention = existing.retention
    await js.update_stream(cfg)


async def ensure_streams(
    js: JetStreamContext,
    topology: Topology,
    *,
    dead_letter_days: float = 30.0,
    result_days: float = 7.0,
    replicas: int = 1,
    update: bool = True,
) -> None:
    """The service's own streams, each on `replicas` servers: events; ingest, a work queue (a
    command leaves it once processed, with its sender's token and any personal data in it);
    dead letters, kept `dead_letter_days` for operators to look into; and the results of
    ingested commands, kept `result_days` for the senders to reconcile with."""
    await ensure_stream(
        js, topology.event_stream, [topology.subject("event", ">")], update=update, num_replicas=replicas
    )
    await ensure_stream(
        js,
        topology.ingest_stream,
        [topology.subject("ingest", ">")],
        update=update,
        retention=RetentionPolicy.WORK_QUEUE,
        num_replicas=replicas,
    )
    await ensure_stream(
        js,
        topology.dlq_stream,
        [topology.subject("dlq", ">")],
        update=update,
        max_age=dead_letter_days * 86_400,
        num_replicas=replicas,
    )
    await ensure_stream(
        js,
        topology.results_stream,
        [topology.subject("result", ">")],
        update=update,
        max_age=result_days * 86_400,
        num_replicas=replicas,
    )


async def ensure_streams_of(
    nats_url: str,
    namespace: str,
    services: list[str] | tuple[str, ...],
    *,
    login: Callable[[str], dict[str, str]] | None = None,
) -> None:
    """Create services' streams ahead of them (idempotent), each as that service (`login`
    gives its user and password: a service's streams are in its own NATS account): a consumer
    then binds at once instead of waiting for its producer to start — tests that run one
    service alone. Streams that exist are left as their service set them."""
    for service in services:
        nc = await nats.connect(nats_url, **(login(service) if login else {}))
        try:
            await ensure_streams(nc.jetstream(), Topology(service, namespace), update=False)
        finally:
            await nc.close()


def event_headers(envelope: Envelope) -> dict[str, str]:
    headers = {
        "Nats-Msg-Id": str(envelope.event_id),
        "Event-Type": envelope.event_type,
        "Stream-Id": envelope.stream_id,
        "Stream-Version": str(envelope.stream_version),
    }
    if envelope.correlation_id:
        headers["Correlation-Id"] = envelope.correlation_id
    return headers


# Headers never copied into a dead letter: a durable stream is no place for credentials.
_CREDENTIAL_HEADERS = frozenset({"authorization"})


def _kept_in_dead_letter(header: str) -> bool:
    """Not credentials, and none of JetStream's publish directives (`Nats-Msg-Id` becomes
    `Original-Msg-Id`; a `Nats-Expected-Stream` the sender set for the ingest stream would make
    JetStream refuse the dead letter, so it would be retried for ever)."""
    return header.lower() not in _CREDENTIAL_HEADERS and not header.startswith("Nats-")


# What a dead-lettered command keeps of its payload: given the command's name and payload, the
# body to keep and headers saying what was done to it (`Dlq-Withheld`, `Dlq-Sealed`).
CommandGuard = Callable[[str, bytes], Awaitable[tuple[bytes, dict[str, str]]]]


class DeadLetters:
    """Publishes what could not be handled to `<service>.dlq.<reason>` (a durable stream),
    with the original payload and headers (credentials left out), the error and what a replay
    needs: the original subject, the command, its sender's identity (from the token, never the
    token) and idempotency key, the first and last failure and the deliveries
    (`salesplatform.dead_letters` reads them back). A command's payload goes through the
    service's `guard` first, which seals or leaves out personal data (dead letters are kept for
    days, past an erasure)."""

    def __init__(self, js: JetStreamContext, topology: Topology, *, guard: CommandGuard | None = None) -> None:
        self.js = js
        self.topology = topology
        self.guard = guard
        self.sent: Counter[str] = Counter()  # by reason, since the process started

    async def send(
        self,
        reason: str,
        payload: bytes,
        *,
        error: str,
        headers: dict[str, str] | None = None,
        source: str | None = None,
        dedup_id: str | None = None,
        failure: Failure | None = None,
    ) -> int:
        """Publish one dead letter; returns its sequence in the dead-letter stream."""
        hdrs = {k: v for k, v in (headers or {}).items() if _kept_in_dead_letter(k)}
        if headers and "Nats-Msg-Id" in headers:
            hdrs["Original-Msg-Id"] = headers["Nats-Msg-Id"]
        hdrs["Dlq-Reason"] = reason
        hdrs["Dlq-Error"] = error[:2000]
        if source:
            hdrs["Dlq-Source"] = source
        hdrs.update((failure or Failure()).headers())
        hdrs["Nats-Msg-Id"] = dedup_id or f"dlq-{uuid.uuid4()}"
        ack = await self.js.publish(self.topology.subject("dlq", reason), payload, headers=hdrs)
        self.sent[reason] += 1
        log.warning("dead_lettered", reason=reason, error=error[:300], source=source)
        return ack.seq

    async def send_msg(
        self, reason: str, msg: Msg, error: str, *, command: str | None = None, failure: Failure | None = None
    ) -> None:
        """Dead-letter a message; `command` names the command it carries (its payload is then
        guarded)."""
        source = msg.subject
        dedup = None
        failure = failure or Failure()
        failure.subject = msg.subject
        failure.command = command
        with contextlib.suppress(Exception):
            md = msg.metadata
            source = f"{md.stream}:{md.sequence.stream}"
            dedup = f"dlq-{md.stream}-{md.sequence.stream}"
            failure.deliveries = md.num_delivered
        payload, headers = msg.data, dict(msg.headers or {})
        if command is not None and self.guard is not None:
            payload, said = await self.guard(command, payload)
            headers.update(said)
        await self.send(reason, payload, error=error, headers=headers, source=source, dedup_id=dedup, failure=failure)


@dataclass
class Failure:
    """What a dead letter records of the failure, besides its reason and error: where the
    message was sent, which command it carries, who sent it and under which idempotency key
    (for a replay), the first and last failure (seconds since the epoch) and how many times it
    was delivered."""

    subject: str | None = None
    command: str | None = None
    sender: Actor | None = None
    idempotency_key: str | None = None
    correlation_id: str | None = None
    first_failed: float | None = None
    last_failed: float | None = None
    deliveries: int = 1

    def headers(self) -> dict[str, str]:
        last = self.last_failed or time.time()
        out = {
            "Dlq-First-Failed": _iso(self.first_failed or last),
            "Dlq-Last-Failed": _iso(last),
            "Dlq-Deliveries": str(self.deliveries),
        }
        if self.subject:
            out["Dlq-Subject"] = self.subject
        if self.command:
            out["Dlq-Command"] = self.command
        if self.sender is not None:
            out["Dlq-Sender"] = self.sender.model_dump_json(exclude_none=True)
        if self.idempotency_key:
            out["Dlq-Idempotency-Key"] = self.idempotency_key
        if self.correlation_id:
            out["Dlq-Correlation-Id"] = self.correlation_id
        return out


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


# Rows the relay deletes from the outbox between two vacuums of it.
VACUUM_EVERY = 5_000


class JetStreamPublisher:
    """Publishes batches to JetStream and collects their acknowledgements: one reply
    subscription for every publish, one wait per batch.

    Each message's reply subject names its batch and its place in it, so an acknowledgement
    that comes after its batch was given up is recognised and ignored. Half the CPU of
    `publish_async`, which keeps a future, a semaphore slot and a parsed PubAck per message.
    One batch at a time.
    """

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self._prefix = ""
        self._sub: Any = None
        self._batches = 0
        self._waiting: _Acks | None = None

    async def publish(self, messages: Sequence[tuple[str, bytes, dict[str, str]]], timeout: float) -> list[str | None]:
        """Publish `messages` (subject, body, headers) in order and wait up to `timeout` for
        their acknowledgements: for each, None if the stream stored it (or already had it,
        by its Nats-Msg-Id), else why not."""
        if self._waiting is not None:
            raise RuntimeError("JetStreamPublisher publishes one batch at a time")
        if self._sub is None:
            self._prefix = self.nc.new_inbox() + "."
            self._sub = await self.nc.subscribe(self._prefix + "*.*", cb=self._on_ack)
        self._batches += 1
        acks = self._waiting = _Acks(self._batches, len(messages))
        try:
            reply = f"{self._prefix}{acks.batch}."
            for i, (subject, body, headers) in enumerate(messages):
                await self._send(subject, body, reply + str(i), headers)
            if acks.left:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(acks.all_in.wait(), timeout)
        finally:
            self._waiting = None
        return [f"no acknowledgement within {timeout} s" if r is _UNANSWERED else r for r in acks.results]

    async def _send(self, subject: str, body: bytes, reply: str, headers: dict[str, str]) -> None:
        await self.nc.publish(subject, body, reply=reply, headers=headers)

    async def _on_ack(self, msg: Msg) -> None:
        acks = self._waiting
        batch, _, index = msg.subject[len(self._prefix) :].partition(".")
        if acks is None or batch != str(acks.batch) or not index.isdigit() or int(index) >= len(acks.results):
            return  # the answer to a batch already given up
        i = int(index)
        if acks.results[i] is not _UNANSWERED:
            return
        acks.results[i] = _refusal(msg)
        acks.left -= 1
        if acks.left == 0:
            acks.all_in.set()

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None


_UNANSWERED: Any = object()


class _Acks:
    __slots__ = ("all_in", "batch", "left", "results")

    def __init__(self, batch: int, size: int) -> None:
        self.batch = batch
        self.results: list[Any] = [_UNANSWERED] * size
        self.left = size
        self.all_in = asyncio.Event()


def _refusal(msg: Msg) -> str | None:
    """None if `msg` is JetStream's acknowledgement of a stored message, else why it is not:
    an error answer, or a status without a body (503: no stream takes the subject)."""
    if not msg.data:
        status = (msg.headers or {}).get("Status", "no answer")
        return f"not stored: status {status}"
    try:
        ack = orjson.loads(msg.data)
    except orjson.JSONDecodeError:
        return f"not stored: {msg.data[:200]!r}"
    if not isinstance(ack, dict) or "error" in ack or "seq" not in ack:
        return f"not stored: {msg.data[:200].decode(errors='replace')}"
    return None


class OutboxRelay:
    """Publishes committed events from the outbox to JetStream, then deletes their rows.

    One relay per service is active (a session advisory lock); others stand by. A batch is
    published in log order without waiting between messages (`JetStreamPublisher`); after a
    failure only the confirmed prefix is deleted and the rest is sent again — JetStream drops
    duplicates by Nats-Msg-Id. Within the process batches go one after the other: a flush
    asked for while a batch is in flight (at shutdown, from a test) waits for it, then reads
    what is still pending.
    """

    LOCK_KEY = 7_246_002

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: JetStreamPublisher,
        topology: Topology,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        ack_timeout: float = 5.0,
        outages: OutageLog | None = None,
    ) -> None:
        self.pool = pool
        self.publisher = publisher
        self.outages = outages or OutageLog()
        self.topology = topology
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.ack_timeout = ack_timeout
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._one_batch = asyncio.Lock()
        self.published = 0
        self._deleted_since_vacuum = 0
        self._vacuum: asyncio.Task[None] | None = None
        self._last_batch = 0.0  # when the last batch that published anything ended
        # Where publish latencies and spans go (the runtime's).
        self.metrics: ServiceMetrics = DETACHED
        self.tracer = tracing.OFF

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def publish_pending(self, conn: asyncpg.Connection) -> int:
        """Publish one batch; returns how many were confirmed. Raises if some were not."""
        async with self._one_batch:
            return await self._publish_batch(conn)

    async def _publish_batch(self, conn: asyncpg.Connection) -> int:
        # The oldest pending rows by the outbox's own key, then each event by its place in the
        # log: index lookups whatever the planner believes about two tables that change fast
        # (`OFFSET 0` keeps the lateral subquery from being merged into a hash join).
        # The envelope's JSON is built by PostgreSQL from the stored row (jsonb as it is
        # stored, timestamps in ISO 8601 in UTC): the relay only hands bytes to NATS.
        rows = await conn.fetch(
            "SELECT e.position, e.event_id::text, e.event_type, e.stream_id, e.stream_version, e.correlation_id,"
            " e.metadata,"
            " convert_to(json_build_object('event_id', e.event_id, 'event_type', e.event_type,"
            " 'schema_version', e.schema_version, 'stream_id', e.stream_id, 'stream_version', e.stream_version,"
            " 'occurred_at', to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'),"
            " 'recorded_at', to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"'),"
            " 'correlation_id', e.correlation_id, 'causation_id', e.causation_id,"
            " 'actor', e.actor, 'data', e.data, 'metadata', e.metadata)::text, 'UTF8')"
            " FROM (SELECT tx_id, position FROM outbox ORDER BY position LIMIT $1) o"
            " CROSS JOIN LATERAL (SELECT * FROM events e WHERE e.tx_id = o.tx_id AND e.position = o.position OFFSET 0) e"
            " ORDER BY o.position",
            self.batch_size,
        )
        if not rows:
            return 0
        subject = self.topology.event_subject
        messages = []
        spans = []
        for _position, event_id, event_type, stream_id, stream_version, correlation_id, metadata, body in rows:
            headers = {
                "Nats-Msg-Id": event_id,
                "Event-Type": event_type,
                "Stream-Id": stream_id,
                "Stream-Version": str(stream_version),
            }
            if correlation_id:
                headers["Correlation-Id"] = correlation_id
            # The publish goes on the trace of the command that recorded the event; the
            # consumers go on from it.
            span = tracing.published(self.tracer, metadata, event_type, event_id)
            if span is not None:
                headers.update(tracing.carrier(span))
                spans.append(span)
            messages.append((subject(event_type), body, headers))
        started = time.perf_counter()
        refusals = await self.publisher.publish(messages, self.ack_timeout)
        self.metrics.observe_publish(time.perf_counter() - started)
        for span in spans:
            span.end()
        confirmed = 0
        for refusal in refusals:
            if refusal is not None:
                break
            confirmed += 1
        if confirmed:
            await conn.execute(
                "DELETE FROM outbox WHERE position = ANY($1::bigint[])",
                [r[0] for r in rows[:confirmed]],
            )
            self.published += confirmed
        if confirmed < len(rows):
            raise ConnectionError(f"JetStream did not confirm an event: {refusals[confirmed]}")
        return confirmed

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            if self._vacuum is not None:
                await asyncio.gather(self._vacuum, return_exceptions=True)

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                async with self.pool.acquire() as conn:
                    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.LOCK_KEY):
                        await self._sleep(self.poll_interval * 2)
                        continue
                    try:
                        await conn.add_listener("events", self._on_notify)
                        # A restart of the database ends the session and its LISTEN without a
                        # notification: the relay wakes, finds it gone and takes a new one.
                        conn.add_termination_listener(self._on_session_ended)
                        while not self._stopping.is_set():
                            self._wake.clear()
                            n = await self.publish_pending(conn)
                            if n:
                                self._last_batch = time.perf_counter()
                            backoff = 0.2
                            self.outages.recovered("relay")
                            await self._vacuum_if_due(conn, n)
                            if n < self.batch_size:
                                # Busy (woken soon after the last batch): let the commits of
                                # the next few milliseconds join this batch, one round of
                                # publishes and one delete for many commands. Woken after a
                                # while idle: publish at once.
                                await self._sleep(self.poll_interval)
                                if time.perf_counter() - self._last_batch < IDLE_SECONDS:
                                    await asyncio.sleep(COALESCE_SECONDS)
                    finally:
                        conn.remove_termination_listener(self._on_session_ended)
                        with contextlib.suppress(Exception):
                            await conn.remove_listener("events", self._on_notify)
                            await conn.execute("SELECT pg_advisory_unlock($1)", self.LOCK_KEY)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the relay outlives any failure, with a backoff
                if is_outage(exc):
                    self.outages.failed("relay", exc)
                else:
                    log.warning("relay_retry", error=repr(exc), backoff=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _vacuum_if_due(self, conn: asyncpg.Connection, deleted: int) -> None:
        """The outbox is a queue: every row is deleted soon after it is written. Its dead rows
        are cleared here every few thousand events rather than at autovacuum's pace (a minute),
        so reading the oldest pending rows never walks far past deleted ones. Only once the
        relay has caught up: with a backlog, each vacuum would scan what is still pending.
        The vacuum runs on a connection of its own while the relay goes on publishing (it
        takes no lock that the relay's reads and deletes wait for), so the events committed
        meanwhile do not wait for it."""
        self._deleted_since_vacuum += deleted
        running = self._vacuum is not None and not self._vacuum.done()
        if deleted < self.batch_size and self._deleted_since_vacuum >= VACUUM_EVERY and not running:
            self._deleted_since_vacuum = 0
            self._vacuum = asyncio.create_task(self._vacuum_outbox(), name="outbox-vacuum")

    async def _vacuum_outbox(self) -> None:
        try:
            async with self.pool.acquire() as conn:
                await conn.execute("VACUUM (SKIP_LOCKED) outbox")
        except Exception as exc:  # noqa: BLE001 - autovacuum clears what this one did not
            log.info("outbox_vacuum_skipped", error=repr(exc))

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    def _on_session_ended(self, *_: object) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)


# How long the first failure of a message that went through after failing is kept: a message
# that keeps failing is dead-lettered within minutes.
_FIRST_FAILURES_KEPT_HOURS = 24


class FirstFailures:
    """When each message a pull loop keeps failing on first failed, in the service's database
    (`processing_failures`) until the message is dead-lettered: the dead letter's first failure
    survives a restart of the service in between."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def first(self, durable: str, msg: Msg) -> float:
        """When `msg` first failed (now, if this is its first failure), seconds since 1970. A
        row older than the message is of another message with its sequence (a stream made
        again): it is replaced."""
        stored_at = msg.metadata.timestamp
        async with self.pool.acquire() as conn:
            first: datetime = await conn.fetchval(
                "WITH kept AS ("
                " INSERT INTO processing_failures (durable, stream_seq, stored_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (durable, stream_seq) DO UPDATE"
                " SET stored_at = EXCLUDED.stored_at, first_failed = EXCLUDED.first_failed"
                " WHERE processing_failures.stored_at <> EXCLUDED.stored_at"
                " RETURNING first_failed)"
                " SELECT first_failed FROM kept"
                " UNION ALL SELECT first_failed FROM processing_failures WHERE durable = $1 AND stream_seq = $2"
                " LIMIT 1",
                durable,
                msg.metadata.sequence.stream,
                stored_at,
            )
        return first.timestamp()

    async def forget(self, durable: str, seq: int) -> None:
        """The message was dead-lettered; with it go rows of messages that went through since."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM processing_failures WHERE (durable = $1 AND stream_seq = $2)"
                " OR first_failed < now() - make_interval(hours => $3)",
                durable,
                seq,
                _FIRST_FAILURES_KEPT_HOURS,
            )


# How long a busy pull loop waits for more messages once one has arrived.
_GATHER_SECONDS = 0.005
# How long one that was idle waits for the server's answer to "what else is there?" (what
# answers later is taken with the next batch).
_PROBE_SECONDS = 0.001
# How long a pull loop pauses while the database or NATS is down: doubling from the first.
_OUTAGE_BACKOFF_FIRST = 0.5
_OUTAGE_BACKOFF_MAX = 10.0
# How soon a batch that other transactions were in the way of comes again.
_CONTENTION_DELAY = 0.05


class _PullLoop(ABC):
    """A durable pull consumer loop with the platform's ack policy."""

    def __init__(
        self,
        js: JetStreamContext,
        dead_letters: DeadLetters,
        *,
        stream: str,
        durable: str,
        filter_subjects: list[str],
        batch_size: int,
        max_deliveries: int,
        outages: OutageLog | None = None,
    ) -> None:
        self.js = js
        self.dead_letters = dead_letters
        self.outages = outages or OutageLog()
        self.stream = stream
        self.durable = durable
        self.filter_subjects = filter_subjects
        self.batch_size = batch_size
        self.max_deliveries = max_deliveries
        self._stopping = asyncio.Event()
        self._outage_backoff = _OUTAGE_BACKOFF_FIRST
        # Where processing times and spans go (the runtime's).
        self.metrics: ServiceMetrics = DETACHED
        self.tracer = tracing.OFF
        # When each message failing now first failed, for its dead letter (the runtime's); a
        # loop built alone, without it, takes each failure as the first.
        self.first_failures: FirstFailures | None = None
        self._last_batch = 0.0  # when the last batch was done with

    def stop(self) -> None:
        self._stopping.set()

    async def _subscribe(self) -> JetStreamContext.PullSubscription | None:
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            # The server must never give up on a message by itself: that would lose it
            # silently. Bounded deliveries are counted here and end in the dead-letter stream.
            max_deliver=-1,
            ack_wait=30,
            max_ack_pending=20_000,
        )
        if len(self.filter_subjects) == 1:
            config.filter_subject = self.filter_subjects[0]
        else:
            config.filter_subjects = self.filter_subjects
        while True:
            try:
                await self.js.add_consumer(self.stream, config)
                break
            except nats.js.errors.NotFoundError:
                # The producing service has not created its stream yet.
                log.info("waiting_for_stream", stream=self.stream)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 1.0)
                if self._stopping.is_set():
                    return None
        return await self.js.pull_subscribe_bind(self.durable, self.stream)

    @abstractmethod
    async def handle(self, msgs: list[Msg]) -> None:
        """Process a fetched batch; ack what committed. Raising naks the batch for a retry."""

    async def dead_letter(self, reason: str, msg: Msg, error: str, failure: Failure | None = None) -> None:
        await self.dead_letters.send_msg(reason, msg, error, failure=failure)

    async def retry_or_dead_letter(self, msgs: list[Msg], error: str) -> None:
        for msg in msgs:
            if msg.is_acked:
                continue  # handled before the batch failed
            first = await self._first_failure(msg)
            delivered = msg.metadata.num_delivered
            if delivered >= self.max_deliveries:
                await self.dead_letter("processing_failed", msg, error, Failure(first_failed=first))
                await msg.ack()
                await self._forget_failure(msg)
            else:
                await msg.nak(delay=min(0.2 * 2**delivered, 10.0))

    async def _first_failure(self, msg: Msg) -> float:
        if self.first_failures is None:
            return time.time()
        try:
            return await self.first_failures.first(self.durable, msg)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            # The failure is counted all the same; only when it first failed is lost.
            log.warning("first_failure_not_kept", durable=self.durable, error=repr(exc))
            return time.time()

    async def _forget_failure(self, msg: Msg) -> None:
        if self.first_failures is None:
            return
        try:
            await self.first_failures.forget(self.durable, msg.metadata.sequence.stream)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:  # removed by age later
            log.warning("first_failure_not_forgotten", durable=self.durable, error=repr(exc))

    async def _failed(self, msgs: list[Msg], exc: Exception) -> None:
        """A batch failed. If what the service depends on is down, the messages wait for it
        (never dead-lettered for that); if other transactions were in the way, the batch runs
        again. Otherwise one message may be to blame: each runs again alone, so the others go
        through and only one that fails alone counts towards the dead-letter stream."""
        if is_outage(exc):
            await self._wait_out(msgs, exc)
            return
        if is_contention(exc):
            log.info("consumer_batch_contended", durable=self.durable, error=repr(exc), messages=len(msgs))
            await self._hand_back(msgs, _CONTENTION_DELAY)
            return
        log.warning("consumer_batch_failed", durable=self.durable, error=repr(exc), messages=len(msgs))
        if len(msgs) == 1:
            await self.retry_or_dead_letter(msgs, repr(exc))
            await asyncio.sleep(0.2)
            return
        for i, msg in enumerate(msgs):
            if msg.is_acked:
                continue
            try:
                await self.handle([msg])
            except asyncio.CancelledError:
                raise
            except Exception as alone:  # noqa: BLE001 - whatever failed it alone is judged below
                if is_outage(alone):
                    await self._wait_out(msgs[i:], alone)
                    return
                if is_contention(alone):
                    await self._hand_back(msgs[i:], _CONTENTION_DELAY)
                    return
                log.warning("consumer_message_failed", durable=self.durable, error=repr(alone))
                await self.retry_or_dead_letter([msg], repr(alone))
        self._outage_backoff = _OUTAGE_BACKOFF_FIRST

    async def _wait_out(self, msgs: list[Msg], exc: Exception) -> None:
        """Keep the batch and run it again once what the service depends on is back, longer
        pauses each time the outage lasts. The batch is kept rather than handed back because
        JetStream would redeliver handed-back messages in whatever order their delays ran out,
        and events must be kept in the order they were published. If the loop is told to stop
        meanwhile, the messages are handed back in order for the next instance."""
        waiting = [msg for msg in msgs if not msg.is_acked]
        while waiting:
            backoff = self._outage_backoff
            self.outages.failed(self.durable, exc)
            log.debug("consumer_waiting_for_dependency", durable=self.durable, error=repr(exc), backoff=backoff)
            self._outage_backoff = min(backoff * 2, _OUTAGE_BACKOFF_MAX)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            if self._stopping.is_set():
                for msg in waiting:
                    with contextlib.suppress(Exception):  # NATS may be what is down: redelivered anyway
                        await msg.nak()
                return
            for msg in waiting:
                with contextlib.suppress(Exception):  # restarts JetStream's wait for the ack
                    await msg.in_progress()
            try:
                await self.handle(waiting)
            except asyncio.CancelledError:
                raise
            except Exception as again:  # noqa: BLE001 - still out, or a message to blame
                waiting = [msg for msg in waiting if not msg.is_acked]
                if not is_outage(again):
                    await self._failed(waiting, again)
                    return
                exc = again
                continue
            self._outage_backoff = _OUTAGE_BACKOFF_FIRST
            self.outages.recovered(self.durable)
            return

    @staticmethod
    async def _hand_back(msgs: list[Msg], delay: float) -> None:
        """Give the messages not yet acknowledged back to JetStream, to come again in `delay`."""
        for msg in msgs:
            if not msg.is_acked:
                with contextlib.suppress(Exception):  # NATS may be what is down: redelivered anyway
                    await msg.nak(delay=delay)

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            if self._psub is not None:
                with contextlib.suppress(Exception):
                    await self._psub.unsubscribe()

    _psub: JetStreamContext.PullSubscription | None = None

    async def _fetch(self, psub: JetStreamContext.PullSubscription) -> list[Msg]:
        """Fetch a batch, or nothing if the loop is told to stop while it waits."""
        fetch = asyncio.ensure_future(self._next_batch(psub))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            done, _ = await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if fetch in done:
            return fetch.result()
        fetch.cancel()
        await asyncio.gather(fetch, return_exceptions=True)
        return []

    async def _next_batch(self, psub: JetStreamContext.PullSubscription) -> list[Msg]:
        """Wait (up to a second) for one message, then take what else is there, up to a batch.
        A busy loop (its message came within IDLE_SECONDS of the end of its last batch) also
        takes what arrives within a few milliseconds, so it runs fewer, larger batches; one that
        was idle a while runs at once. Asking for a whole batch at once would hold the first message until the
        batch fills or the wait ends: up to a second of lag at a low rate."""
        msgs = await psub.fetch(1, timeout=1.0)
        if self.batch_size > 1:
            idle = time.perf_counter() - self._last_batch >= IDLE_SECONDS
            with contextlib.suppress(nats.errors.TimeoutError, asyncio.TimeoutError):
                msgs += await psub.fetch(self.batch_size - 1, timeout=_PROBE_SECONDS if idle else _GATHER_SECONDS)
        return msgs

    async def _loop(self) -> None:
        psub = None
        while not self._stopping.is_set():
            try:
                if psub is None:
                    psub = self._psub = await self._subscribe()
                    if psub is None:
                        break
                try:
                    msgs = await self._fetch(psub)
                except (TimeoutError, nats.errors.TimeoutError):
                    msgs = []
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop outlives any failure and subscribes again
                if is_outage(exc):
                    self.outages.failed(f"{self.durable}:subscription", exc)
                else:
                    log.warning("consumer_retry", durable=self.durable, error=repr(exc))
                psub = None
                await asyncio.sleep(1.0)
                continue
            self.outages.recovered(f"{self.durable}:subscription")
            if not msgs:
                continue
            try:
                started = time.perf_counter()
                await self.handle(msgs)
                self.metrics.observe_consumer_batch(self.durable, time.perf_counter() - started)
                self._outage_backoff = _OUTAGE_BACKOFF_FIRST
                self.outages.recovered(self.durable)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - judged in _failed: outage, retry or dead letter
                try:
                    await self._failed(msgs, exc)
                except asyncio.CancelledError:
                    raise
                except Exception as worse:  # noqa: BLE001 - unacked messages come again anyway
                    if is_outage(worse):
                        self.outages.failed(self.durable, worse)
                    else:
                        log.warning("consumer_retry", durable=self.durable, error=repr(worse))
                    await asyncio.sleep(1.0)
            self._last_batch = time.perf_counter()


class ForeignEventConsumer(_PullLoop):
    """Keeps copies of another service's events in this service's log (deduplicated by event
    id, in the same transaction), then acks. Projections read them from the local log."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        js: JetStreamContext,
        dead_letters: DeadLetters,
        *,
        source: Topology,
        consumer_service: str,
        event_types: list[str] | None = None,
        batch_size: int = 500,
        max_deliveries: int = 5,
        on_stored: Callable[[list[RecordedEvent]], None] | None = None,
        outages: OutageLog | None = None,
    ) -> None:
        subjects = [source.event_subject(t) for t in event_types] if event_types else [source.subject("event", ">")]
        super().__init__(
            js,
            dead_letters,
            stream=source.event_stream,
            durable=f"{consumer_service}_from_{source.service}",
            filter_subjects=subjects,
            batch_size=batch_size,
            max_deliveries=max_deliveries,
            outages=outages,
        )
        self.pool = pool
        self.origin = source.event_stream
        self.on_stored = on_stored
        self.stored = 0

    async def handle(self, msgs: list[Msg]) -> None:
        good: list[tuple[Msg, Envelope]] = []
        for msg in msgs:
            try:
                good.append((msg, Envelope.from_json(msg.data)))
            except ValidationError as exc:
                await self.dead_letters.send_msg("malformed", msg, str(exc))
                await msg.ack()
        if not good:
            return
        # A span per message, child of its publish span (or, published without one, of the
        # command that recorded the event), for as long as the batch takes.
        spans = [
            tracing.consumed(self.tracer, msg.headers, e.metadata, e.event_type, str(e.event_id)) for msg, e in good
        ]
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                stored = await copy_foreign(conn, self.origin, [e for _, e in good])
                if stored:
                    await conn.execute("SELECT pg_notify('events', '')")
        for msg, _ in good:
            await msg.ack()
        for span in spans:
            if span is not None:
                span.end()
        self.stored += len(stored)
        if stored and self.on_stored is not None:
            self.on_stored(stored)


def _header(msg: Msg, name: str) -> str | None:
    if not msg.headers:
        return None
    return msg.headers.get(name)


class IngestConsumer(_PullLoop):
    """Runs commands other systems publish to `<service>.ingest.<command>`.

    A fetched batch runs in one transaction (a savepoint per command). Every command's result,
    accepted or refused, is kept in `<SERVICE>_RESULTS` (subject `<service>.result.<command>`)
    before its message is acknowledged; rejections also go to `<service>.dlq.rejected` with
    the reason. A batch that meets an outage is handed back whole, never answered.
    A message without an Idempotency-Key is keyed by its Nats-Msg-Id or stream sequence, so a
    redelivery after a crash appends nothing twice.

    A command is authorised as of sending: its token must have been valid when JetStream
    stored the message, so one that waited out an outage longer than its token's life still
    runs, up to `max_queue_seconds` after it was stored (older, it is refused).
    """

    def __init__(
        self,
        bus: CommandBus,
        nc: NATS,
        js: JetStreamContext,
        dead_letters: DeadLetters,
        topology: Topology,
        tokens: TokenVerifier,
        *,
        batch_size: int = 500,
        max_deliveries: int = 5,
        max_queue_seconds: float = 72 * 3600.0,
        outages: OutageLog | None = None,
        ack_timeout: float = 5.0,
    ) -> None:
        super().__init__(
            js,
            dead_letters,
            stream=topology.ingest_stream,
            durable=topology.durable(f"{topology.service}_ingest"),
            filter_subjects=[topology.subject("ingest", ">")],
            batch_size=batch_size,
            max_deliveries=max_deliveries,
            outages=outages,
        )
        self.results = JetStreamPublisher(nc)
        self.ack_timeout = ack_timeout
        self.bus = bus
        self.nc = nc
        self.topology = topology
        self.tokens = tokens
        self.max_queue_seconds = max_queue_seconds
        self.accepted = 0
        self.rejected = 0

    async def dead_letter(self, reason: str, msg: Msg, error: str, failure: Failure | None = None) -> None:
        failure = failure or Failure()
        with contextlib.suppress(ServiceError):
            failure.sender = self.sender(msg)
        await self._send_dead_letter(reason, msg, error, failure)

    async def _send_dead_letter(self, reason: str, msg: Msg, error: str, failure: Failure) -> None:
        failure.idempotency_key = self.idempotency_key(msg)
        failure.correlation_id = failure.correlation_id or _header(msg, "Correlation-Id")
        await self.dead_letters.send_msg(reason, msg, error, command=msg.subject.rsplit(".", 1)[-1], failure=failure)

    @staticmethod
    def idempotency_key(msg: Msg) -> str:
        """The command's idempotency key: the sender's, else the message's id, else its place
        in the stream, so a redelivery (or a replay of its dead letter) appends nothing twice."""
        key = _header(msg, "Idempotency-Key") or _header(msg, "Nats-Msg-Id")
        return key if key is not None else f"ingest-{msg.metadata.sequence.stream}"

    def sender(self, msg: Msg) -> Actor:
        """Who sent `msg`, judged when JetStream stored it."""
        stored = msg.metadata.timestamp.timestamp()
        if time.time() - stored > self.max_queue_seconds:
            raise Unauthenticated(
                f"the command waited {(time.time() - stored) / 3600:.1f} h in the queue, longer than the "
                f"{self.max_queue_seconds / 3600:g} h allowed: send it again",
                code="queued_too_long",
            )
        return actor_from_header(_header(msg, "Authorization"), self.tokens, at=stored)

    async def handle(self, msgs: list[Msg]) -> None:
        if not self.tokens.ready:
            # The key set is not loaded yet (its URL unreachable): an outage, waited out.
            raise ConnectionError("the token signing keys are not loaded yet")
        judged: list[tuple[Msg, Request | None, str, str, Outcome]] = []
        requests: list[Request] = []
        runnable: list[tuple[Msg, str, str]] = []
        for msg in msgs:
            name = msg.subject.rsplit(".", 1)[-1]
            key = self.idempotency_key(msg)
            try:
                actor = self.sender(msg)
            except ServiceError as exc:
                judged.append((msg, None, name, key, Outcome(False, error=exc)))
                continue
            requests.append(
                Request(
                    name=name,
                    payload=msg.data,
                    actor=actor,
                    idempotency_key=key,
                    correlation_id=_header(msg, "Correlation-Id") or str(uuid.uuid4()),
                    causation_id=_header(msg, "Nats-Msg-Id") or key,
                    trace=tracing.incoming(self.bus.tracer, msg.headers),
                )
            )
            runnable.append((msg, name, key))
        if requests:
            outcomes = await self.bus.dispatch_many(requests)
            for (msg, name, key), request, outcome in zip(runnable, requests, outcomes, strict=True):
                judged.append((msg, request, name, key, outcome))
        await self._publish_results(judged)
        for msg, ran, _name, _key, outcome in judged:
            if outcome.ok:
                self.accepted += 1
                await msg.ack()
            else:
                sender = ran.actor if ran is not None else None
                await self._reject(msg, outcome, sender, ran.correlation_id if ran is not None else None)

    async def _reject(
        self, msg: Msg, outcome: Outcome, sender: Actor | None = None, correlation_id: str | None = None
    ) -> None:
        self.rejected += 1
        assert outcome.error is not None
        correlation_id = correlation_id or _header(msg, "Correlation-Id")
        log.info(
            "command_refused",
            transport="ingest",
            command=msg.subject.rsplit(".", 1)[-1],
            status=outcome.status,
            code=outcome.error.code,
            correlation_id=correlation_id,
        )
        error = orjson.dumps(outcome.to_dict()).decode()
        await self._send_dead_letter("rejected", msg, error, Failure(sender=sender, correlation_id=correlation_id))
        await msg.ack()

    async def _publish_results(self, judged: list[tuple[Msg, Request | None, str, str, Outcome]]) -> None:
        """Keep the result of every command of the batch in `<SERVICE>_RESULTS`, accepted or
        refused, before its message leaves the work queue. Its message id is what the
        idempotency key belongs to, the sender and the command, with the key: a command run
        again (redelivered after a crash or an outage) replays its stored result, which the
        stream then recognises as one it has, while another sender's command with the same key
        keeps a result of its own. A sender who could not be identified is told apart by the
        message's place in the ingest stream."""
        messages = []
        for msg, request, name, key, outcome in judged:
            sender = request.actor.id if request is not None else f"unidentified@{msg.metadata.sequence.stream}"
            headers = {
                "Nats-Msg-Id": result_message_id(sender, name, key),
                "Idempotency-Key": key,
                "Result-Status": str(outcome.status),
            }
            correlation_id = request.correlation_id if request is not None else _header(msg, "Correlation-Id")
            if correlation_id:
                headers["Correlation-Id"] = correlation_id
            messages.append((self.topology.subject("result", name), orjson.dumps(outcome.to_dict()), headers))
        refusals = await self.results.publish(messages, self.ack_timeout)
        refused = next((r for r in refusals if r is not None), None)
        if refused is not None:
            raise ConnectionError(f"JetStream did not keep a command result: {refused}")


def result_message_id(sender: str, command: str, key: str) -> str:
    """The message id of an ingested command's result in `<SERVICE>_RESULTS`: whom the
    idempotency key belongs to (the sender, the command) with the key, so the stream keeps a
    result sent again once."""
    return f"{sender}:{command}:{key}"


class CommandResponder:
    """NATS request/reply for `<service>.cmd.<command>`, in a queue group so replicas share."""

    def __init__(
        self,
        submit: Callable[[Request], Awaitable[Outcome]],
        nc: NATS,
        topology: Topology,
        tokens: TokenVerifier,
        *,
        concurrency: int = 256,
    ) -> None:
        self.submit = submit
        self.nc = nc
        self.topology = topology
        self.tokens = tokens
        self._limit = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sub: Subscription | None = None
        self.tracer = tracing.OFF

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(
            self.topology.subject("cmd", "*"), queue=self.topology.durable(self.topology.service), cb=self._on_msg
        )

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.drain()  # type: ignore[no-untyped-call]
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_msg(self, msg: Msg) -> None:
        await self._limit.acquire()
        task = asyncio.create_task(self._handle(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, msg: Msg) -> None:
        try:
            name = msg.subject.rsplit(".", 1)[-1]
            correlation_id = _header(msg, "Correlation-Id") or str(uuid.uuid4())
            try:
                actor = actor_from_header(_header(msg, "Authorization"), self.tokens)
                outcome = await self.submit(
                    Request(
                        name=name,
                        payload=msg.data,
                        actor=actor,
                        idempotency_key=_header(msg, "Idempotency-Key"),
                        correlation_id=correlation_id,
                        trace=tracing.incoming(self.tracer, msg.headers),
                    )
                )
            except ServiceError as exc:
                outcome = Outcome(False, error=exc)
            except Exception as exc:
                error: ServiceError
                if is_transient(exc):
                    # 503 tells the caller to send it again: only for what passes (an outage,
                    # contention); a fault that would fail again is a 500.
                    log.info("command_unavailable", command=name, error=repr(exc))
                    error = Unavailable(f"could not run {name} now: send it again")
                else:
                    log.exception("command_failed", command=name)
                    error = InternalError(f"{name} failed")
                outcome = Outcome(False, error=error)
            if not outcome.ok:
                log.info(
                    "command_refused",
                    transport="nats",
                    command=name,
                    status=outcome.status,
                    code=outcome.error.code,  # type: ignore[union-attr]
                    correlation_id=correlation_id,
                )
            if msg.reply:
                # Not msg.respond: it sends the request's headers back, the caller's token with
                # them. A reply carries only what correlates it with its request.
                await self.nc.publish(msg.reply, orjson.dumps(outcome.to_dict()), headers=reply_headers(msg))
        finally:
            self._limit.release()


def reply_headers(msg: Msg) -> dict[str, str] | None:
    """The request's correlation headers (`Idempotency-Key`, `Correlation-Id`), nothing else."""
    kept = {name: value for name in _REPLY_HEADERS if (value := _header(msg, name))}
    return kept or None


_REPLY_HEADERS = ("Idempotency-Key", "Correlation-Id")


async def connect(
    url: str,
    name: str,
    on_event: Callable[[str], Awaitable[None]] | None = None,
    *,
    user: str | None = None,
    password: str | None = None,
) -> NATS:
    """A NATS connection, as `user` if given, that keeps trying to reconnect for ever (a service
    outlives outages)."""

    async def _disconnected() -> None:
        log.warning("nats_disconnected")

    async def _reconnected() -> None:
        log.info("nats_reconnected")

    async def _error(exc: Exception) -> None:
        log.warning("nats_error", error=repr(exc))

    return await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        disconnected_cb=_disconnected,
        reconnected_cb=_reconnected,
        error_cb=_error,
        allow_reconnect=True,
        drain_timeout=5,
        user=user,
        password=password,
    )
