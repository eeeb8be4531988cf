"""The blind index of personal names and phones (see `adapters/personal_search.py`).

Catch-up, because it opens the sealed parts with the customer's keys, which commit with the
command's events. For each registration or profile change that touches names or phones, the
card's terms are worked out again from its sealed parts in the log up to that event; an
erasure removes them. Rebuilt from the log, an erased card has no terms: its keys are gone.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from customer_service.adapters import personal_search
from customer_service.adapters.cards import open_parts
from customer_service.adapters.sealing import keys_of
from salesplatform.projections import Change, Projection
from salesplatform.store import RecordedEvent


class PersonalSearch(Projection):
    name = "personal_search"
    event_types = frozenset({"customer.registered", "customer.profile_updated", "customer.personal_data_erased"})
    schema_sql = """
        CREATE TABLE personal_terms (
            term        bytea NOT NULL,   -- HMAC-SHA256 of a normalised name or phone
            customer_id text NOT NULL,
            PRIMARY KEY (term, customer_id)
        );
        CREATE INDEX personal_terms_by_customer ON personal_terms (customer_id);
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change]:
        d = event.data
        cid = d["customer_id"]
        if event.event_type == "customer.personal_data_erased":
            await conn.execute("DELETE FROM personal_terms WHERE customer_id = $1", cid)
            return [{"customer_id": cid}]
        if not d.get("personal") or not personal_search.touches_search(d.get("personal_fields", ())):
            return []
        rows = await conn.fetch(
            "SELECT data->>'personal' AS personal, data->>'nature' AS nature FROM public.events"
            " WHERE stream_id = $1 AND stream_version <= $2"
            " AND event_type IN ('customer.registered', 'customer.profile_updated') ORDER BY stream_version",
            event.envelope.stream_id,
            event.envelope.stream_version,
        )
        tokens = [r["personal"] for r in rows if r["personal"]]
        individual = any(r["nature"] == "individual" for r in rows)
        personal, _ = open_parts(tokens, await keys_of(conn, [cid]), cid)
        key = await personal_search.search_key(conn, make=True)
        assert key is not None
        terms = personal_search.blind(key, personal_search.terms_of(personal, individual))
        await conn.execute("DELETE FROM personal_terms WHERE customer_id = $1", cid)
        await conn.executemany(
            "INSERT INTO personal_terms (term, customer_id) VALUES ($1, $2)", [(t, cid) for t in terms]
        )
        return [{"customer_id": cid}]
