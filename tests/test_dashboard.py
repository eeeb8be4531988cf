"""The Grafana dashboard in deploy/ is built on what the services export: every query names
only metrics a running service's `/metrics` has."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reporting_service.bootstrap import definition as reporting_definition

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "sales-platform.json"

# The sample names of each family type, from the family's name.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "gauge": ("",),
    "info": ("_info",),
    "unknown": ("",),
}
_CLAUSES = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_FUNCTIONS_AND_WORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan"}


def queries(node: object) -> list[str]:
    """Every PromQL expression in the dashboard: panel targets and template variables."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                found.append(value)
            else:
                found += queries(value)
    elif isinstance(node, list):
        for item in node:
            found += queries(item)
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, grouping clauses, ranges,
    strings, functions and numbers left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = _CLAUSES.sub("", expr)
    expr = re.sub(r"\blabel_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)", r"\1", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)\s*(\()?", expr):
        if match[2] is None and match[1].lower() not in _FUNCTIONS_AND_WORDS:
            names.add(match[1])
    return names


@pytest.mark.fast
def test_the_query_parser_finds_metric_names() -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (le, service) (rate(sales_x_bucket{service=~"$service"}[5m])))'
    ) == {"sales_x_bucket"}
    assert metric_names("process_cpu_seconds_total * on (instance) group_left (service) sales_build_info") == {
        "process_cpu_seconds_total",
        "sales_build_info",
    }
    assert metric_names("label_values(sales_build_info, service)") == {"sales_build_info"}


async def test_every_dashboard_query_names_an_exported_metric(start_service: Any) -> None:
    reporting = await start_service(reporting_definition())
    text = (await reporting.http.get("/metrics")).text
    exported = {
        family.name + suffix for family in text_string_to_metric_families(text) for suffix in _SUFFIXES[family.type]
    }
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    named = set().union(*(metric_names(q) for q in queries(dashboard)))
    assert len(named) >= 15  # the parser found the dashboard's metrics
    assert sorted(named - exported) == []
    # Each family operators rely on has a panel.
    for family in (
        "sales_command_duration_seconds_bucket",
        "sales_relay_publish_duration_seconds_bucket",
        "sales_consumer_batch_duration_seconds_bucket",
        "sales_projection_lag_seconds_bucket",
        "sales_outbox_pending",
        "sales_consumer_pending",
        "sales_projection_positions_behind",
        "sales_dead_letters_total",
        "process_resident_memory_bytes",
    ):
        assert family in named, family
