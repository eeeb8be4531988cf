"""Back up the whole system and restore it into empty servers (`salesctl backup` / `restore`).

What is kept where:

- **Each service's database** holds its event log (its own events and the copies of the events
  it consumes), its read models with their checkpoints, the idempotency records and its keys:
  `pg_dump --format=custom` of each, restored with `pg_restore` into an empty database.
- **JetStream** holds, besides what the databases hold:
  - the **ingest queues** (`<SERVICE>_INGEST`): commands sent and not run yet;
  - the **dead letters** (`<SERVICE>_DLQ`);
  - the **results** of ingested commands (`<SERVICE>_RESULTS`), which outside systems
    reconcile with;
  - the **object store buckets** (`OBJ_<SERVICE>_…`, the visit photos);
  each saved message by message (subject, headers, body) and published again on restore: the
  queued commands as the outside systems' user (`system`), through the door they came in by
  (a service's own user may not send commands to itself), the rest as the service's user.
- The **event streams** need no copy: every event is in its producer's log. The restore puts
  each service's own events back in its outbox, so its relay publishes them again once it
  starts; the consumers of the new servers start from the beginning and keep each event once
  (by its id), so an event a consumer had not copied when the backup was taken still reaches it.
- Consumer positions and `reporting.changed` notices are not kept: they are made again.

The ingest queue keeps each command's token; a command is judged as of when JetStream stored it,
and a restored one is stored anew: one whose token has expired by then is refused (and
dead-lettered as `unauthenticated`). Take the backup with the queues drained where possible
(`salesctl status` shows each ingest consumer's pending messages).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import nats
import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import StreamInfo

from salesplatform.messaging import Topology, ensure_streams
from salesplatform.nats_layout import SYSTEM_USER

log = structlog.get_logger(__name__)

MANIFEST = "manifest.json"
# The account-level streams an object store bucket keeps its chunks and metadata in.
_OBJECT_STREAM_PREFIX = "OBJ_"

Login = Callable[[str], dict[str, str]]


def pg_tool(name: str) -> str:
    """`pg_dump` or `pg_restore`: from PG_BIN, else the development servers' PostgreSQL (what
    `make run` and the tests run), else PATH (a deployment's PostgreSQL client, of the server's
    major version or newer)."""
    if os.environ.get("PG_BIN"):
        return str(Path(os.environ["PG_BIN"]) / name)
    with contextlib.suppress(ImportError, RuntimeError):
        from salesplatform.devstack.servers import postgres_bin_dir

        bundled = postgres_bin_dir() / name
        if bundled.exists():
            return str(bundled)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not on PATH: install the PostgreSQL client or set PG_BIN")
    return found


async def _run(command: list[str]) -> None:
    """Run a PostgreSQL client program; it reaches only the server its URL names (no PG*
    variables of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") or k == "PG_BIN"}
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed: {err.decode(errors='replace').strip()[:2000]}")


async def all_streams(js: JetStreamContext) -> list[StreamInfo]:
    """Every stream of the account: JetStream answers a listing a page at a time."""
    found: list[StreamInfo] = []
    while True:
        page = await js.streams_info(offset=len(found))
        found += page
        if not page:
            return found


def _streams_of(topology: Topology, names: list[str]) -> list[str]:
    """The streams of a service that hold what its database does not."""
    buckets = _OBJECT_STREAM_PREFIX + topology.stream() + "_"
    kept = [topology.ingest_stream, topology.dlq_stream, topology.results_stream]
    return [*kept, *sorted(n for n in names if n.startswith(buckets))]


async def back_up(
    directory: Path,
    databases: dict[str, str],
    nats_url: str,
    login: Login,
    *,
    namespace: str = "",
) -> dict[str, Any]:
    """Back up each service of `databases` (name → database URL) into `directory`: a dump of
    its database and the messages of its JetStream streams that the database does not hold.
    Returns the manifest (also written to `directory/manifest.json`)."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"taken_at": datetime.now(UTC).isoformat(), "namespace": namespace, "services": {}}
    for service, url in databases.items():
        dump = directory / f"{service}.dump"
        await _run([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(dump), url])
        streams = await _save_streams(directory, Topology(service, namespace), nats_url, login(service))
        manifest["services"][service] = {"database": dump.name, "streams": streams}
        log.info("service_backed_up", service=service, streams=streams)
    await asyncio.to_thread((directory / MANIFEST).write_text, json.dumps(manifest, indent=2) + "\n")
    return manifest


async def _save_streams(directory: Path, topology: Topology, nats_url: str, login: dict[str, str]) -> dict[str, int]:
    nc = await nats.connect(nats_url, **login)
    try:
        js = nc.jetstream()
        names = [info.config.name or "" for info in await all_streams(js)]
        saved = {}
        for stream in _streams_of(topology, names):
            if stream not in names:
                continue
            state = (await js.stream_info(stream)).state
            lines = []
            for seq in range(max(state.first_seq, 1), state.last_seq + 1):
                try:
                    msg = await js.get_msg(stream, seq)
                except nats.js.errors.NotFoundError:
                    continue  # deleted (a purged dead letter, a command already run)
                record = {
                    "subject": msg.subject,
                    "headers": dict(msg.headers or {}),
                    "data": base64.b64encode(msg.data or b"").decode(),
                }
                lines.append(json.dumps(record) + "\n")
            await asyncio.to_thread((directory / f"{stream}.jsonl").write_text, "".join(lines))
            saved[stream] = len(lines)
        return saved
    finally:
        await nc.close()


async def restore(
    directory: Path,
    databases: dict[str, str],
    nats_url: str,
    login: Login,
    *,
    namespace: str = "",
    object_stores: Callable[[str], list[str]] | None = None,
) -> dict[str, Any]:
    """Restore the backup in `directory` into empty servers: each service's database (which
    must exist and be empty) from its dump, its own events put back in its outbox, and the saved
    JetStream messages published again into the service's streams (made here if missing).
    `login(user)`: how to connect as each service's user and as the outside systems' user
    (`system`, which sends the queued commands again). `namespace`: the new servers' (tests),
    when not the backup's. Run it before the services start: they then publish their events
    again and run the queued commands."""
    manifest = json.loads(await asyncio.to_thread((directory / MANIFEST).read_text))
    old = manifest.get("namespace", "")
    restored: dict[str, Any] = {}
    for service, url in databases.items():
        entry = manifest["services"].get(service)
        if entry is None:
            raise LookupError(f"the backup in {directory} has no {service}")
        await _run([pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--dbname", url,
              str(directory / entry["database"])])  # fmt: skip
        conn = await asyncpg.connect(url)
        try:
            requeued = await conn.execute(
                "INSERT INTO outbox (tx_id, position) SELECT tx_id, position FROM events WHERE origin IS NULL"
                " ON CONFLICT DO NOTHING"
            )
        finally:
            await conn.close()
        published = await _publish_streams(directory, service, entry["streams"], nats_url, login, old, namespace)
        restored[service] = {"events_to_publish": int(requeued.split()[-1]), "messages": published}
        log.info("service_restored", service=service, **restored[service])
    return restored


def _swap(name: str, old: str, new: str, sep: str) -> str:
    old_prefix, new_prefix = (f"{old}{sep}" if old else ""), (f"{new}{sep}" if new else "")
    return new_prefix + name[len(old_prefix) :] if name.startswith(old_prefix) else name


def _stream_in(stream: str, old: str, new: str) -> str:
    """A stream of the backup's namespace, named in the new one's (`ORDERS_DLQ`, `OBJ_VISIT_PHOTOS`)."""
    if stream.startswith(_OBJECT_STREAM_PREFIX):
        return _OBJECT_STREAM_PREFIX + _swap(stream.removeprefix(_OBJECT_STREAM_PREFIX), old.upper(), new.upper(), "_")
    return _swap(stream, old.upper(), new.upper(), "_")


def _subject_in(subject: str, old: str, new: str) -> str:
    """A subject of the backup's namespace in the new one's (`orders.dlq.rejected`, `$O.VISIT_PHOTOS.C.…`)."""
    if subject.startswith("$O."):
        return "$O." + _swap(subject.removeprefix("$O."), old.upper(), new.upper(), "_")
    return _swap(subject, old, new, ".")


async def _publish_streams(
    directory: Path,
    service: str,
    streams: dict[str, int],
    nats_url: str,
    login: Login,
    old: str,
    new: str,
) -> dict[str, int]:
    topology = Topology(service, new)
    async with contextlib.AsyncExitStack() as connections:
        own = await nats.connect(nats_url, **login(service))
        connections.push_async_callback(own.close)
        js = own.jetstream()
        await ensure_streams(js, topology)
        published = {}
        for stream in streams:
            target = _stream_in(stream, old, new)
            if target.startswith(_OBJECT_STREAM_PREFIX):
                await js.create_object_store(target.removeprefix(_OBJECT_STREAM_PREFIX))
            saved = await asyncio.to_thread((directory / f"{stream}.jsonl").read_text)
            records = [json.loads(line) for line in saved.splitlines() if line]
            sender = js
            if target == topology.ingest_stream and records:
                outside = await nats.connect(nats_url, **login(SYSTEM_USER))
                connections.push_async_callback(outside.close)
                sender = outside.jetstream()
            for record in records:
                subject = _subject_in(record["subject"], old, new)
                await sender.publish(subject, base64.b64decode(record["data"]), headers=record["headers"] or None)
            published[target] = len(records)
        return published
