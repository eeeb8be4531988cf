"""What every report query shares: the reader's line of sight, filters, SQL building, paging."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg

from salesplatform.errors import PermissionDenied
from salesplatform.events import Actor, Role
from salesplatform.territory import OUTSIDE_LINE, Place, Reach, reach_of, require_filter_in_line

PROJECTIONS = (
    "directory",
    "sales",
    "field_work",
    "service_quality",
    "receivables",
    "targets",
    "sales_office",
    "office_plans",
)

# Who reads every report besides the line of command: the archive clerk.
REPORT_READERS = frozenset({Role.clerk})


def scope_of(actor: Actor, *, extra_roles: frozenset[Role] = frozenset()) -> Reach:
    """The part of the organisation the reader's reports cover (the platform's line of
    command); `extra_roles` read a report whole besides (the inspector the service quality)."""
    return reach_of(actor, readers=REPORT_READERS | extra_roles)


@dataclass(frozen=True)
class Territory:
    """Filters a reader asked for: which rep, district, area (and customer)."""

    rep_id: str | None = None
    district_id: str | None = None
    area_id: str | None = None
    customer_id: str | None = None


class _Directory:
    """Where reps and districts lie, from the reports' directory."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    async def place_of_rep(self, rep_id: str) -> Place | None:
        row = await self.conn.fetchrow(
            f"SELECT district_id, area_id FROM {self.schema}.staff WHERE staff_id = $1", rep_id
        )
        return None if row is None else Place(rep_id, row["district_id"], row["area_id"])

    async def area_of_district(self, district_id: str) -> str | None:
        area: str | None = await self.conn.fetchval(
            f"SELECT area_id FROM {self.schema}.districts WHERE district_id = $1", district_id
        )
        return area


def _place(asked: Territory) -> Place:
    return Place(asked.rep_id, asked.district_id, asked.area_id)


async def check_within(conn: asyncpg.Connection, schemas: dict[str, str], scope: Reach, asked: Territory) -> None:
    """Refuse (403) a filter that reaches outside the reader's line; never narrow silently."""
    if scope.everything:
        return
    d = schemas["directory"]
    await require_filter_in_line(scope, _place(asked), _Directory(conn, d))
    if asked.customer_id is not None:
        c = await conn.fetchrow(
            f"SELECT rep_id, district_id, area_id FROM {d}.customers WHERE customer_id = $1", asked.customer_id
        )
        if c is None or not scope.covers(Place(c["rep_id"], c["district_id"], c["area_id"])):
            raise PermissionDenied(f"customer {asked.customer_id} is outside your line", code=OUTSIDE_LINE)


@dataclass
class Query:
    """Builds a parameterised WHERE clause."""

    args: list[Any] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, condition: str, *values: Any) -> None:
        """`condition` uses {} for each value, in order."""
        self.conditions.append(condition.format(*(self.param(v) for v in values)))

    def equal(self, column: str, value: Any) -> None:
        if value is not None:
            self.where(f"{column} = {{}}", value)

    def clause(self, keyword: str = "WHERE") -> str:
        return f"{keyword} " + " AND ".join(self.conditions) if self.conditions else ""

    def territory(self, scope: Reach, asked: Territory, *, rep: str, district: str, area: str) -> None:
        """Rows within the reader's line and the asked filters, by the given columns."""
        columns = {"rep_id": rep, "district_id": district, "area_id": area}
        for level, value in scope.conditions(_place(asked)):
            self.equal(columns[level], value)


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


@dataclass
class Result:
    """Rows of a report page and how many rows the whole report has."""

    items: list[dict[str, Any]]
    total: int


async def paged(conn: asyncpg.Connection, sql: str, args: Sequence[Any], page: Page, order: str) -> Result:
    """Run `sql` (a complete SELECT) with a total count, ordered and paged."""
    n = len(args)
    rows = await conn.fetch(
        f"SELECT q.*, count(*) OVER () AS _total FROM ({sql}) AS q ORDER BY {order} LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        page.limit,
        page.offset,
    )
    total = rows[0]["_total"] if rows else 0
    if not rows and page.offset:
        total = await conn.fetchval(f"SELECT count(*) FROM ({sql}) AS q", *args)
    return Result([{k: v for k, v in r.items() if k != "_total"} for r in rows], total)


# A report's query: its rows for a reader's scope, read in the snapshot `reading_reports` opens.
ReportQuery = Callable[[asyncpg.Connection, dict[str, str], Reach], Awaitable[Result]]


@contextlib.asynccontextmanager
async def reading_reports(pool: asyncpg.Pool) -> AsyncIterator[tuple[asyncpg.Connection, dict[str, str]]]:
    """A read-only connection and the active schema of every report projection: one snapshot
    across all of them, each at the generation that answers now."""
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        rows = await conn.fetch(
            "SELECT name, active_schema FROM projections WHERE name = ANY($1::text[])", list(PROJECTIONS)
        )
        yield conn, {r["name"]: r["active_schema"] for r in rows}


def days_between(start: date, end: date) -> int:
    return (end - start).days + 1
