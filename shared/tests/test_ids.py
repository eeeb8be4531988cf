"""Name-based ids are the standard's: an id made once is the id every later run makes."""

from __future__ import annotations

import random
import uuid

import pytest
from salesplatform.ids import uuid5


def test_uuid5_gives_the_ids_the_standard_library_gives() -> None:
    rng = random.Random(5)
    alphabet = "abcxyz0129:/-_ 中文é\u00a0"
    names = ["", "order:r1", "order:r1:order.placed", "中文", *(
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(2_000))]
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
