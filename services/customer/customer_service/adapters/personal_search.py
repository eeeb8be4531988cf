"""Finding customers by the personal data sealed on their cards: an individual's name and
phone, and the names and phones of owners, managers, legal persons and contacts.

The read side never holds that data in plain text, so it is indexed blind: each term (a
normalised name or phone) is kept as its HMAC-SHA256 under the service's search key, and a
search compares the HMAC of what was typed. Exact terms only: a whole name, a whole number.
An erasure removes the customer's terms (see `projections/personal_search.py`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from typing import Any

import asyncpg

from customer_service.domain.values import PERSON_ROLES

_NOT_DIGITS = re.compile(r"\D")
_SPACE = re.compile(r"\s+")
# Fewer digits than this are a fragment, not a number anyone is looked up by.
_MIN_PHONE_DIGITS = 7


def touches_search(personal_fields: Iterable[str]) -> bool:
    """Whether a sealed part with these paths may change what a card is found by."""
    return any(path in ("name", "phone", "contacts") or path.startswith("base.") for path in personal_fields)


def phone_term(value: str) -> str | None:
    digits = _NOT_DIGITS.sub("", value)
    if digits.startswith("86") and len(digits) == 13:  # +86 before a mobile number
        digits = digits[2:]
    return f"phone:{digits}" if len(digits) >= _MIN_PHONE_DIGITS else None


def name_term(value: str) -> str | None:
    name = _SPACE.sub("", value).casefold()
    return f"name:{name}" if name else None


def terms_of(personal: dict[str, Any], individual: bool) -> set[str]:
    """The terms a card's personal document (folded, see `card.fold`) is found by."""
    people: list[dict[str, Any]] = []
    if individual:
        people.append({"name": personal.get("name"), "phone": personal.get("phone")})
    base = personal.get("base")
    if isinstance(base, dict):
        people.extend(p for role in PERSON_ROLES if isinstance(p := base.get(role), dict))
    contacts = personal.get("contacts")
    if isinstance(contacts, list):
        people.extend(c for c in contacts if isinstance(c, dict))
    terms: set[str] = set()
    for person in people:
        name, phone = person.get("name"), person.get("phone")
        if isinstance(name, str) and (term := name_term(name)):
            terms.add(term)
        if isinstance(phone, str) and (term := phone_term(phone)):
            terms.add(term)
    return terms


def query_terms(q: str) -> list[str]:
    """What a search text may be: a whole name, or a whole phone number."""
    out = [t for t in (name_term(q),) if t]
    if re.fullmatch(r"[\d\s()+-]+", q) and (term := phone_term(q)):
        out.append(term)
    return out


def blind(key: bytes, terms: Iterable[str]) -> list[bytes]:
    return [hmac.new(key, term.encode(), hashlib.sha256).digest() for term in sorted(terms)]


async def search_key(conn: asyncpg.Connection, *, make: bool) -> bytes | None:
    """The service's search key; made on first use when `make` (indexing), else None until then."""
    key = await conn.fetchval("SELECT key FROM public.personal_search_key WHERE id = 1")
    if key is None and make:
        await conn.execute(
            "INSERT INTO public.personal_search_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            os.urandom(32),
        )
        key = await conn.fetchval("SELECT key FROM public.personal_search_key WHERE id = 1")
    return bytes(key) if key is not None else None
