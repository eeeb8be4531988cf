"""Which failures are outages, and how an outage is logged.

A failure is judged by what it means, not by where it was raised. An *outage* says that
something a service depends on (PostgreSQL, NATS, the network) is away for a while: the work
that met it is handed back and waits, and is never answered with an error or dead-lettered
for it. *Contention* (a serialization failure, a deadlock) says that another transaction was
in the way: the work runs again. Anything else is a fault of the work itself (a command, an
event), which alone may reach a 4xx result or a dead-letter stream.

The command bus, the ingest and event consumers, the outbox relay, the projection runner and
the timers all ask `outage_of`, `is_outage` and `is_contention` here, and report what they
meet to one `OutageLog` per service: an outage is logged once when it begins and once when
it ends, with how long it lasted, however many loops met it and however often.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import nats.errors
import nats.js.errors
import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outage:
    """What is away (`dependency`: postgresql, nats or network) and what it said (`reason`)."""

    dependency: str
    reason: str


# SQLSTATEs that say the server, not the statement, is the trouble.
_POSTGRES_OUTAGES = {
    "57P01": "admin_shutdown",  # a fast or smart shutdown (pg_ctl stop), or a terminated backend
    "57P02": "crash_shutdown",  # another backend crashed: the server restarts
    "57P03": "cannot_connect_now",  # starting up, in crash recovery, or shutting down
    "57P04": "database_dropped",
    "57P05": "idle_session_timeout",
    "53000": "insufficient_resources",
    "53100": "disk_full",
    "53200": "out_of_memory",
    "53300": "too_many_connections",
    "25006": "read_only",  # a primary that became a standby after a failover
    "58030": "io_error",
}
# Another transaction was in the way: the work runs again, it is not at fault.
_CONTENTION = {"40001": "serialization_failure", "40P01": "deadlock"}

# What asyncpg says, without a SQLSTATE, about a connection that is gone.
_LOST_CONNECTION_WORDS = (
    "connection is closed",
    "connection was closed",
    "released back to the pool",
    "pool is closing",
    "pool is closed",
    "cannot switch to state",  # the protocol's state broken by the socket closing under it
)

_NATS_OUTAGES: tuple[type[BaseException], ...] = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.NoRespondersError,
    nats.errors.OutboundBufferLimitError,
    nats.js.errors.ServiceUnavailableError,  # JetStream without a leader for a moment
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it or was being handled when it was raised: an error of the
    clean-up after a lost connection (a rollback on a dead socket) stands for the loss."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _outage_of_one(exc: BaseException) -> Outage | None:
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        if state.startswith("08"):
            return Outage("postgresql", "connection_lost")
        if state in _POSTGRES_OUTAGES:
            return Outage("postgresql", _POSTGRES_OUTAGES[state])
        return None
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError):
        text = str(exc)
        if any(words in text for words in _LOST_CONNECTION_WORDS):
            return Outage("postgresql", "connection_lost")
        return None
    if isinstance(exc, _NATS_OUTAGES):
        return Outage("nats", type(exc).__name__)
    if isinstance(exc, nats.errors.TimeoutError):
        return Outage("nats", "timeout")
    if isinstance(exc, TimeoutError):
        return Outage("network", "timeout")  # a pool's or a connection's wait ran out
    if isinstance(exc, OSError):
        return Outage("network", type(exc).__name__)  # refused, reset, unreachable
    return None


def outage_of(exc: BaseException) -> Outage | None:
    """The outage `exc` reports, if it reports one."""
    for link in _chain(exc):
        found = _outage_of_one(link)
        if found is not None:
            return found
    return None


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says a dependency is away rather than that the work is wrong."""
    return outage_of(exc) is not None


def is_contention(exc: BaseException) -> bool:
    """Whether `exc` is PostgreSQL giving up a transaction for another's sake."""
    return isinstance(exc, asyncpg.PostgresError) and (exc.sqlstate or "") in _CONTENTION


def is_transient(exc: BaseException) -> bool:
    """Whether the work that met `exc` is to run again later, unjudged."""
    return is_contention(exc) or is_outage(exc)


class OutageLog:
    """A service's outages as its loops meet them: `failed(place, exc)` when one fails for an
    outage, `recovered(place)` when it has worked again.

    The first failure opens an outage and logs `outage_began` (warning: what and where); the
    places failing meanwhile join it silently; once every one of them has worked again it is
    over, logged `outage_ended` with its duration. A loop's retries of its own are not logged.
    """

    def __init__(self, service: str = "") -> None:
        self.service = service
        self._began: float | None = None
        self._failing: set[str] = set()
        self._places: set[str] = set()
        self._outage: Outage | None = None
        self.count = 0  # outages since the process started

    @property
    def ongoing(self) -> bool:
        return self._began is not None

    def failed(self, place: str, exc: BaseException) -> None:
        outage = outage_of(exc) or Outage("unknown", type(exc).__name__)
        if self._began is None:
            self._began = time.monotonic()
            self._outage = outage
            self._places = set()
            self.count += 1
            log.warning(
                "outage_began",
                service=self.service,
                dependency=outage.dependency,
                reason=outage.reason,
                where=place,
                error=repr(exc)[:300],
            )
        self._failing.add(place)
        self._places.add(place)

    def recovered(self, place: str) -> None:
        if place not in self._failing:
            return
        self._failing.discard(place)
        if self._failing or self._began is None:
            return
        assert self._outage is not None
        log.warning(
            "outage_ended",
            service=self.service,
            dependency=self._outage.dependency,
            reason=self._outage.reason,
            where=sorted(self._places),
            duration_seconds=round(time.monotonic() - self._began, 3),
        )
        self._began = None
        self._outage = None
