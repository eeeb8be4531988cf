"""The event envelope, event payload models and the type registry with upcasting.

Every event a service stores or sends has one envelope (docs/architecture.md). Payloads are one
frozen pydantic model per event type; the registry maps `event_type` to that model and keeps
the chain of upcasters that turn old `schema_version`s into the current one on read. Stored
events are never rewritten.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

M = TypeVar("M", bound=BaseModel)


def trusted(cls: type[M], **values: Any) -> M:
    """A model from values already valid (read from the log, or made of validated parts),
    unchecked: `model_construct` with every field given, at a third of its cost (the log's
    readers and writers build one envelope per event). Only for models without private
    attributes; every field must be given."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


class Role(StrEnum):
    rep = "rep"
    supervisor = "supervisor"
    area_manager = "area_manager"
    sales_manager = "sales_manager"
    general_manager = "general_manager"
    inspector = "inspector"
    clerk = "clerk"
    # Another organisation's system sending commands (an ERP, a call centre, a logistics desk).
    system = "system"
    # Runs the platform: admin endpoints, rebuilds, dead letters; no business rights.
    operator = "operator"
    # A service acting on its own behalf (timers, reactors), inside its own process only.
    service = "service"


# The line of command; roles outside it (inspector, clerk, system, operator, service) have
# rank 0 and get their rights by name, never by "and up".
_RANK = {
    Role.rep: 1,
    Role.supervisor: 2,
    Role.area_manager: 3,
    Role.sales_manager: 4,
    Role.general_manager: 5,
}


def rank(role: Role) -> int:
    return _RANK.get(role, 0)


class Actor(BaseModel):
    """Who acts: a person of the sales department or another system."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=100)
    role: Role
    district: str | None = None
    area: str | None = None
    # The operator who replayed a dead-lettered command of this actor's (`dead_letters`): the
    # command runs with its sender's rights, and the record says who sent it again. No token
    # carries it.
    replayed_by: str | None = Field(default=None, max_length=100)

    def at_least(self, role: Role) -> bool:
        return rank(self.role) >= rank(role) > 0

    @property
    def is_manager(self) -> bool:
        """Sales manager and up: sees the whole department."""
        return self.at_least(Role.sales_manager)


def service_actor(service: str, job: str | None = None) -> Actor:
    """The identity a service acts under on its own behalf (a timer, a reactor): never a
    person's, never an outside system's. `job` names the part of the service that acts."""
    return Actor(id=f"service:{service}" + (f":{job}" if job else ""), role=Role.service)


class Event(BaseModel):
    """Base of every event payload. Subclasses set `event_type` and `schema_version`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """The stored and published form of one event."""

    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID
    event_type: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    schema_version: int = Field(ge=1)
    stream_id: str = Field(min_length=3)
    stream_version: int = Field(ge=1)
    occurred_at: datetime
    recorded_at: datetime
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: Actor
    data: dict[str, Any]
    # What the event keeps besides its payload: the W3C trace context (`traceparent`,
    # `tracestate`) of the command that recorded it, when tracing is on.
    metadata: dict[str, str] | None = None

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        return cls.model_validate_json(raw)

    @property
    def aggregate(self) -> str:
        return self.event_type.split(".", 1)[0]


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventType(LookupError):
    pass


class EventRegistry:
    """Maps event types to payload models; upcasts old schema versions on read."""

    def __init__(self, types: Iterable[type[Event]] = ()) -> None:
        self._types: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        for t in types:
            self.register(t)

    def register(self, event_cls: type[Event]) -> type[Event]:
        existing = self._types.get(event_cls.event_type)
        if existing is not None and existing is not event_cls:
            raise ValueError(f"event type {event_cls.event_type} registered twice")
        self._types[event_cls.event_type] = event_cls
        return event_cls

    def include(self, other: EventRegistry) -> None:
        for t in other._types.values():
            self.register(t)
        self._upcasters.update(other._upcasters)

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning version `from_version` of a payload into the next one."""

        def decorate(fn: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = fn
            return fn

        return decorate

    def __contains__(self, event_type: str) -> bool:
        return event_type in self._types

    def types(self) -> list[type[Event]]:
        return list(self._types.values())

    def model(self, event_type: str) -> type[Event]:
        try:
            return self._types[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def upcast(self, event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        target = self.model(event_type).schema_version
        while version < target:
            step = self._upcasters.get((event_type, version))
            if step is None:
                raise LookupError(f"no upcaster for {event_type} v{version}")
            data = step(data)
            version += 1
        return data

    def decode(self, envelope: Envelope) -> Event:
        return self.decode_payload(envelope.event_type, envelope.schema_version, envelope.data)

    def decode_payload(self, event_type: str, schema_version: int, data: dict[str, Any]) -> Event:
        """The current model of a stored payload, upcast from its version if need be.

        Fields the model does not know are left out: an optional field added in a newer
        release (which keeps the schema version) is then read by the release before it, whose
        replicas keep serving beside the new ones during a rolling update, and by consumers not
        yet upgraded. Events made in code still refuse unknown fields."""
        model = self.model(event_type)
        if schema_version != model.schema_version:
            data = self.upcast(event_type, schema_version, data)
        fields = model.model_fields
        if not data.keys() <= fields.keys():
            data = {name: value for name, value in data.items() if name in fields}
        return model.model_validate(data)

    def json_schemas(self) -> dict[str, Any]:
        """The published contract: one JSON Schema per event type, plus the envelope."""
        out: dict[str, Any] = {"envelope": Envelope.model_json_schema()}
        for event_type, cls in sorted(self._types.items()):
            schema = cls.model_json_schema()
            schema["x-event-type"] = event_type
            schema["x-schema-version"] = cls.schema_version
            out[event_type] = schema
        return out
