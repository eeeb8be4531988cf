"""Territory lookups for command handlers, from the local directory (a catch-up projection)."""

from __future__ import annotations

from typing import Literal

import asyncpg

from reporting_service.domain.target import Subject
from reporting_service.queries import territory
from salesplatform.errors import DomainError


async def subject(conn: asyncpg.Connection, level: str, subject_id: str) -> Subject:
    """A rep, district or area the customer archive knows; refused when it knows none."""
    if level == "area":
        if await territory.area_known(conn, subject_id):
            return Subject("area", subject_id, subject_id)
    elif level == "district":
        row = await territory.district(conn, subject_id)
        if row is not None:
            return Subject("district", subject_id, row["area_id"], subject_id)
    else:
        row = await territory.active_rep(conn, subject_id)
        if row is not None:
            return Subject("rep", subject_id, row["area_id"], row["district_id"])
    raise DomainError(f"the customer archive knows no {level} {subject_id}", code="unknown_subject", field="subject_id")


async def children_of(conn: asyncpg.Connection, parent: Subject, level: str) -> list[Subject]:
    """Every district of an area, or every active rep of an area or district, by id."""
    if level == "district":
        rows = await territory.districts_of_area(conn, parent.id)
        return [Subject("district", r["district_id"], r["area_id"], r["district_id"]) for r in rows]
    column: Literal["area_id", "district_id"] = "area_id" if parent.level == "area" else "district_id"
    rows = await territory.active_reps_in(conn, column, parent.id)
    return [Subject("rep", r["staff_id"], r["area_id"], r["district_id"]) for r in rows]
