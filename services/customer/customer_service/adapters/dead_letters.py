"""What a dead-lettered command of the customer service keeps: its personal data sealed with
the key of the customer it names, so an erasure (which deletes the keys) makes the dead letter
unreadable too; where there is no such key (a new customer, an unknown one, one already erased)
the fields the command declares personal are left out, as every service does.

A sealed dead letter's body is `{"customer_id": …, "sealed": "v1.<key id>.<…>"}`: the whole
payload as sent, bound to its customer like the sealed parts of the card.
"""

from __future__ import annotations

from typing import Any

import orjson

from customer_service.adapters.sealing import current_key, keys_of, open_sealed
from salesplatform.commands import withholding_guard
from salesplatform.messaging import CommandGuard


def dead_letter_guard(runtime: Any) -> CommandGuard:
    withhold = withholding_guard(runtime.bus)

    async def guard(command: str, payload: bytes) -> tuple[bytes, dict[str, str]]:
        try:
            doc = orjson.loads(payload) if payload else None
        except orjson.JSONDecodeError:
            doc = None
        customer_id = doc.get("customer_id") if isinstance(doc, dict) else None
        if isinstance(customer_id, str) and customer_id:
            async with runtime.pool.acquire() as conn:
                key = await current_key(conn, customer_id)
            if key is not None:
                body = {"customer_id": customer_id, "sealed": key.seal(doc)}
                return orjson.dumps(body), {"Dlq-Sealed": f"customer-{customer_id}"}
        return await withhold(command, payload)

    return guard


async def open_dead_letter(runtime: Any, payload: bytes) -> Any:
    """A dead letter's payload for an operator: a sealed one opened with its customer's keys
    while they exist, else marked erased."""
    doc = orjson.loads(payload)
    if not (isinstance(doc, dict) and isinstance(doc.get("sealed"), str) and isinstance(doc.get("customer_id"), str)):
        return doc
    async with runtime.pool.acquire() as conn:
        keys = await keys_of(conn, [doc["customer_id"]])
    opened = open_sealed(doc["sealed"], keys, doc["customer_id"])
    return opened if opened is not None else {"customer_id": doc["customer_id"], "sealed": "[erased]"}
