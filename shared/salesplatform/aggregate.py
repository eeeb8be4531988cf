"""Base of event-sourced aggregates. Pure: no I/O, only events in and events out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Self

from salesplatform.events import Event


class Aggregate(ABC):
    """State rebuilt from its own events; decisions recorded as new pending events.

    Subclasses set `stream_prefix`, implement `apply` (state change for one event, never
    fails), and expose decision methods that check rules and call `record`.
    """

    stream_prefix: ClassVar[str]

    def __init__(self, id: str) -> None:
        self.id = id
        self.version = 0
        self.pending: list[Event] = []

    @classmethod
    def stream_id_for(cls, id: str) -> str:
        return f"{cls.stream_prefix}-{id}"

    @property
    def stream_id(self) -> str:
        return self.stream_id_for(self.id)

    @property
    def exists(self) -> bool:
        return self.version > 0 or bool(self.pending)

    @classmethod
    def replay(cls, id: str, events: list[Event]) -> Self:
        agg = cls(id)
        for event in events:
            agg.apply(event)
            agg.version += 1
        return agg

    def record(self, event: Event) -> None:
        self.apply(event)
        self.pending.append(event)

    @abstractmethod
    def apply(self, event: Event) -> None:
        """Change the state for one event; never fails (the event already happened)."""
