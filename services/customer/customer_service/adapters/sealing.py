"""Sealing personal data with per-customer keys (crypto-shredding).

A sealed part is `v1.<key id>.<base64url(nonce + AES-GCM ciphertext)>`; the associated data
binds it to its customer, so a sealed part copied onto another card does not open. Keys are
rows of `customer_keys` in this service's database, never in events or messages; deleting a
customer's keys (`shred`) makes every copy of its personal data unreadable for good.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from customer_service.domain.customer import Customer
from salesplatform.uow import Preloaded, UnitOfWork

_VERSION = "v1"
Keys = dict[str, bytes]  # key id → key


def _aad(customer_id: str) -> bytes:
    return f"customer-{customer_id}".encode()


@dataclass(frozen=True)
class DataKey:
    key_id: str
    customer_id: str
    key: bytes
    new: bool  # made for this command; stored once the events are appended

    def seal(self, part: dict[str, Any]) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.key).encrypt(nonce, orjson.dumps(part), _aad(self.customer_id))
        return f"{_VERSION}.{self.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_sealed(token: str, keys: Keys, customer_id: str) -> dict[str, Any] | None:
    """The part, or None when its key is gone (erased) or it does not belong to the customer."""
    try:
        version, key_id, body = token.split(".", 2)
    except ValueError:
        return None
    key = keys.get(key_id)
    if version != _VERSION or key is None:
        return None
    raw = base64.urlsafe_b64decode(body.encode())
    try:
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], _aad(customer_id))
    except InvalidTag:
        return None
    part: dict[str, Any] = orjson.loads(plain)
    return part


async def key_for_writing(uow: UnitOfWork, customer_id: str) -> DataKey:
    """The customer's current key, or a new one (after an erasure, or for a new card): as the
    batch read it ahead (`preload_keys`) unless the customer's stream was written since."""
    found: Any = Preloaded.MISSING
    if uow.preloaded is not None:
        found = uow.preloaded.value("data_key", customer_id)
    if found is Preloaded.MISSING:
        found = (await _current_keys(uow.conn, [customer_id])).get(customer_id)
    if found is not None:
        return found
    return DataKey(str(uuid.uuid4()), customer_id, AESGCM.generate_key(bit_length=256), new=True)


async def preload_keys(uow: UnitOfWork, customer_ids: list[str]) -> None:
    """Read the current keys of a batch's customers at once, for `key_for_writing`. A key
    changes only with a write to its customer's stream, so it is kept under that stream."""
    assert uow.preloaded is not None
    current = await _current_keys(uow.conn, customer_ids)
    for customer_id in customer_ids:
        uow.preloaded.keep("data_key", customer_id, current.get(customer_id), claim=Customer.stream_id_for(customer_id))


async def _current_keys(conn: asyncpg.Connection, customer_ids: list[str]) -> dict[str, DataKey]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (customer_id) customer_id, key_id, key FROM public.customer_keys"
        " WHERE customer_id = ANY($1::text[]) ORDER BY customer_id, created_at DESC",
        customer_ids,
    )
    return {r["customer_id"]: DataKey(str(r["key_id"]), r["customer_id"], bytes(r["key"]), new=False) for r in rows}


async def keep(uow: UnitOfWork, key: DataKey) -> None:
    """Store a new key, with the command's events (after them: the first write of a command's
    transaction is the event append)."""
    if key.new:
        await uow.write_with_events(
            lambda conn: conn.execute(
                "INSERT INTO public.customer_keys (key_id, customer_id, key) VALUES ($1, $2, $3)",
                uuid.UUID(key.key_id),
                key.customer_id,
                key.key,
            )
        )


async def keys_of(conn: asyncpg.Connection, customer_ids: Iterable[str]) -> Keys:
    rows = await conn.fetch(
        "SELECT key_id, key FROM public.customer_keys WHERE customer_id = ANY($1::text[])", list(customer_ids)
    )
    return {str(r["key_id"]): bytes(r["key"]) for r in rows}


async def shred(conn: asyncpg.Connection, customer_id: str) -> int:
    """Delete every key of the customer: its sealed personal data is gone for good."""
    result = await conn.execute("DELETE FROM public.customer_keys WHERE customer_id = $1", customer_id)
    return int(result.split()[-1])
