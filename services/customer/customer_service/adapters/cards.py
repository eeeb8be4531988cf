"""How a card and its history are shown: personal parts opened with the customer's keys,
restricted notes only for managers and the clerk, erased data marked as erased."""

from __future__ import annotations

from typing import Any

import asyncpg

from customer_service.adapters.sealing import Keys, open_sealed
from customer_service.domain import card
from customer_service.domain.access import sees_restricted
from customer_service.domain.values import PERSON_ROLES
from salesplatform.events import Actor


def open_parts(tokens: list[str], keys: Keys, customer_id: str) -> tuple[dict[str, Any], bool]:
    """(the personal document folded from the parts that open, whether some did not)."""
    parts, unreadable = [], False
    for token in tokens:
        part = open_sealed(token, keys, customer_id)
        if part is None:
            unreadable = True
        else:
            parts.append(part)
    return card.fold(parts), unreadable


def present_card(row: asyncpg.Record, keys: Keys, actor: Actor) -> dict[str, Any]:
    cid = row["customer_id"]
    personal, unreadable = open_parts(list(row["personal"]), keys, cid)
    erased = row["personal_erased"] or unreadable
    restricted = sees_restricted(actor)
    if not restricted:
        personal = card.without_restricted(personal)
    groups = row["card"]
    base = dict(groups.get("base") or {})
    people = personal.get("base") or {}
    for role in PERSON_ROLES:
        base[role] = people.get(role)
    identity = {k: row[k] for k in card.IDENTITY_PATHS}
    if row["nature"] == "individual":
        for k in card.IDENTITY_PATHS:
            identity[k] = personal.get(k, row[k] if k == "name" else (card.ERASED if erased else row[k]))
    credit = None
    if row["credit_rating"] is not None:
        credit = {
            "credit_rating": row["credit_rating"],
            "credit_limit_fen": row["credit_limit_fen"],
            "payment_terms_days": row["payment_terms_days"],
        }
    return {
        "customer_id": cid,
        "customer_code": row["customer_code"],
        "status": row["status"],
        **identity,
        "classification": {
            "nature": row["nature"],
            "ownership": row["ownership"],
            "channel": row["channel"],
            "location_type": row["location_type"],
            "grade": row["grade"],
            "grade_basis": row["grade_basis"],
            "grade_figures": row["grade_figures"],
        },
        "territory": {"district_id": row["district_id"], "area_id": row["area_id"], "division_id": row["division_id"]},
        # The outlet's position; an individual's (their home) from the sealed part.
        "position": personal.get("position") if row["nature"] == "individual" else row["position"],
        "rep_id": row["rep_id"],
        "released_from": row["released_from"],
        "source": row["source"],
        "verified": row["verified"],
        "credit": credit,
        "merged_into": row["merged_into"],
        "base": base,
        "characteristics": groups.get("characteristics"),
        "business_status": groups.get("business_status"),
        "trading_status": groups.get("trading_status"),
        "contacts": personal.get("contacts", []),
        "personal_data": "erased" if erased and not personal else ("present" if personal else "none"),
        "restricted_fields": "shown" if restricted else "hidden",
        "rejection_reason": row["rejection_reason"],
        "last_contact_at": row["last_contact_at"],
        "registered_at": row["registered_at"],
        "registered_by": row["registered_by"],
        "approved_at": row["approved_at"],
        "approved_by": row["approved_by"],
        "updated_at": row["updated_at"],
        "version": row["version"],
    }


def present_event(row: asyncpg.Record, keys: Keys, customer_id: str, actor: Actor) -> dict[str, Any]:
    """One entry of a card's history: what, when, who, why."""
    data = dict(row["data"])
    token = data.pop("personal", None)
    entry: dict[str, Any] = {
        "version": row["stream_version"],
        "event_type": row["event_type"],
        "at": row["occurred_at"],
        "by": {"id": row["actor"]["id"], "role": row["actor"]["role"]},
        "reason": data.get("reason"),
        "data": data,
    }
    if token is not None:
        part = open_sealed(token, keys, customer_id)
        if part is None:
            entry["personal"] = "erased"
        else:
            entry["personal"] = part if sees_restricted(actor) else card.part_without_restricted(part)
    return entry
