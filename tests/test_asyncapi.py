"""Every service's AsyncAPI document is a valid AsyncAPI 3.0.0 document (the official JSON Schema,
kept in tests/asyncapi/), and it describes what the messages really carry: a result channel per
command, the rejections' channel, the headers and where the correlation id is, the token's
claims."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from customer_service.bootstrap import definition as customer
from orders_service.bootstrap import definition as orders
from reporting_service.bootstrap import definition as reporting
from salesplatform.clock import SystemClock
from salesplatform.contract import asyncapi
from salesplatform.messaging import Topology
from salesplatform.service import ServiceDefinition
from visit_service.bootstrap import definition as visit

SCHEMA = json.loads((Path(__file__).parent / "asyncapi" / "asyncapi-3.0.0.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
DEFINITIONS = [customer(), visit(), orders(), reporting()]
Described = tuple[ServiceDefinition, dict[str, Any]]


def document(definition: ServiceDefinition) -> dict[str, Any]:
    """What GET /asyncapi.json answers (service.py makes the same call)."""
    bus = definition.build_bus(definition.registry, SystemClock())
    return asyncapi(
        Topology(definition.name),
        definition.registry,
        bus,
        title=definition.name,
        description=definition.description,
        extra_publishers=definition.extra_publishers,
    )


@pytest.fixture(scope="module", params=DEFINITIONS, ids=lambda d: d.name)
def described(request: pytest.FixtureRequest) -> Described:
    return request.param, document(request.param)


def test_the_document_is_valid_asyncapi_3(described: Described) -> None:
    _, doc = described
    assert [f"{list(e.absolute_path)}: {e.message[:200]}" for e in VALIDATOR.iter_errors(doc)] == []


def test_the_validator_refuses_a_broken_document(described: Described) -> None:
    _, doc = described
    broken = copy.deepcopy(doc)
    next(iter(broken["operations"].values()))["action"] = "publish"  # AsyncAPI 2's word
    del broken["info"]["version"]
    assert len(list(VALIDATOR.iter_errors(broken))) >= 2


def test_results_and_rejections_have_channels_headers_and_schemas(described: Described) -> None:
    definition, doc = described
    bus = definition.build_bus(definition.registry, SystemClock())
    addresses = {c["address"] for c in doc["channels"].values()}
    service = definition.name
    for name in bus.published():
        assert {f"{service}.cmd.{name}", f"{service}.ingest.{name}", f"{service}.result.{name}"} <= addresses
    assert f"{service}.dlq.rejected" in addresses
    messages = doc["components"]["messages"]
    result = messages[f"result.{next(iter(bus.published()))}:Message"]
    assert result["payload"] == {"$ref": "#/components/schemas/CommandResult"}
    assert result["correlationId"] == {"location": "$message.header#/Idempotency-Key"}
    assert "Idempotency-Key" in result["headers"]["required"]
    rejected = messages["dlq.rejected:Message"]
    assert {"Dlq-Reason", "Dlq-Error", "Idempotency-Key", "Dlq-Withheld"} <= set(rejected["headers"]["properties"])
    schemas = doc["components"]["schemas"]
    assert schemas["CommandRefusal"]["properties"]["error"] == {"$ref": "#/components/schemas/CommandError"}
    assert set(schemas["CommandResult"]["required"]) == {"ok", "result"}


def test_correlation_ids_are_where_the_messages_carry_them(described: Described) -> None:
    _, doc = described
    for key, message in doc["components"]["messages"].items():
        where = message.get("correlationId", {}).get("location")
        if where is None:
            assert key.startswith("changed."), key
        elif where.startswith("$message.header#/"):
            assert where.removeprefix("$message.header#/") in message["headers"]["properties"], key
        else:
            assert where == "$message.payload#/correlation_id", key
    headers = [set(m.get("headers", {}).get("properties", {})) for m in doc["components"]["messages"].values()]
    assert not any("correlation_id" in h for h in headers)


def test_the_tokens_claims_are_documented(described: Described) -> None:
    _, doc = described
    token = doc["components"]["securitySchemes"]["token"]
    assert (token["type"], token["scheme"], token["bearerFormat"]) == ("http", "bearer", "JWT")
    for claim in ("sub =", "role =", "district =", "area =", "iss =", "exp", "kid", "EdDSA"):
        assert claim in token["description"], claim
    commands = [o for k, o in doc["operations"].items() if k.startswith(("cmd.", "ingest."))]
    assert commands and all(o["security"] == [{"$ref": "#/components/securitySchemes/token"}] for o in commands)


def test_commands_only_the_service_sends_are_no_part_of_the_contract(described: Described) -> None:
    """A reactor's or timer's own command (role `service`, which no token carries) has no
    channel, no schema and no route: an outside system is never shown what it cannot send."""
    definition, doc = described
    bus = definition.build_bus(definition.registry, SystemClock())
    internal = {name for name, spec in bus.specs.items() if spec.internal}
    addresses = {c["address"] for c in doc["channels"].values()}
    for name in internal:
        assert not any(address.endswith(f".{name}") for address in addresses), name
        assert name not in bus.json_schemas()
    assert set(bus.published()) == set(bus.specs) - internal
