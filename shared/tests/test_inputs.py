"""Text PostgreSQL cannot store is found wherever it is in an event's data, with its path."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from salesplatform.errors import InvalidInput
from salesplatform.inputs import require_storable, unstorable_at


@dataclass
class Note:
    text: str


def test_storable_data_has_no_unstorable_path() -> None:
    data = {"order_id": "o-1", "lines": [{"sku": "A-1", "qty": 2}], "note": "back\\u0000slash as text"}
    assert unstorable_at(data) is None


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"lines": [{"sku": "ok"}, {"sku": "\ud800"}]}, "lines.1.sku"),
        ({"changes": {"bad\x00key": 1}}, "changes.bad\x00key"),
        (("fine", ["\udfff"]), "1.0"),
        # Values JSON does not hold are walked as before: what is inside them is not text.
        ({"amount": Decimal("1.5"), "name": "\x00"}, "name"),
    ],
)
def test_unstorable_text_is_found_with_its_path(data: object, path: str) -> None:
    assert unstorable_at(data) == path
    with pytest.raises(InvalidInput):
        require_storable(data)


def test_values_the_walk_does_not_enter_stay_storable() -> None:
    # Text inside an object that is neither a dict, a list nor a tuple is not the data's own.
    assert unstorable_at({"note": Note("a\x00b"), "tags": {"x"}}) is None
