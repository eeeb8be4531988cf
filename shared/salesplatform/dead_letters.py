"""Dead letters an operator can read, send again and purge.

A dead letter (`<service>.dlq.<reason>`, `DeadLetters` in `messaging`) keeps the original
subject, the headers minus credentials, the payload (personal fields sealed or left out), the
reason and error, the first and last failure, the deliveries and what a replay needs: the
command, its sender's identity and its idempotency key.

A replay goes the way the message went the first time:

- a command (rejected, or failed until dead-lettered) runs through the command bus with its
  sender's rights, recorded as replayed by the operator (`Actor.replayed_by`), under its
  original idempotency key: replaying it twice applies it once. Its result is kept in
  `<SERVICE>_RESULTS` as an ingested command's is, with the message id of the first result
  marked as a replay's (`<sender>:<command>:<key>:replayed`): replaying twice stores one result
  (within the stream's duplicate window), and the refusal stored under the first id does not
  hide it;
- an event a projection could not apply is applied again to that projection (`reapply`);
- another service's event this service could not copy is copied into its log (deduplicated
  by event id).

A replay that succeeds removes the dead letter (unless kept); one that fails again replaces it
by one with the new error, the same first failure, a later last failure and one more delivery.
While the database or NATS is down a replay answers 503 and leaves the dead letter as it is.
"""

from __future__ import annotations

import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import nats.errors
import nats.js.errors
import orjson
import structlog
from nats.js.api import RawStreamMsg
from pydantic import ValidationError

from salesplatform.commands import Outcome, Request
from salesplatform.errors import NotFound, ServiceError
from salesplatform.events import Actor, Envelope
from salesplatform.messaging import Failure, result_message_id
from salesplatform.outages import is_outage
from salesplatform.projections import reapply
from salesplatform.store import copy_foreign

if TYPE_CHECKING:
    from salesplatform.service import Runtime

log = structlog.get_logger(__name__)

# JetStream's error code for deleting a message it does not hold.
_NO_MESSAGE_FOUND = 10057
# How many of the latest stream sequences a listing reads one by one, newest first (deleted
# ones included); older dead letters are then paged through by next message, gaps skipped.
NEWEST_WINDOW = 10_000
# Headers that describe the dead letter itself, read into its fields.
_OWN_HEADERS = frozenset(
    {
        "Dlq-Reason",
        "Dlq-Error",
        "Dlq-Source",
        "Dlq-Subject",
        "Dlq-Command",
        "Dlq-Sender",
        "Dlq-Idempotency-Key",
        "Dlq-Correlation-Id",
        "Dlq-First-Failed",
        "Dlq-Last-Failed",
        "Dlq-Deliveries",
        "Nats-Msg-Id",
    }
)


class NotReplayable(ServiceError):
    status = 409
    code = "not_replayable"


# What tells a replayed command's result apart from the first one in the results stream.
REPLAYED_RESULT_MARK = ":replayed"


class ReplayUnavailable(ServiceError):
    status = 503
    code = "unavailable"


@dataclass
class DeadLetter:
    """One dead letter as stored."""

    seq: int
    at: datetime
    reason: str
    error: str
    source: str | None
    subject: str | None
    command: str | None
    sender: Actor | None
    idempotency_key: str | None
    correlation_id: str | None
    first_failed: str | None
    last_failed: str | None
    deliveries: int
    headers: dict[str, str]
    payload: bytes

    @classmethod
    def from_msg(cls, msg: RawStreamMsg) -> DeadLetter:
        h = dict(msg.headers or {})
        sender = None
        if h.get("Dlq-Sender"):
            try:
                sender = Actor.model_validate_json(h["Dlq-Sender"])
            except ValidationError:
                sender = None
        # When it was dead-lettered: its last failure, which a restore (a new stream, where
        # JetStream stores it anew) keeps; JetStream's own time where the header is missing.
        stored = msg.time if isinstance(msg.time, datetime) else _parse_time(str(msg.time))
        at = _parse_time(h["Dlq-Last-Failed"], stored) if h.get("Dlq-Last-Failed") else stored
        return cls(
            seq=msg.seq or 0,
            at=at,
            reason=h.get("Dlq-Reason", "") or (msg.subject or "").rsplit(".", 1)[-1],
            error=h.get("Dlq-Error", ""),
            source=h.get("Dlq-Source"),
            subject=h.get("Dlq-Subject"),
            command=h.get("Dlq-Command"),
            sender=sender,
            idempotency_key=h.get("Dlq-Idempotency-Key"),
            correlation_id=h.get("Dlq-Correlation-Id") or h.get("Correlation-Id"),
            first_failed=h.get("Dlq-First-Failed"),
            last_failed=h.get("Dlq-Last-Failed"),
            deliveries=int(h.get("Dlq-Deliveries") or 1),
            headers={k: v for k, v in h.items() if k not in _OWN_HEADERS},
            payload=msg.data or b"",
        )

    @property
    def projection(self) -> str | None:
        return self.headers.get("Projection")

    @property
    def kind(self) -> str:
        """What a replay does: run a `command`, apply an event to a `projection` again, copy
        another service's `event`; `none` if nothing can be sent again."""
        if self.projection and self.headers.get("Event-Id"):
            return "projection"
        if self.command:
            return "command"
        if self.reason == "processing_failed" and self.subject and ".event." in self.subject:
            return "event"
        return "none"

    def summary(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "error": self.error,
            "source": self.source,
            "subject": self.subject,
            "command": self.command,
            "projection": self.projection,
            "replay": self.kind,
            "sender": self.sender.model_dump(exclude_none=True) if self.sender else None,
            "idempotency_key": self.idempotency_key,
            "correlation_id": self.correlation_id,
            "first_failed": self.first_failed,
            "last_failed": self.last_failed,
            "deliveries": self.deliveries,
            "headers": self.headers,
        }


def _parse_time(text: str, otherwise: datetime | None = None) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return otherwise or datetime.now(UTC)


@dataclass
class Selection:
    """Which dead letters: of a reason, of a command (or a projection), dead-lettered at least
    `older_than_hours` ago and at most `newer_than_hours` ago; up to `limit`, newest first."""

    reason: str | None = None
    command: str | None = None
    older_than_hours: float | None = None
    newer_than_hours: float | None = None
    limit: int = 50
    seqs: list[int] = field(default_factory=list)

    def matches(self, dead: DeadLetter, now: datetime) -> bool:
        if self.reason is not None and dead.reason != self.reason:
            return False
        if self.command is not None and self.command not in (dead.command, dead.projection):
            return False
        age_hours = (now - dead.at).total_seconds() / 3600
        if self.older_than_hours is not None and age_hours < self.older_than_hours:
            return False
        return not (self.newer_than_hours is not None and age_hours > self.newer_than_hours)


class DeadLetterDesk:
    """An operator's work on one service's dead letters."""

    def __init__(self, runtime: Runtime, *, newest_window: int = NEWEST_WINDOW) -> None:
        self.runtime = runtime
        self.stream = runtime.topology.dlq_stream
        self.newest_window = newest_window

    async def find(self, selection: Selection) -> list[DeadLetter]:
        """The dead letters `selection` names, newest first, up to its limit, among all the
        stream holds: the latest `newest_window` sequences are read one by one (where a listing
        usually ends), the older ones, if the limit is not reached, paged through."""
        if selection.seqs:
            return [await self.get(seq) for seq in selection.seqs]
        state = (await self.runtime.js.stream_info(self.stream)).state
        now = datetime.now(UTC)
        found: list[DeadLetter] = []
        first, seq = max(state.first_seq, 1), state.last_seq
        lowest = max(first, state.last_seq - self.newest_window + 1)
        while seq >= lowest and len(found) < selection.limit:
            msg = await self._message(seq)
            seq -= 1
            if msg is None:
                continue
            dead = DeadLetter.from_msg(msg)
            if selection.matches(dead, now):
                found.append(dead)
        if len(found) < selection.limit and seq >= first:
            found += await self._older(selection, first, seq, selection.limit - len(found), now)
        return found

    async def _older(self, selection: Selection, first: int, last: int, wanted: int, now: datetime) -> list[DeadLetter]:
        """The newest `wanted` dead letters `selection` names from sequence `first` to `last`,
        newest first: paged through oldest first by next message, one request per dead letter
        the stream holds (the gaps replays and purges left cost nothing)."""
        kept: deque[DeadLetter] = deque(maxlen=wanted)
        subjects = self.runtime.topology.subject("dlq", ">")
        seq = first
        while seq <= last:
            try:
                msg = await self.runtime.js.get_msg(self.stream, seq, subject=subjects, next=True)
            except nats.js.errors.NotFoundError:
                break
            if msg.seq is None or msg.seq > last:
                break
            dead = DeadLetter.from_msg(msg)
            if selection.matches(dead, now):
                kept.append(dead)
            seq = msg.seq + 1
        return list(reversed(kept))

    async def get(self, seq: int) -> DeadLetter:
        msg = await self._message(seq)
        if msg is None:
            raise NotFound(f"no dead letter {seq}", code="dead_letter_not_found")
        return DeadLetter.from_msg(msg)

    async def _message(self, seq: int) -> RawStreamMsg | None:
        try:
            return await self.runtime.js.get_msg(self.stream, seq)
        except nats.js.errors.NotFoundError:
            return None

    async def counts(self) -> dict[str, int]:
        """How many dead letters the stream holds, by reason."""
        info = await self.runtime.js.stream_info(self.stream, subjects_filter=self.runtime.topology.subject("dlq", ">"))
        by_reason: Counter[str] = Counter()
        for subject, n in (info.state.subjects or {}).items():
            by_reason[subject.rsplit(".", 1)[-1]] += n
        return dict(sorted(by_reason.items()))

    async def shown(self, dead: DeadLetter) -> dict[str, Any]:
        """A dead letter for an operator: its payload opened if the service sealed it."""
        return {**dead.summary(), "payload": await self._payload(dead.payload)}

    async def _payload(self, payload: bytes) -> Any:
        opener = self.runtime.definition.open_dead_letter
        if opener is not None and payload:
            try:
                return await opener(self.runtime, payload)
            except ValueError:
                pass
        try:
            return orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError:
            return payload.decode(errors="replace")

    async def purge(self, seq: int) -> bool:
        """Remove one dead letter; False if there was none."""
        try:
            return bool(await self.runtime.js.delete_msg(self.stream, seq))
        except nats.js.errors.APIError as exc:
            if isinstance(exc, nats.js.errors.NotFoundError) or exc.err_code == _NO_MESSAGE_FOUND:
                return False
            raise

    async def purge_many(self, selection: Selection) -> list[int]:
        purged = []
        for dead in await self.find(selection):
            if await self.purge(dead.seq):
                purged.append(dead.seq)
        log.info("dead_letters_purged", count=len(purged))
        return purged

    async def replay_many(self, selection: Selection, operator: Actor, *, keep: bool = False) -> list[dict[str, Any]]:
        """Replay what `selection` names, oldest first (the order they first arrived in)."""
        out = []
        for dead in reversed(await self.find(selection)):
            try:
                out.append(await self.replay_one(dead, operator, keep=keep))
            except ServiceError as exc:
                out.append({"seq": dead.seq, "status": "refused", "error": exc.to_dict()})
        return out

    async def replay(self, seq: int, operator: Actor, *, keep: bool = False) -> dict[str, Any]:
        return await self.replay_one(await self.get(seq), operator, keep=keep)

    async def replay_one(self, dead: DeadLetter, operator: Actor, *, keep: bool = False) -> dict[str, Any]:
        """Send one dead letter again as `operator`. Returns `{seq, status, …}`: `applied`,
        `already_applied` (an earlier replay or the original did it) or `failed` (with the
        error and the dead letter that replaces this one). Raises for what cannot be sent
        again and, with 503, while a dependency is down."""
        kind = dead.kind
        if kind == "command":
            outcome = await self._run_command(dead, operator)
            if not outcome.ok:
                assert outcome.error is not None
                if outcome.error.status == 503:
                    raise ReplayUnavailable(outcome.error.message)
                return await self._failed_again(dead, orjson.dumps(outcome.to_dict()).decode())
            await self._publish_result(dead, outcome)
            status = "already_applied" if outcome.replayed else "applied"
            result: dict[str, Any] = {"seq": dead.seq, "status": status, "result": outcome.result}
        elif kind == "projection":
            result = await self._apply_again(dead)
            if result["status"] == "failed":
                return result
        elif kind == "event":
            result = await self._copy_event(dead)
        else:
            raise NotReplayable(
                f"dead letter {dead.seq} ({dead.reason}) carries nothing that can be sent again", code="not_replayable"
            )
        log.info("dead_letter_replayed", seq=dead.seq, kind=kind, status=result["status"], operator=operator.id)
        if not keep:
            await self.purge(dead.seq)
        return result

    async def _run_command(self, dead: DeadLetter, operator: Actor) -> Outcome:
        assert dead.command is not None
        if dead.command not in self.runtime.bus.specs:
            raise NotReplayable(f"the service has no command {dead.command}", code="unknown_command")
        if "Dlq-Withheld" in dead.headers:
            raise NotReplayable(
                f"the dead letter left out {dead.headers['Dlq-Withheld']} (personal data): the sender must send "
                "the command again",
                code="payload_withheld",
            )
        payload: Any = dead.payload
        if "Dlq-Sealed" in dead.headers:
            payload = await self._payload(dead.payload)
            if not isinstance(payload, dict) or payload.get("sealed") == "[erased]":
                raise NotReplayable("the payload's owner was erased: nothing can be sent again", code="payload_erased")
        if dead.sender is None:
            raise NotReplayable(
                "the command was refused before its sender was known: the sender must send it again",
                code="sender_unknown",
            )
        request = Request(
            name=dead.command,
            payload=payload,
            actor=dead.sender.model_copy(update={"replayed_by": operator.id}),
            idempotency_key=dead.idempotency_key,
            correlation_id=dead.correlation_id or str(uuid.uuid4()),
            causation_id=dead.headers.get("Original-Msg-Id") or dead.idempotency_key,
        )
        try:
            return await self.runtime.group.submit(request)
        except Exception as exc:
            if is_outage(exc):
                raise ReplayUnavailable(f"could not run {dead.command}: {type(exc).__name__}") from exc
            raise

    async def _publish_result(self, dead: DeadLetter, outcome: Outcome) -> None:
        """An ingested command's result goes where its sender listens, as the first time: kept
        in the results stream, which keeps a replay's result once however often it runs. Not
        kept (NATS down): 503, and the dead letter stays for a replay that keeps it."""
        if dead.command is None or dead.subject is None or ".ingest." not in dead.subject:
            return
        assert dead.sender is not None  # a command without one is not replayed (_run_command)
        key = dead.idempotency_key or ""
        headers = {
            # The first result, a refusal, holds the kept id itself: the mark keeps this one apart.
            "Nats-Msg-Id": result_message_id(dead.sender.id, dead.command, key) + REPLAYED_RESULT_MARK,
            "Idempotency-Key": key,
            "Result-Status": str(outcome.status),
        }
        if dead.correlation_id:
            headers["Correlation-Id"] = dead.correlation_id
        topology = self.runtime.topology
        try:
            await self.runtime.js.publish(
                topology.subject("result", dead.command), orjson.dumps(outcome.to_dict()), headers=headers
            )
        except (nats.errors.Error, TimeoutError) as exc:
            raise ReplayUnavailable(f"the result of {dead.command} was not kept: {type(exc).__name__}") from exc

    async def _apply_again(self, dead: DeadLetter) -> dict[str, Any]:
        name = dead.projection
        assert name is not None
        try:
            projection = self.runtime.projection(name)
            event_id = uuid.UUID(dead.headers["Event-Id"])
        except (LookupError, ValueError):
            raise NotReplayable(f"the service has no projection {name}", code="unknown_projection") from None
        try:
            changes = await reapply(self.runtime.pool, projection, event_id)
        except Exception as exc:
            if is_outage(exc):
                raise ReplayUnavailable(f"could not apply the event again: {type(exc).__name__}") from exc
            error = f"{type(exc).__name__}: {exc}"
            async with self.runtime.pool.acquire() as conn:
                await conn.execute(
                    "UPDATE public.projection_failures SET error = $3, failed_at = now()"
                    " WHERE name = $1 AND event_id = $2",
                    name,
                    event_id,
                    error,
                )
            return await self._failed_again(dead, error)
        if changes is None:
            return {"seq": dead.seq, "status": "already_applied"}
        on_changes = self.runtime.definition.on_changes
        if changes and on_changes is not None:
            await on_changes(self.runtime, name, changes)
        return {"seq": dead.seq, "status": "applied", "changes": len(changes)}

    async def _copy_event(self, dead: DeadLetter) -> dict[str, Any]:
        try:
            envelope = Envelope.from_json(dead.payload)
        except ValidationError:
            raise NotReplayable("the event cannot be read", code="malformed") from None
        origin = (dead.source or "").split(":", 1)[0]
        try:
            async with self.runtime.pool.acquire() as conn:
                async with conn.transaction():
                    stored = await copy_foreign(conn, origin, [envelope])
                    if stored:
                        await conn.execute("SELECT pg_notify('events', '')")
        except Exception as exc:
            if is_outage(exc):
                raise ReplayUnavailable(f"could not copy the event: {type(exc).__name__}") from exc
            return await self._failed_again(dead, f"{type(exc).__name__}: {exc}")
        return {"seq": dead.seq, "status": "applied" if stored else "already_applied"}

    async def _failed_again(self, dead: DeadLetter, error: str) -> dict[str, Any]:
        """The replay failed: a dead letter with the new error replaces this one."""
        failure = Failure(
            subject=dead.subject,
            command=dead.command,
            sender=dead.sender,
            idempotency_key=dead.idempotency_key,
            correlation_id=dead.correlation_id,
            first_failed=_seconds(dead.first_failed) or dead.at.timestamp(),
            deliveries=dead.deliveries + 1,
        )
        try:
            seq = await self.runtime.dead_letters.send(
                dead.reason, dead.payload, error=error, headers=dead.headers, source=dead.source, failure=failure
            )
        except (nats.errors.Error, OSError) as exc:
            raise ReplayUnavailable(f"could not keep the dead letter: {type(exc).__name__}") from exc
        await self.purge(dead.seq)
        return {"seq": dead.seq, "status": "failed", "error": error, "dead_letter": seq}


def _seconds(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
