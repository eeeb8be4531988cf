"""Ids are the standard's: a name-based id made once is the id every later run makes, and random
ids are version 4 UUIDs."""

from __future__ import annotations

import random
import uuid

import pytest

from salesplatform.ids import uuid4, uuid5

pytestmark = pytest.mark.fast


def test_uuid5_gives_the_ids_the_standard_library_gives() -> None:
    rng = random.Random(5)
    alphabet = "abcxyz0129:/-_ 中文é\u00a0"
    names = [
        "",
        "order:r1",
        "order:r1:order.placed",
        "中文",
        *("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(2_000)),
    ]
    for namespace in (uuid.NAMESPACE_URL, uuid.NAMESPACE_DNS, uuid.UUID("9c3d2a4e-6f1b-4e8a-b7c5-3a2f1e0d9c87")):
        for name in names:
            made, standard = uuid5(namespace, name), uuid.uuid5(namespace, name)
            assert (made, str(made), hash(made)) == (standard, str(standard), hash(standard))
            assert made.version == 5 and made.variant == uuid.RFC_4122


def test_uuid5_ids_are_immutable_uuids() -> None:
    made = uuid5(uuid.NAMESPACE_URL, "x")
    assert isinstance(made, uuid.UUID) and made.is_safe is uuid.SafeUUID.unknown
    with pytest.raises(TypeError):
        made.int = 0  # type: ignore[misc]


def test_uuid4_gives_distinct_version_4_uuids() -> None:
    made = [uuid4() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    for u in made[:100]:
        assert u.version == 4 and u.variant == uuid.RFC_4122
        assert uuid.UUID(str(u)) == u and uuid.UUID(bytes=u.bytes) == u
    # Every one of the 122 random bits varies.
    fixed = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
    ones = zeros = 0
    for u in made:
        ones |= u.int & fixed
        zeros |= ~u.int & fixed
    assert ones == zeros == fixed
