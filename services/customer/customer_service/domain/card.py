"""The customer card as named fields: which ones exist, which are personal data (sealed in
events, erasable), which are restricted (visible to managers and the archive clerk only).

A card field is addressed by a dotted path: `name`, `base.industry`, `base.owner`,
`base.owner.hobbies`, `characteristics.staff_count`, `contacts`, … Profile updates name the
paths they change; the read side folds the changes in order.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from customer_service.domain.values import (
    PERSON_ROLES,
    RESTRICTED_PERSON_FIELDS,
    BaseFacts,
    BusinessStatus,
    Characteristics,
    Contact,
    Name,
    Person,
    Phone,
    TradingStatus,
)
from salesplatform.errors import InvalidInput

GROUPS: dict[str, type[BaseModel]] = {
    "base": BaseFacts,
    "characteristics": Characteristics,
    "business_status": BusinessStatus,
    "trading_status": TradingStatus,
}

# Identity of the customer; personal data when the customer is an individual (顾客个人).
IDENTITY_PATHS = ("name", "address", "phone")

# What an individual customer's name, address and phone look like outside the sealed part
# (in events other services read, and in the card once erased).
WITHHELD = "[personal data]"
ERASED = "[erased]"


def individual_label(customer_id: str) -> str:
    return f"individual customer {customer_id[:8]}"


def _build_paths() -> dict[str, TypeAdapter[Any]]:
    paths: dict[str, TypeAdapter[Any]] = {
        "name": TypeAdapter(Name),
        "address": TypeAdapter(Annotated[str, Field(min_length=1, max_length=200)]),
        "phone": TypeAdapter(Phone),
        "contacts": TypeAdapter(Annotated[list[Contact], Field(max_length=20)]),
    }
    for group, model in GROUPS.items():
        for field, info in model.model_fields.items():
            paths[f"{group}.{field}"] = TypeAdapter(_annotated(info))
    for role in PERSON_ROLES:
        paths[f"base.{role}"] = TypeAdapter(Person | None)
        for field, info in Person.model_fields.items():
            paths[f"base.{role}.{field}"] = TypeAdapter(_annotated(info))
    return paths


def _annotated(info: Any) -> Any:
    """The field's type with its constraints, so a path validates like the model field."""
    if info.metadata:
        return Annotated[(info.annotation, *info.metadata)]
    return info.annotation


FIELD_TYPES: dict[str, TypeAdapter[Any]] = _build_paths()


def is_personal(path: str, individual: bool) -> bool:
    """Personal data: about a natural person, so it is sealed in events and erasable."""
    if path == "contacts" or any(path == f"base.{r}" or path.startswith(f"base.{r}.") for r in PERSON_ROLES):
        return True
    return individual and path in IDENTITY_PATHS


def is_restricted(path: str) -> bool:
    parts = path.split(".")
    return len(parts) == 3 and parts[0] == "base" and parts[1] in PERSON_ROLES and parts[2] in RESTRICTED_PERSON_FIELDS


def validate_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Each change checked like the card field it names; values in their JSON form.

    Raises InvalidInput listing every unknown path and bad value (nothing is changed)."""
    problems: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    for path, value in changes.items():
        adapter = FIELD_TYPES.get(path)
        if adapter is None:
            problems.append(
                {"field": f"changes.{path}", "code": "unknown_field", "message": f"the card has no field {path}"}
            )
            continue
        try:
            parsed = adapter.validate_python(value)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = ".".join(str(p) for p in err.get("loc", ()))
                problems.append(
                    {
                        "field": f"changes.{path}" + (f".{loc}" if loc else ""),
                        "code": err.get("type", "invalid"),
                        "message": err.get("msg", "invalid"),
                    }
                )
            continue
        out[path] = adapter.dump_python(parsed, mode="json", exclude_none=True)
    if problems:
        raise InvalidInput(problems)
    return out


def split_personal(changes: dict[str, Any], individual: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public changes, personal changes)."""
    public = {p: v for p, v in changes.items() if not is_personal(p, individual)}
    personal = {p: v for p, v in changes.items() if is_personal(p, individual)}
    return public, personal


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in a nested dict, creating the groups on the way."""
    *parents, leaf = path.split(".")
    node = doc
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def fold(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold path → value changes, oldest first, into one nested document."""
    doc: dict[str, Any] = {}
    for part in parts:
        for path, value in part.items():
            set_path(doc, path, copy.deepcopy(value))
    return doc


def without_restricted(personal: dict[str, Any]) -> dict[str, Any]:
    """The personal document without the restricted notes on people."""
    doc = copy.deepcopy(personal)
    base = doc.get("base")
    if isinstance(base, dict):
        for role in PERSON_ROLES:
            person = base.get(role)
            if isinstance(person, dict):
                for field in RESTRICTED_PERSON_FIELDS:
                    person.pop(field, None)
    return doc


def part_without_restricted(part: dict[str, Any]) -> dict[str, Any]:
    """A sealed part (path → value) without the restricted notes on people."""
    out: dict[str, Any] = {}
    for path, value in part.items():
        if is_restricted(path):
            continue
        if path.count(".") == 1 and path.split(".")[1] in PERSON_ROLES and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in RESTRICTED_PERSON_FIELDS}
        out[path] = value
    return out
