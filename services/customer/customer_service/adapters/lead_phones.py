"""Who a phone number belongs to in a sales office (业务判定: a customer is known by the phone
number left at reception), without keeping the number: each number is kept as its HMAC-SHA256
under the service's personal search key (the blind index of `personal_search.py`), in
`lead_phones`, written in the transaction of the events that give a lead the number.

Commands that look a number up claim it first (`claim`), so two receptions of one new number
decide one after the other and the second finds the first's lead. An erasure deletes the lead's
rows with its keys.
"""

from __future__ import annotations

from typing import cast

import asyncpg

from customer_service.adapters import personal_search
from salesplatform.errors import DomainError
from salesplatform.uow import UnitOfWork


async def term_of(conn: asyncpg.Connection, phone: str) -> bytes:
    """The blinded term of a phone number (digits only, +86 dropped)."""
    term = personal_search.phone_term(phone)
    if term is None:
        raise DomainError("not a phone number", code="invalid_phone", field="phone")
    key = await personal_search.search_key(conn, make=False)
    if key is None:  # made by the migration; missing only if someone deleted it
        raise RuntimeError("the personal search key is missing")
    return personal_search.blind(key, [term])[0]


def claim_key(project_id: str, term: bytes) -> str:
    return f"lead-phone:{project_id}:{term.hex()}"


async def claim(uow: UnitOfWork, project_id: str, phone: str) -> bytes:
    """Claim a number of an office for this command (see the module's text); its term."""
    term = await term_of(uow.conn, phone)
    await uow.claim(claim_key(project_id, term))
    return term


async def lead_of(conn: asyncpg.Connection, project_id: str, term: bytes) -> str | None:
    return cast(
        "str | None",
        await conn.fetchval(
            "SELECT lead_id FROM public.lead_phones WHERE project_id = $1 AND phone_term = $2", project_id, term
        ),
    )


async def keep(uow: UnitOfWork, project_id: str, term: bytes, lead_id: str) -> None:
    """The number is the lead's from now on, with the command's events."""
    await uow.write_with_events(
        lambda conn: conn.execute(
            "INSERT INTO public.lead_phones (project_id, phone_term, lead_id) VALUES ($1, $2, $3)"
            " ON CONFLICT (project_id, phone_term) DO NOTHING",
            project_id,
            term,
            lead_id,
        )
    )


async def drop(uow: UnitOfWork, project_id: str, term: bytes, lead_id: str) -> None:
    """The number is no longer the lead's (a register line corrected), with the events."""
    await uow.write_with_events(
        lambda conn: conn.execute(
            "DELETE FROM public.lead_phones WHERE project_id = $1 AND phone_term = $2 AND lead_id = $3",
            project_id,
            term,
            lead_id,
        )
    )


async def forget(conn: asyncpg.Connection, lead_id: str) -> int:
    result = await conn.execute("DELETE FROM public.lead_phones WHERE lead_id = $1", lead_id)
    return int(result.split()[-1])
