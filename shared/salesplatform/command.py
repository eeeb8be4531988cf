"""What a command is, how one arrives and what it answers: no database, no messaging.

The domain packages take `Command` from here, so they import no database or NATS driver. The
bus (`salesplatform.commands`) and its batches (`salesplatform.batching`) take the rest:
`Request` (a command as it arrived), `Outcome` (what it answered) and the rules of the
Idempotency-Key (its form, its scope, the fingerprint of the body it was first sent with).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict

from salesplatform.errors import ServiceError
from salesplatform.events import Actor

if TYPE_CHECKING:
    from salesplatform.aggregate import Aggregate
    from salesplatform.projections import Change


class Command(BaseModel):
    """Base of every command: imperative name, frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: ClassVar[str]
    # Payload fields (as sent) that may hold personal data, such as free text about a person:
    # left out of the command's dead letters.
    personal_fields: ClassVar[frozenset[str]] = frozenset()


Result = dict[str, Any]
# (actor id, command, Idempotency-Key): a key means something only to the caller who sent it,
# for the command it sent it with.
Scope = tuple[str, str, str]


@dataclass
class Request:
    """One command as it arrived: raw payload plus who sent it and why."""

    name: str
    payload: Any
    actor: Actor
    idempotency_key: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    # The W3C trace context (`traceparent`, `tracestate`) the command arrived with; once the bus
    # took it, its own span's, which the events it records keep.
    trace: dict[str, str] | None = None


@dataclass
class Outcome:
    """What a command answered: its result, or the error that refused it (nothing written)."""

    ok: bool
    result: Result | None = None
    error: ServiceError | None = None
    # What the inline projections changed when the command's transaction committed, for the
    # bus's `after_commit` hooks. In a batch, a wave's changes are all on its first command's.
    changes: list[tuple[str, list[Change]]] = field(default_factory=list)
    # The result is the one stored for its Idempotency-Key: the command did not run again.
    replayed: bool = False
    # The aggregates the command loaded: cached once its transaction commits.
    seen: list[Aggregate] = field(default_factory=list, repr=False)

    @property
    def status(self) -> int:
        return 200 if self.ok else self.error.status  # type: ignore[union-attr]

    def to_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "result": self.result}
        return {"ok": False, "status": self.status, "error": self.error.to_dict()}  # type: ignore[union-attr]


class InternalError(ServiceError):
    """A handler failed in a way no rule foresaw (a bug): a structured 500, nothing written."""

    status = 500
    code = "internal_error"


# The longest Idempotency-Key taken. A UUID (36) or a caller's own reference fits many times;
# the stored results' index could not hold keys of a few thousand characters.
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class IdempotencyKeyRefused(ServiceError):
    """The Idempotency-Key cannot be used: too long, empty or with control characters, or
    already used by this caller for this command with another body. Nothing was changed."""

    status = 422
    code = "idempotency_key_invalid"


def check_idempotency_key(key: str) -> None:
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise IdempotencyKeyRefused(
            f"an Idempotency-Key may hold at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters, not {len(key)}",
            code="idempotency_key_too_long",
            field="Idempotency-Key",
        )
    if not key or any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise IdempotencyKeyRefused(
            "an Idempotency-Key must be non-empty and hold no control characters", field="Idempotency-Key"
        )


def fingerprint(command: Command) -> str:
    """The hash of the command's canonical body: its validated fields that differ from their
    defaults, keys sorted. Bodies that differ only in spacing, key order, stripped whitespace or
    a field sent with its default value have one fingerprint; so does a body run by a release
    whose command has gained an optional field (a rolling update: one release stores the key,
    the next may see the message again)."""
    canonical = orjson.dumps(command.model_dump(mode="json", exclude_defaults=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def scope_of(request: Request) -> Scope:
    assert request.idempotency_key is not None
    return (request.actor.id, request.name, request.idempotency_key)


def replay(stored: tuple[Result, str | None], request: Request, print_: str) -> Result:
    """The first result of a key, for a request that sent it again; refused if the body is not
    the one the key was first used with. (A result recorded before fingerprints were kept has
    none, and is replayed.)"""
    result, first_print = stored
    if first_print is not None and first_print != print_:
        raise IdempotencyKeyRefused(
            f"the Idempotency-Key was already used for {request.name} with another body; "
            "use a new key for a new request",
            code="idempotency_key_reused",
            field="Idempotency-Key",
        )
    return result
