"""Ids as `uuid` makes them, built straight from their integers, which costs less (every event
and every command gets one; measured alone, version 4: 3.9 -> 2.5 µs, version 5: 4.8 -> 2.5 µs):
random ids (version 4), and name-based ids (version 5: the same name always gives the same id,
so a retried command or a re-imported record finds what it made the first time)."""

from __future__ import annotations

import functools
import hashlib
import os
import uuid


@functools.lru_cache(maxsize=64)
def _namespace_hash(namespace: uuid.UUID) -> hashlib._Hash:
    return hashlib.sha1(namespace.bytes, usedforsecurity=False)


def uuid5(namespace: uuid.UUID, name: str) -> uuid.UUID:
    """`uuid.uuid5(namespace, name)`; the namespace is hashed once."""
    digest = _namespace_hash(namespace).copy()
    digest.update(name.encode())
    return _made(int.from_bytes(digest.digest()[:16], "big"), 5)


def uuid4() -> uuid.UUID:
    """`uuid.uuid4()`: 122 random bits from `os.urandom`."""
    return _made(int.from_bytes(os.urandom(16), "big"), 4)


def _made(value: int, version: int) -> uuid.UUID:
    # The version and the RFC 4122 variant, as uuid.UUID(bytes=..., version=...) sets them.
    value = (value & ~(0xF000 << 64) | (version << 76)) & ~(0xC000 << 48) | (0x8000 << 48)
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made
