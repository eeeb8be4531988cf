"""What every report query shares: the reader's line of sight, filters, SQL building, paging."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg

from salesplatform.errors import PermissionDenied
from salesplatform.events import Actor, Role

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

# Who sees everything: managers of the whole department, the archive clerk, other systems.
SEES_ALL = {Role.sales_manager, Role.general_manager, Role.clerk, Role.system}


@dataclass(frozen=True)
class Scope:
    """The part of the organisation an actor may see (docs/domain.md, "People and territory"): a rep
    their own figures, a supervisor the team's district, an area manager the area."""

    rep_id: str | None = None
    district_id: str | None = None
    area_id: str | None = None

    @property
    def everything(self) -> bool:
        return self.rep_id is None and self.district_id is None and self.area_id is None


def scope_of(actor: Actor, *, extra_roles: frozenset[Role] = frozenset()) -> Scope:
    if actor.role in SEES_ALL or actor.role in extra_roles:
        return Scope()
    if actor.role == Role.rep:
        return Scope(rep_id=actor.id)
    if actor.role == Role.supervisor:
        if not actor.district:
            raise PermissionDenied("a supervisor's token names no district", code="no_territory")
        return Scope(district_id=actor.district)
    if actor.role == Role.area_manager:
        if not actor.area:
            raise PermissionDenied("an area manager's token names no area", code="no_territory")
        return Scope(area_id=actor.area)
    raise PermissionDenied(f"role {actor.role} does not read reports", code="role_not_allowed")


@dataclass(frozen=True)
class Territory:
    """Filters a reader asked for: which rep, district, area (and customer)."""

    rep_id: str | None = None
    district_id: str | None = None
    area_id: str | None = None
    customer_id: str | None = None


async def check_within(conn: asyncpg.Connection, schemas: dict[str, str], scope: Scope, asked: Territory) -> None:
    """Refuse (403) a filter that reaches outside the reader's line; never narrow silently."""
    if scope.everything:
        return
    d = schemas["directory"]
    if scope.rep_id is not None:
        if asked.rep_id not in (None, scope.rep_id):
            raise PermissionDenied("a rep sees only their own figures", code="outside_territory")
        staff = await conn.fetchrow(f"SELECT district_id, area_id FROM {d}.staff WHERE staff_id = $1", scope.rep_id)
        if asked.district_id is not None and (staff is None or staff["district_id"] != asked.district_id):
            raise PermissionDenied("a rep sees only their own figures", code="outside_territory")
        if asked.area_id is not None and (staff is None or staff["area_id"] != asked.area_id):
            raise PermissionDenied("a rep sees only their own figures", code="outside_territory")
    elif scope.district_id is not None:
        if asked.district_id not in (None, scope.district_id):
            raise PermissionDenied(f"district {asked.district_id} is not your team's", code="outside_territory")
        if asked.area_id is not None:
            area = await conn.fetchval(f"SELECT area_id FROM {d}.districts WHERE district_id = $1", scope.district_id)
            if area != asked.area_id:
                raise PermissionDenied(f"area {asked.area_id} is beyond your team", code="outside_territory")
        if asked.rep_id is not None:
            where = await conn.fetchval(f"SELECT district_id FROM {d}.staff WHERE staff_id = $1", asked.rep_id)
            if where != scope.district_id:
                raise PermissionDenied(f"rep {asked.rep_id} is not in your team", code="outside_territory")
    elif scope.area_id is not None:
        if asked.area_id not in (None, scope.area_id):
            raise PermissionDenied(f"area {asked.area_id} is not yours", code="outside_territory")
        if asked.district_id is not None:
            area = await conn.fetchval(f"SELECT area_id FROM {d}.districts WHERE district_id = $1", asked.district_id)
            if area != scope.area_id:
                raise PermissionDenied(f"district {asked.district_id} is not in your area", code="outside_territory")
        if asked.rep_id is not None:
            area = await conn.fetchval(f"SELECT area_id FROM {d}.staff WHERE staff_id = $1", asked.rep_id)
            if area != scope.area_id:
                raise PermissionDenied(f"rep {asked.rep_id} is not in your area", code="outside_territory")
    if asked.customer_id is not None:
        c = await conn.fetchrow(
            f"SELECT rep_id, district_id, area_id FROM {d}.customers WHERE customer_id = $1", asked.customer_id
        )
        inside = c is not None and (
            (scope.rep_id is not None and c["rep_id"] == scope.rep_id)
            or (scope.district_id is not None and c["district_id"] == scope.district_id)
            or (scope.area_id is not None and c["area_id"] == scope.area_id)
        )
        if not inside:
            raise PermissionDenied(f"customer {asked.customer_id} is outside your line", code="outside_territory")


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

    def territory(self, scope: Scope, asked: Territory, *, rep: str, district: str, area: str) -> None:
        """Rows within the reader's line and the asked filters, by the given columns."""
        self.equal(rep, scope.rep_id)
        self.equal(district, scope.district_id)
        self.equal(area, scope.area_id)
        self.equal(rep, asked.rep_id)
        self.equal(district, asked.district_id)
        self.equal(area, asked.area_id)


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
