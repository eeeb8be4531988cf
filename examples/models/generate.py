"""Regenerate the pydantic models of examples/ from the schemas the running services publish.

    python examples/models/generate.py --orders http://127.0.0.1:8003 --reporting http://127.0.0.1:8004

(the addresses are in `.run/stack.json` of `make run`). It reads:

- `GET /schemas/events` of orders: the JSON Schema of every event type it publishes
  → `orders_events.py`;
- `GET /schemas/commands` of orders: every command's payload → `orders_commands.py`;
- `GET /asyncapi.json` of reporting: the shapes of command results and refusals and of the
  change notices (`components.schemas`) → `messages.py`;

and writes each as one JSON Schema bundle (every schema under `$defs`) that
datamodel-code-generator turns into pydantic v2 models. Nothing here imports the platform: an
integrator's build runs the same command against the services it integrates with.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
# Of the AsyncAPI document's schemas, the ones an outside program reads.
MESSAGE_SCHEMAS = ("CommandResult", "CommandRefusal", "CommandError", "ChangeNotice")
SOURCES = {
    "orders_events.py": "GET /schemas/events of orders",
    "orders_commands.py": "GET /schemas/commands of orders",
    "messages.py": "GET /asyncapi.json of reporting, components.schemas",
}


def class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace(".", "_").split("_"))


def bundle(title: str, schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One JSON Schema holding every schema of `schemas` (name → schema) under `$defs`, named
    as classes; the schemas' own `$defs` are lifted beside them (their refs stay valid)."""
    defs: dict[str, Any] = {}
    for name, schema in sorted(schemas.items()):
        schema = dict(schema)
        defs.update(schema.pop("$defs", {}))
        schema["title"] = class_name(name)
        defs[class_name(name)] = schema
    return {"title": title, "type": "object", "$defs": defs}


def bundles(events: dict[str, Any], commands: dict[str, Any], asyncapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Output file name → the bundle it is generated from."""
    components = asyncapi["components"]["schemas"]
    return {
        "orders_events.py": bundle("OrdersEvents", {k: v for k, v in events.items() if k != "envelope"}),
        "orders_commands.py": bundle("OrdersCommands", commands),
        "messages.py": bundle("Messages", {name: components[name] for name in MESSAGE_SCHEMAS}),
    }


def generate(sources: dict[str, dict[str, Any]], out: Path = HERE) -> list[Path]:
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        for filename, schema in sources.items():
            # The components' refs point into the AsyncAPI document: here they are beside them.
            text = json.dumps(schema, indent=1, sort_keys=True).replace("#/components/schemas/", "#/$defs/")
            source = Path(scratch) / filename.replace(".py", ".json")
            source.write_text(text, encoding="utf-8")
            target = out / filename
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "datamodel_code_generator",
                    "--input",
                    str(source),
                    "--input-file-type",
                    "jsonschema",
                    "--output-model-type",
                    "pydantic_v2.BaseModel",
                    "--output",
                    str(target),
                    "--disable-timestamp",
                    "--use-double-quotes",
                    "--formatters",
                    "black",
                    "isort",
                    "--target-python-version",
                    "3.11",
                ],
                check=True,
                capture_output=True,
            )
            # Name the source as the services serve it, not the scratch file.
            text = target.read_text(encoding="utf-8").replace(
                f"#   filename:  {source.name}", f"#   from:  {SOURCES[filename]} (examples/models/generate.py)"
            )
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written


def fetch(orders: str, reporting: str) -> dict[str, dict[str, Any]]:
    with httpx.Client(timeout=30) as http:
        events = http.get(f"{orders}/schemas/events").raise_for_status().json()
        commands = http.get(f"{orders}/schemas/commands").raise_for_status().json()
        asyncapi = http.get(f"{reporting}/asyncapi.json").raise_for_status().json()
    return bundles(events, commands, asyncapi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", required=True, help="the orders service's HTTP address")
    parser.add_argument("--reporting", required=True, help="the reporting service's HTTP address")
    args = parser.parse_args()
    for path in generate(fetch(args.orders.rstrip("/"), args.reporting.rstrip("/"))):
        print(path)


if __name__ == "__main__":
    main()
