"""The models examples/ uses are generated from what the services publish, and are current: made
again from the same schemas (what /schemas/events, /schemas/commands and /asyncapi.json serve),
they are the committed files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from orders_service.bootstrap import definition as orders
from reporting_service.bootstrap import definition as reporting
from salesplatform.clock import SystemClock
from salesplatform.contract import asyncapi
from salesplatform.messaging import Topology

MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"


def _generator():
    spec = importlib.util.spec_from_file_location("example_models_generate", MODELS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_models_are_generated_from_the_published_schemas(tmp_path) -> None:
    generate = _generator()
    o, r = orders(), reporting()
    document = asyncapi(
        Topology("reporting"),
        r.registry,
        r.build_bus(r.registry, SystemClock()),
        title=r.name,
        extra_publishers=r.extra_publishers,
    )
    sources = generate.bundles(
        o.registry.json_schemas(), o.build_bus(o.registry, SystemClock()).json_schemas(), document
    )
    written = generate.generate(sources, tmp_path)
    assert sorted(p.name for p in written) == ["messages.py", "orders_commands.py", "orders_events.py"]
    stale = [p.name for p in written if p.read_text(encoding="utf-8") != (MODELS / p.name).read_text(encoding="utf-8")]
    assert stale == [], "run examples/models/generate.py (examples/README.md)"
