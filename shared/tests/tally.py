"""A tiny domain used to test the platform on its own: a tally sheet that counts visits.

Small enough to read at a glance; real enough to exercise aggregates, commands, inline and
catch-up projections, foreign events and rebuilds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from salesplatform.aggregate import Aggregate
from salesplatform.clock import Clock
from salesplatform.commands import Command, CommandBus
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY
from salesplatform.errors import DomainError
from salesplatform.events import Actor, Event, EventRegistry, Role
from salesplatform.projections import Change, Projection
from salesplatform.service import Consumes, ServiceDefinition
from salesplatform.store import NewEvent, RecordedEvent
from salesplatform.uow import UnitOfWork


class SheetOpened(Event):
    event_type = "sheet.opened"
    schema_version = 2
    title: str
    owner: str


class VisitsCounted(Event):
    event_type = "sheet.counted"
    count: int


registry = EventRegistry([SheetOpened, VisitsCounted])

SIGNING_KEY = TEST_SIGNING_KEY
TEST_ACTOR = Actor(id="r1", role=Role.rep, district="d1")


def new_event(count: int = 1, **extra: Any) -> NewEvent:
    """A raw `sheet.counted` event for tests that append below the command layer."""
    now = datetime.now(UTC)
    return NewEvent("sheet.counted", 1, {"count": count, **extra}, now, now, TEST_ACTOR)


@registry.upcaster("sheet.opened", 1)
def _opened_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # v1 had no owner; sheets from then belonged to the archive clerk.
    return {**data, "owner": "clerk"}


class Sheet(Aggregate):
    stream_prefix = "sheet"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.total = 0
        self.title = ""
        self.counts: list[int] = []

    def apply(self, event: Event) -> None:
        match event:
            case SheetOpened():
                self.title = event.title
            case VisitsCounted():
                self.total += event.count
                self.counts.append(event.count)

    def open(self, title: str, owner: str) -> None:
        if self.exists:
            raise DomainError("sheet already open", code="sheet_exists")
        self.record(SheetOpened(title=title, owner=owner))

    def count(self, n: int) -> None:
        if not self.exists:
            raise DomainError("sheet not open", code="sheet_not_open")
        if self.total + n > 1_000_000:
            raise DomainError(
                "too many",
                code="limit",
            )
        self.record(VisitsCounted(count=n))


class OpenSheet(Command):
    name = "open_sheet"
    sheet_id: str = Field(min_length=1)
    title: str = Field(min_length=1, max_length=50)


class CountVisits(Command):
    name = "count_visits"
    sheet_id: str
    count: int = Field(gt=0)


class SheetTotals(Projection):
    """Inline: one row per sheet with its total."""

    name = "sheet_totals"
    inline = True
    event_types = frozenset({"sheet.opened", "sheet.counted"})
    schema_sql = "CREATE TABLE totals (sheet_id text PRIMARY KEY, title text, total bigint NOT NULL DEFAULT 0)"

    async def apply(self, conn, event: RecordedEvent) -> Iterable[Change]:
        sheet_id = event.envelope.stream_id.removeprefix("sheet-")
        if event.event_type == "sheet.opened":
            if event.data["title"] == "explode":
                raise RuntimeError("projection refuses this title")
            await conn.execute("INSERT INTO totals (sheet_id, title) VALUES ($1, $2)", sheet_id, event.data["title"])
        else:
            await conn.execute(
                "UPDATE totals SET total = total + $2 WHERE sheet_id = $1", sheet_id, event.data["count"]
            )
        return [{"sheet_id": sheet_id}]


class EventCounts(Projection):
    """Catch-up: how many events of each type the log holds (own and foreign)."""

    name = "event_counts"
    schema_sql = "CREATE TABLE counts (event_type text PRIMARY KEY, n bigint NOT NULL)"
    # A bug in the projection: it cannot apply an event marked poison (a test fixes it).
    refuses_poison = True

    async def apply(self, conn, event: RecordedEvent) -> Iterable[Change]:
        if event.data.get("poison") and self.refuses_poison:
            raise ValueError("poison event")
        await conn.execute(
            "INSERT INTO counts VALUES ($1, 1) ON CONFLICT (event_type) DO UPDATE SET n = counts.n + 1",
            event.event_type,
        )
        return [{"event_type": event.event_type}]


class CountOnBoth(Command):
    """Counts the same visits on two sheets, saving them in the order given."""

    name = "count_on_both"
    first: str
    second: str


class CountWithinCap(Command):
    """Counts visits unless the total over all sheets would pass `cap`: a rule over a read
    model, so in a batch it claims the key of what it reads."""

    name = "count_within_cap"
    sheet_id: str
    count: int = Field(gt=0)
    cap: int


class CountWithinCapUndeclared(CountWithinCap):
    """`count_within_cap` that names its claim only in the handler, so a batch cannot take it
    ahead."""

    name = "count_within_cap_undeclared"


class OpenAndCount(Command):
    """Opens a sheet and counts on it, loading it again in between (reads its own write)."""

    name = "open_and_count"
    sheet_id: str
    count: int = Field(gt=0)


class NoteSheet(Command):
    """Counts one visit and keeps a note beside the events (in `public.sheet_notes`, a table
    the test makes)."""

    name = "note_sheet"
    personal_fields = frozenset({"note"})  # free text, which may describe a person
    sheet_id: str
    note: str


class BreakTransaction(Command):
    """Runs a statement PostgreSQL refuses (a fault below the rules)."""

    name = "break_transaction"


# A test sets this to line up two handlers between their two saves (a deadlock on purpose).
between_saves: list[Any] = []
# A test sets this to act between a batched count's decision and the batch's commit.
after_count: list[Any] = []
# A test sets this to hold a capped count between its read of the totals and its commit.
after_cap_check: list[Any] = []


def build_bus(reg: EventRegistry, clock: Clock) -> CommandBus:
    bus = CommandBus(reg, clock, inline_projections=[SheetTotals()])

    @bus.command(OpenSheet, roles={Role.rep, Role.supervisor, Role.system}, batched=True)
    async def open_sheet(cmd: OpenSheet, uow: UnitOfWork) -> dict:
        sheet = await uow.load(Sheet, cmd.sheet_id)
        sheet.open(cmd.title, uow.actor.id)
        await uow.save(sheet)
        return {"sheet_id": cmd.sheet_id, "version": sheet.version}

    async def read_sheets_ahead(uow: UnitOfWork, items: list) -> None:
        await uow.preload_streams([Sheet.stream_id_for(cmd.sheet_id) for _, cmd in items])

    @bus.command(
        CountVisits,
        roles={Role.rep, Role.supervisor, Role.system},
        batched=True,
        preload=read_sheets_ahead,
    )
    async def count_visits(cmd: CountVisits, uow: UnitOfWork) -> dict:
        sheet = await uow.get(Sheet, cmd.sheet_id)
        sheet.count(cmd.count)
        await uow.save(sheet)
        for hook in after_count:
            await hook(cmd.sheet_id)
        return {"sheet_id": cmd.sheet_id, "total": sheet.total, "version": sheet.version}

    @bus.command(CountWithinCapUndeclared, roles={Role.rep}, batched=True)
    @bus.command(CountWithinCap, roles={Role.rep}, batched=True, claims=lambda cmd: ["all-sheets"])
    async def count_within_cap(cmd: CountWithinCap, uow: UnitOfWork) -> dict:
        await uow.claim("all-sheets")
        schema = (await uow.schemas("sheet_totals"))["sheet_totals"]
        total = await uow.conn.fetchval(f"SELECT coalesce(sum(total), 0) FROM {schema}.totals")
        if total + cmd.count > cmd.cap:
            raise DomainError(f"the sheets hold {total} already", code="over_cap")
        sheet = await uow.get(Sheet, cmd.sheet_id)
        sheet.count(cmd.count)
        await uow.save(sheet)
        for hook in after_cap_check:
            await hook(cmd.sheet_id)
        return {"sheet_id": cmd.sheet_id, "total": total + cmd.count}

    @bus.command(OpenAndCount, roles={Role.rep}, batched=True)
    async def open_and_count(cmd: OpenAndCount, uow: UnitOfWork) -> dict:
        sheet = await uow.load(Sheet, cmd.sheet_id)
        sheet.open(cmd.sheet_id, uow.actor.id)
        await uow.save(sheet)
        again = await uow.get(Sheet, cmd.sheet_id)
        again.count(cmd.count)
        await uow.save(again)
        return {"sheet_id": cmd.sheet_id, "version": again.version}

    @bus.command(NoteSheet, roles={Role.rep}, batched=True)
    async def note_sheet(cmd: NoteSheet, uow: UnitOfWork) -> dict:
        sheet = await uow.get(Sheet, cmd.sheet_id)
        sheet.count(1)
        await uow.save(sheet)
        await uow.write_with_events(
            lambda conn: conn.execute("INSERT INTO public.sheet_notes VALUES ($1, $2)", cmd.sheet_id, cmd.note)
        )
        return {"sheet_id": cmd.sheet_id}

    @bus.command(BreakTransaction, roles={Role.rep}, batched=True)
    async def break_transaction(cmd: BreakTransaction, uow: UnitOfWork) -> dict:
        await uow.conn.fetchval("SELECT 1 / 0")
        return {}

    @bus.command(CountOnBoth, roles={Role.rep})
    async def count_on_both(cmd: CountOnBoth, uow: UnitOfWork) -> dict:
        first = await uow.get(Sheet, cmd.first)
        second = await uow.get(Sheet, cmd.second)
        first.count(1)
        second.count(1)
        await uow.save(first)
        for wait in between_saves:
            await wait()
        await uow.save(second)
        return {"ok": True}

    return bus


def definition(name: str = "tally", consumes: list[Consumes] | None = None) -> ServiceDefinition:
    return ServiceDefinition(
        name=name,
        registry=registry,
        build_bus=build_bus,
        projections=[EventCounts()],
        consumes=consumes or [],
    )
