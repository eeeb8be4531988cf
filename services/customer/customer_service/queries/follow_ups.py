"""Who is due for the 7-day rule: the prospects and the sales offices' leads the follow-up
projection shows neglected (read by the follow-up timer)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def prospects_due(conn: asyncpg.Connection, due_before: datetime) -> list[asyncpg.Record]:
    """Prospects whose rep has not followed them up since before `due_before`, oldest first."""
    return list(
        await conn.fetch(
            "SELECT customer_id, rep_id, since FROM follow_ups"
            " WHERE status = 'prospect' AND rep_id IS NOT NULL AND since < $1 ORDER BY since, customer_id",
            due_before,
        )
    )


async def leads_due(conn: asyncpg.Connection, lapse_before: datetime, release_before: datetime) -> list[asyncpg.Record]:
    """Leads without a deal: phone leads with `phone_since` < `lapse_before`, walk-ins with `since` < `release_before`."""
    return list(
        await conn.fetch(
            "SELECT lead_id, rep_id, stage, phone_since, since FROM lead_follow_ups"
            " WHERE open_deals <= 0 AND ((stage = 'phone' AND phone_since < $1) OR (stage = 'walk_in' AND since < $2))"
            " ORDER BY lead_id",
            lapse_before,
            release_before,
        )
    )
