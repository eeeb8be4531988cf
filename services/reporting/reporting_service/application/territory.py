"""Territory lookups for command handlers, from the local directory (a catch-up projection)."""

from __future__ import annotations

import asyncpg

from reporting_service.domain.target import Subject
from salesplatform.errors import DomainError
from salesplatform.projections import active_schema


async def subject(conn: asyncpg.Connection, level: str, subject_id: str) -> Subject:
    """A rep, district or area the customer archive knows; refused when it knows none."""
    schema = await active_schema(conn, "directory")
    if level == "area":
        row = await conn.fetchrow(
            f"SELECT area_id FROM {schema}.areas WHERE area_id = $1"
            f" UNION SELECT area_id FROM {schema}.districts WHERE area_id = $1",
            subject_id,
        )
        if row is not None:
            return Subject("area", subject_id, subject_id)
    elif level == "district":
        row = await conn.fetchrow(f"SELECT area_id FROM {schema}.districts WHERE district_id = $1", subject_id)
        if row is not None:
            return Subject("district", subject_id, row["area_id"], subject_id)
    else:
        row = await conn.fetchrow(
            f"SELECT district_id, area_id FROM {schema}.staff WHERE staff_id = $1 AND role = 'rep' AND active",
            subject_id,
        )
        if row is not None:
            return Subject("rep", subject_id, row["area_id"], row["district_id"])
    raise DomainError(f"the customer archive knows no {level} {subject_id}", code="unknown_subject", field="subject_id")


async def children_of(conn: asyncpg.Connection, parent: Subject, level: str) -> list[Subject]:
    """Every district of an area, or every active rep of an area or district, by id."""
    schema = await active_schema(conn, "directory")
    if level == "district":
        rows = await conn.fetch(
            f"SELECT district_id, area_id FROM {schema}.districts WHERE area_id = $1 ORDER BY district_id",
            parent.id,
        )
        return [Subject("district", r["district_id"], r["area_id"], r["district_id"]) for r in rows]
    column = "area_id" if parent.level == "area" else "district_id"
    rows = await conn.fetch(
        f"SELECT staff_id, district_id, area_id FROM {schema}.staff"
        f" WHERE {column} = $1 AND role = 'rep' AND active ORDER BY staff_id",
        parent.id,
    )
    return [Subject("rep", r["staff_id"], r["area_id"], r["district_id"]) for r in rows]
