"""The territory tree and the staff in it, as read by queries and permission checks."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from salesplatform.projections import Change, Projection
from salesplatform.store import RecordedEvent


class TerritoryDirectory(Projection):
    name = "territory_directory"
    inline = True
    event_types = frozenset(
        {
            "territory.division_defined",
            "territory.area_defined",
            "territory.district_defined",
            "staff.assigned",
            "staff.departed",
        }
    )
    schema_sql = """
        CREATE TABLE units (
            unit_id     text PRIMARY KEY,
            kind        text NOT NULL,          -- division | area | district
            name        text NOT NULL,
            area_id     text,
            division_id text
        );
        CREATE TABLE staff (
            staff_id      text PRIMARY KEY,
            name          text NOT NULL,
            role          text NOT NULL,
            district_id   text,
            area_id       text,
            supervisor_id text,
            active        boolean NOT NULL,
            since         timestamptz NOT NULL
        );
        CREATE INDEX staff_by_district ON staff (district_id);
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change]:
        d = event.data
        match event.event_type:
            case "territory.division_defined":
                await self._unit(conn, d["division_id"], "division", d["name"], None, d["division_id"])
                return [{"unit_id": d["division_id"]}]
            case "territory.area_defined":
                await self._unit(conn, d["area_id"], "area", d["name"], d["area_id"], d["division_id"])
                return [{"unit_id": d["area_id"]}]
            case "territory.district_defined":
                await self._unit(conn, d["district_id"], "district", d["name"], d["area_id"], d["division_id"])
                return [{"unit_id": d["district_id"]}]
            case "staff.assigned":
                await conn.execute(
                    """INSERT INTO staff (staff_id, name, role, district_id, area_id, supervisor_id, active, since)
                       VALUES ($1, $2, $3, $4, $5, $6, true, $7)
                       ON CONFLICT (staff_id) DO UPDATE SET name = $2, role = $3, district_id = $4,
                           area_id = $5, supervisor_id = $6, active = true, since = $7""",
                    d["staff_id"],
                    d["name"],
                    d["role"],
                    d.get("district_id"),
                    d.get("area_id"),
                    d.get("supervisor_id"),
                    event.envelope.occurred_at,
                )
            case "staff.departed":
                await conn.execute(
                    "UPDATE staff SET active = false, since = $2 WHERE staff_id = $1",
                    d["staff_id"],
                    event.envelope.occurred_at,
                )
        return [{"staff_id": d["staff_id"]}]

    @staticmethod
    async def _unit(
        conn: asyncpg.Connection, unit_id: str, kind: str, name: str, area_id: str | None, division_id: str
    ) -> None:
        await conn.execute(
            """INSERT INTO units (unit_id, kind, name, area_id, division_id) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (unit_id) DO UPDATE SET name = $3""",
            unit_id,
            kind,
            name,
            area_id,
            division_id,
        )
