"""The services' READMEs are their contract's documentation: every event type and command a
service has is in its README, and every numbered rule of a domain module is there by its number."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from customer_service.bootstrap import definition as customer
from customer_service.domain import reception
from orders_service.bootstrap import definition as orders
from orders_service.domain import units
from reporting_service.bootstrap import definition as reporting
from reporting_service.domain import office
from salesplatform.clock import SystemClock
from visit_service.bootstrap import definition as visit

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = [customer(), visit(), orders(), reporting()]


def readme(service: str) -> str:
    return (ROOT / "services" / service / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.name)
def test_every_event_type_and_command_is_in_the_services_readme(definition) -> None:
    text = readme(definition.name)
    bus = definition.build_bus(definition.registry, SystemClock())
    assert [t for t in definition.registry.json_schemas() if t != "envelope" and f"`{t}`" not in text] == []
    assert [name for name in bus.published() if f"`{name}`" not in text] == []


@pytest.mark.parametrize(
    ("service", "module"), [("customer", reception), ("orders", units), ("reporting", office)], ids=lambda x: str(x)
)
def test_every_numbered_rule_is_in_the_readme_by_its_number(service: str, module) -> None:
    numbers = re.findall(r"^- ([A-Z]\d+) ", module.__doc__ or "", flags=re.MULTILINE)
    assert len(numbers) >= 3, "the module's text numbers its rules"
    text = readme(service)
    assert [n for n in numbers if f"**{n}" not in text] == []


# -- the command examples of the READMEs against the commands' schemas ----------------------


def _balanced(text: str, start: int) -> int:
    """The index just past the brace group opening at `start`."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    raise ValueError(f"unbalanced braces in {text!r}")


def _top_level(body: str) -> list[str]:
    """The comma-separated parts of a brace group's inside; nested groups and remarks in
    parentheses kept whole."""
    parts, depth, current = [], 0, ""
    for ch in body:
        depth += 1 if ch in "{[(" else -1 if ch in "}])" else 0
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    return [p for p in [*parts, current.strip()] if p]


def documented_commands(text: str) -> list[tuple[str, list[tuple[str, bool]]]]:
    """(command, [(field, optional)]) of every row of a README's command tables: a row starts with
    one or more `name`s, each followed by, or sharing, the {fields} that come after it."""
    out = []
    for line in text.splitlines():
        if not re.match(r"^\| `[a-z_]+`.*\{", line):
            continue
        cell = line.split(" | ")[0][2:]
        pending: list[str] = []
        i = 0
        while i < len(cell):
            name = re.match(r"`([a-z_]+)`", cell[i:])
            if name:
                pending.append(name.group(1))
                i += name.end()
            elif cell[i] == "{":
                end = _balanced(cell, i)
                fields = _fields(cell[i + 1 : end - 1])
                out += [(n, fields) for n in pending]
                pending, i = [], end
            else:
                i += 1
    return out


def _fields(body: str) -> list[tuple[str, bool]]:
    fields = []
    for part in _top_level(body):
        # `a \| b`: either field (spaces around the bar); `rep\|district` lists a field's values.
        choices = re.split(r"\s\\\|\s", part)
        for choice in choices:
            m = re.match(r"([a-z_]+)(\?)?", choice)
            assert m, f"no field name in {part!r}"
            fields.append((m.group(1), bool(m.group(2)) or len(choices) > 1))
    return fields


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.name)
def test_every_command_example_in_the_readme_is_accepted_by_its_schema(definition) -> None:
    bus = definition.build_bus(definition.registry, SystemClock())
    examples = documented_commands(readme(definition.name))
    assert len(examples) >= 5
    wrong = []
    for name, fields in examples:
        spec = bus.specs.get(name)
        if spec is None:
            wrong.append(f"{name}: no such command")
            continue
        schema = spec.command.model_json_schema()
        properties, required = set(schema.get("properties", {})), set(schema.get("required", []))
        named = {f for f, _ in fields}
        wrong += [f"{name}: {f} is not a field of the command" for f in sorted(named - properties)]
        wrong += [f"{name}: {f} is required but not documented" for f in sorted(required - named)]
        wrong += [f"{name}: {f} is required but documented as optional" for f, opt in fields if opt and f in required]
    assert wrong == []


def test_the_readmes_json_command_examples_are_accepted() -> None:
    """Every JSON payload sent to `<service>.cmd.<command>` in the READMEs validates as that
    command (extra fields are refused, as the services refuse them)."""
    buses = {d.name: d.build_bus(d.registry, SystemClock()) for d in DEFINITIONS}
    found = 0
    texts = [(ROOT / "README.md").read_text(encoding="utf-8")] + [readme(d.name) for d in DEFINITIONS]
    for text in texts:
        for service, command, payload in re.findall(
            r'"([a-z]+)\.(?:cmd|ingest)\.([a-z_]+)",\s*json\.dumps\((\{.*?\})\)', text, flags=re.DOTALL
        ):
            found += 1
            buses[service].specs[command].command.model_validate(json.loads(payload.replace("…", "c1")))
    # The README's first program sends its customer commands through `send(nc, token, command,
    # payload, key)`, a payload written inline or named just before.
    program = (ROOT / "README.md").read_text(encoding="utf-8")
    named = {
        name: ast.literal_eval(value)
        for name, value in re.findall(r"\n    (\w+) = (\{.*?\})\n", program, flags=re.DOTALL)
    }
    for command, payload in re.findall(r'await send\(nc, \w+, "([a-z_]+)", (\{.*?\}|\w+), "', program):
        found += 1
        data = named[payload] if payload in named else ast.literal_eval(payload)
        buses["customer"].specs[command].command.model_validate(data)
    assert found >= 6
