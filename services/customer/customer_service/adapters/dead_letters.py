"""What a dead-lettered command of the customer service keeps: its personal data sealed with
the key of the customer (or the sales office's lead) it names, so an erasure (which deletes the
keys) makes the dead letter unreadable too; where there is no such key (a new customer or lead,
an unknown one, one already erased) the fields the command declares personal are left out, as
every service does.

A sealed dead letter's body is `{"customer_id": …, "sealed": "v1.<key id>.<…>"}` (or
`lead_id`): the whole payload as sent, bound to its owner like the sealed parts of the card.
"""

from __future__ import annotations

from typing import Any

import orjson

from customer_service.adapters.sealing import CUSTOMERS, LEADS, Keyring, current_key, keys_of, open_sealed
from salesplatform.commands import withholding_guard
from salesplatform.messaging import CommandGuard

# The owners whose keys can seal a command's payload, the first the payload names.
_RINGS: tuple[Keyring, ...] = (CUSTOMERS, LEADS)


def dead_letter_guard(runtime: Any) -> CommandGuard:
    withhold = withholding_guard(runtime.bus)

    async def guard(command: str, payload: bytes) -> tuple[bytes, dict[str, str]]:
        try:
            doc = orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError:
            doc = None
        for ring in _RINGS:
            if not isinstance(doc, dict):
                break
            owner = doc.get(ring.owner_column)
            if not (isinstance(owner, str) and owner):
                continue
            async with runtime.pool.acquire() as conn:
                key = await current_key(conn, owner, ring)
            if key is not None:
                body = {ring.owner_column: owner, "sealed": key.seal(doc)}
                return orjson.dumps(body), {"Dlq-Sealed": f"{ring.prefix}-{owner}"}
        return await withhold(command, payload)

    return guard


async def open_dead_letter(runtime: Any, payload: bytes) -> Any:
    """A dead letter's payload for an operator: a sealed one opened with its owner's keys while
    they exist, else marked erased."""
    doc = orjson.loads(payload)
    if not (isinstance(doc, dict) and isinstance(doc.get("sealed"), str)):
        return doc
    for ring in _RINGS:
        owner = doc.get(ring.owner_column)
        if isinstance(owner, str):
            async with runtime.pool.acquire() as conn:
                keys = await keys_of(conn, [owner], ring)
            opened = open_sealed(doc["sealed"], keys, owner, ring)
            return opened if opened is not None else {ring.owner_column: owner, "sealed": "[erased]"}
    return doc
