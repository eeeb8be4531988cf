"""The services' READMEs are their contract's documentation: every event type and command a
service has is in its README, and every numbered rule of a domain module is there by its number."""

from __future__ import annotations

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

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = [customer(), visit(), orders(), reporting()]


def readme(service: str) -> str:
    return (ROOT / "services" / service / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: d.name)
def test_every_event_type_and_command_is_in_the_services_readme(definition) -> None:
    text = readme(definition.name)
    bus = definition.build_bus(definition.registry, SystemClock())
    assert [t for t in definition.registry.json_schemas() if t != "envelope" and f"`{t}`" not in text] == []
    assert [name for name in bus.specs if f"`{name}`" not in text] == []


@pytest.mark.parametrize(
    ("service", "module"), [("customer", reception), ("orders", units), ("reporting", office)], ids=lambda x: str(x)
)
def test_every_numbered_rule_is_in_the_readme_by_its_number(service: str, module) -> None:
    numbers = re.findall(r"^- ([A-Z]\d+) ", module.__doc__ or "", flags=re.MULTILINE)
    assert len(numbers) >= 3, "the module's text numbers its rules"
    text = readme(service)
    assert [n for n in numbers if f"**{n}" not in text] == []
