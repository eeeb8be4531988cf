"""Sealing personal data with per-owner keys (crypto-shredding).

A sealed part is `v1.<key id>.<base64url(nonce + AES-GCM ciphertext)>`; the associated data
binds it to its owner (a customer card, or a lead of a sales office), so a sealed part copied
onto another owner does not open. Keys are rows of a key table in this service's database
(`customer_keys`, `lead_keys`: a `Keyring`), never in events or messages; deleting an owner's
keys (`shred`) makes every copy of its personal data unreadable for good.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from salesplatform.uow import Preloaded, UnitOfWork

_VERSION = "v1"
Keys = dict[str, bytes]  # key id → key


@dataclass(frozen=True)
class Keyring:
    """Where the keys of one kind of owner live, and the prefix that binds a part to its owner
    (the owner's stream id: `customer-<id>`, `lead-<id>`)."""

    table: str
    owner_column: str
    prefix: str

    def aad(self, owner_id: str) -> bytes:
        return f"{self.prefix}-{owner_id}".encode()


CUSTOMERS = Keyring("customer_keys", "customer_id", "customer")
LEADS = Keyring("lead_keys", "lead_id", "lead")


@dataclass(frozen=True)
class DataKey:
    key_id: str
    customer_id: str  # the owner: a customer id, or a lead id on the LEADS ring
    key: bytes
    new: bool  # made for this command; stored once the events are appended
    ring: Keyring = CUSTOMERS

    def seal(self, part: dict[str, Any]) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.key).encrypt(nonce, orjson.dumps(part), self.ring.aad(self.customer_id))
        return f"{_VERSION}.{self.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_sealed(token: str, keys: Keys, customer_id: str, ring: Keyring = CUSTOMERS) -> dict[str, Any] | None:
    """The part, or None when its key is gone (erased) or it does not belong to the owner."""
    try:
        version, key_id, body = token.split(".", 2)
    except ValueError:
        return None
    key = keys.get(key_id)
    if version != _VERSION or key is None:
        return None
    raw = base64.urlsafe_b64decode(body.encode())
    try:
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], ring.aad(customer_id))
    except InvalidTag:
        return None
    part: dict[str, Any] = orjson.loads(plain)
    return part


async def key_for_writing(uow: UnitOfWork, customer_id: str, ring: Keyring = CUSTOMERS) -> DataKey:
    """The owner's current key, or a new one (after an erasure, or for a new owner): as the
    batch read it ahead (`preload_keys`) unless the owner's stream was written since."""
    found: Any = Preloaded.MISSING
    if uow.preloaded is not None:
        found = uow.preloaded.value(f"data_key:{ring.prefix}", customer_id)
    if found is Preloaded.MISSING:
        found = (await _current_keys(uow.conn, [customer_id], ring)).get(customer_id)
    if found is not None:
        return cast("DataKey", found)
    return DataKey(str(uuid.uuid4()), customer_id, AESGCM.generate_key(bit_length=256), new=True, ring=ring)


async def preload_keys(uow: UnitOfWork, customer_ids: list[str], ring: Keyring = CUSTOMERS) -> None:
    """Read the current keys of a batch's owners at once, for `key_for_writing`. A key changes
    only with a write to its owner's stream, so it is kept under that stream."""
    assert uow.preloaded is not None
    current = await _current_keys(uow.conn, customer_ids, ring)
    for customer_id in customer_ids:
        uow.preloaded.keep(
            f"data_key:{ring.prefix}", customer_id, current.get(customer_id), claim=f"{ring.prefix}-{customer_id}"
        )


async def current_key(conn: asyncpg.Connection, owner_id: str, ring: Keyring = CUSTOMERS) -> DataKey | None:
    """The owner's current key, if it has one (none before its first write, or once erased)."""
    return (await _current_keys(conn, [owner_id], ring)).get(owner_id)


async def _current_keys(conn: asyncpg.Connection, owner_ids: list[str], ring: Keyring) -> dict[str, DataKey]:
    column = ring.owner_column
    rows = await conn.fetch(
        f"SELECT DISTINCT ON ({column}) {column} AS owner_id, key_id, key FROM public.{ring.table}"
        f" WHERE {column} = ANY($1::text[]) ORDER BY {column}, created_at DESC",
        owner_ids,
    )
    return {
        r["owner_id"]: DataKey(str(r["key_id"]), r["owner_id"], bytes(r["key"]), new=False, ring=ring) for r in rows
    }


async def keep(uow: UnitOfWork, key: DataKey) -> None:
    """Store a new key, with the command's events (after them: the first write of a command's
    transaction is the event append)."""
    if key.new:
        ring = key.ring
        await uow.write_with_events(
            lambda conn: conn.execute(
                f"INSERT INTO public.{ring.table} (key_id, {ring.owner_column}, key) VALUES ($1, $2, $3)",
                uuid.UUID(key.key_id),
                key.customer_id,
                key.key,
            )
        )


async def keys_of(conn: asyncpg.Connection, customer_ids: Iterable[str], ring: Keyring = CUSTOMERS) -> Keys:
    rows = await conn.fetch(
        f"SELECT key_id, key FROM public.{ring.table} WHERE {ring.owner_column} = ANY($1::text[])",
        list(customer_ids),
    )
    return {str(r["key_id"]): bytes(r["key"]) for r in rows}


async def shred(conn: asyncpg.Connection, customer_id: str, ring: Keyring = CUSTOMERS) -> int:
    """Delete every key of the owner: its sealed personal data is gone for good."""
    result = await conn.execute(f"DELETE FROM public.{ring.table} WHERE {ring.owner_column} = $1", customer_id)
    return int(result.split()[-1])
