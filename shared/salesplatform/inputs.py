"""What the edge accepts, the same in every service: text PostgreSQL can store, and the query
parameters all services share (pages, business dates, months) with their bounds.

PostgreSQL's text and jsonb cannot hold a NUL character, and no UTF-8 can hold a lone
surrogate (JSON's `"\\ud800"`). Such text is refused with 422 naming the field wherever it
would be stored in plain: in an event's data (`require_storable`, which the unit of work
applies to every event it appends) and in a query's parameters (`storable_parameters`, which
every service's HTTP app runs before its routes). What a service seals (the customer
service's personal data) is stored as ciphertext, so any text goes there and comes back as
it was sent.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import Query, Request
from pydantic import BeforeValidator, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from salesplatform.errors import InvalidInput

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# The business years the services take in dates and months: wide enough for any record a
# sales department keeps, narrow enough that the next month or day always exists.
FIRST_YEAR = 1900
LAST_YEAR = 2999
# How deep a page may start: further than this, a reader narrows the filters instead.
MAX_OFFSET = 1_000_000


def unstorable_at(value: Any, path: str = "") -> str | None:
    """The path (`a.b.0.c`) of the first text in `value` that cannot be stored, or None.

    Most data holds none: one orjson encoding (which refuses a lone surrogate and writes NUL
    as `\\u0000`) answers for all of it at once; only data it cannot clear is walked."""
    try:
        encoded = orjson.dumps(value)
    except TypeError:  # a lone surrogate, or a value JSON does not hold: walk it
        pass
    else:
        if b"\\u0000" not in encoded:
            return None
    return _first_unstorable(value, path)


def _first_unstorable(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _UNSTORABLE.search(key):
                return name
            found = _first_unstorable(item, name)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _first_unstorable(item, f"{path}.{i}" if path else str(i))
            if found is not None:
                return found
    return None


def unstorable(field: str) -> InvalidInput:
    return InvalidInput(
        [
            {
                "field": field,
                "code": "unstorable_text",
                "message": "text may not hold a NUL character or a lone surrogate",
            }
        ]
    )


def require_storable(data: Any) -> None:
    """Raise 422 naming the field if `data` holds text that cannot be stored."""
    found = unstorable_at(data)
    if found is not None:
        raise unstorable(found)


def storable_parameters(request: Request) -> None:
    """FastAPI dependency of every route: its path and query parameters hold storable text."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if isinstance(value, str) and _UNSTORABLE.search(value):
            raise unstorable(name)


# -- shared query parameters ----------------------------------------------------------------

_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_YEARS = f"{FIRST_YEAR}–{LAST_YEAR}"
MONTH_PATTERN = r"^(19[0-9]{2}|2[0-9]{3})-(0[1-9]|1[0-2])$"
assert FIRST_YEAR == 1900 and LAST_YEAR == 2999, "MONTH_PATTERN spells the years out"


def _business_day(value: Any) -> date:
    """A business date as `YYYY-MM-DD` only: pydantic alone would read `0` (or any number) as
    a Unix time and answer for 1970-01-01."""
    if isinstance(value, date) and not hasattr(value, "hour"):
        day = value
    elif isinstance(value, str) and _DAY.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("date_format", "no such date: {value}", {"value": value}) from None
    else:
        raise PydanticCustomError("date_format", "a date is written YYYY-MM-DD")
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise PydanticCustomError("date_range", "a date lies in the years {years}", {"years": _YEARS})
    return day


Day = Annotated[
    date,
    BeforeValidator(_business_day),
    WithJsonSchema({"type": "string", "format": "date", "description": f"YYYY-MM-DD, a year {_YEARS}"}),
]
"""A business date parameter: `YYYY-MM-DD`, years 1900–2999."""

Month = Annotated[str, StringConstraints(pattern=MONTH_PATTERN)]
"""A business month parameter: `YYYY-MM`, years 1900–2999."""

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"rows to skip (at most {MAX_OFFSET:,})")]
"""How many rows a page skips: 0 to MAX_OFFSET."""
