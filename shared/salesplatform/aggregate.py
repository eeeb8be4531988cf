"""Base of event-sourced aggregates. Pure: no I/O, only events in and events out."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable
from typing import ClassVar, Self

from salesplatform.events import Event


class Aggregate(ABC):
    """State rebuilt from its own events; decisions recorded as new pending events.

    Subclasses set `stream_prefix`, implement `apply` (state change for one event, never
    fails), and expose decision methods that check rules and call `record`.
    """

    stream_prefix: ClassVar[str]
    # True on a copy from the aggregate cache while it still shares its state with the kept
    # aggregate: the state is copied before the first event changes it (`_own_state`).
    _shares_state: bool = False

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
        agg.catch_up(events)
        return agg

    def record(self, event: Event) -> None:
        self._own_state()
        self.apply(event)
        self.pending.append(event)

    def catch_up(self, events: Iterable[Event]) -> None:
        """Apply events stored after this aggregate's version."""
        for event in events:
            self._own_state()
            self.apply(event)
            self.version += 1

    def _own_state(self) -> None:
        if self._shares_state:
            self.__dict__ = copy.deepcopy(self.__dict__)
            self._shares_state = False

    @abstractmethod
    def apply(self, event: Event) -> None:
        """Change the state for one event; never fails (the event already happened)."""


class AggregateCache:
    """Aggregates as of a committed version, kept in memory (least recently used dropped), so
    loading one reads and replays only the events after that version.

    Only what a committed command saw goes in: every aggregate it loaded and left without
    pending events is, after the commit, the replay of its stream up to its version (state
    changes only by applying events). Entries are never changed in place: `get` gives a copy
    that shares the kept state until an event is applied to it, and only then copies it (most
    loads only read: the SKUs and promotions of an order).
    Another process appending to a stream makes an entry older, never wrong: the newer
    events are read on the next load.
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._items: OrderedDict[str, Aggregate] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, stream_id: str) -> Aggregate | None:
        agg = self._items.get(stream_id)
        if agg is None:
            return None
        self._items.move_to_end(stream_id)
        borrowed = object.__new__(type(agg))
        borrowed.__dict__.update(agg.__dict__)
        borrowed.pending = []
        borrowed._shares_state = True
        return borrowed

    def version(self, stream_id: str) -> int:
        """The version a load of the stream starts from (0: not kept)."""
        agg = self._items.get(stream_id)
        return agg.version if agg is not None else 0

    def put(self, aggregates: Iterable[Aggregate]) -> None:
        if self.size <= 0:
            return
        items = self._items
        for agg in aggregates:
            if agg.pending:
                continue
            stream_id = agg.stream_id
            kept = items.get(stream_id)
            if kept is not None:
                if kept.version > agg.version:
                    continue
                items.move_to_end(stream_id)
            items[stream_id] = agg
        while len(self._items) > self.size:
            self._items.popitem(last=False)
