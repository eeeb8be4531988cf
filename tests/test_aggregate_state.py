"""Aggregates change state only by applying events: the aggregate cache hands out copies that
share the kept state until an event is applied (`salesplatform.aggregate.AggregateCache`), so a
decision method that changed an attribute directly would change the kept aggregate too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parents[1]
MUTATORS = {
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "update",
    "add",
    "discard",
    "setdefault",
    "sort",
    "reverse",
    "popitem",
    "__setitem__",
    "__delitem__",
}


def _writes_to_self(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    found = []
    for node in ast.walk(fn):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
            targets = [node.func.value]
        for target in targets:
            if ast.unparse(target).startswith("self."):
                found.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return found


def _aggregates() -> list[tuple[Path, ast.ClassDef]]:
    out = []
    for path in sorted(ROOT.glob("services/*/*_service/domain/*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and any(ast.unparse(b) == "Aggregate" for b in node.bases):
                out.append((path, node))
    return out


def test_every_aggregate_changes_state_only_in_apply() -> None:
    aggregates = _aggregates()
    assert len(aggregates) >= 10, "the scan found the services' aggregates"
    offences = [
        f"{path.relative_to(ROOT)}: {cls.name}.{fn.name} {write}"
        for path, cls in aggregates
        for fn in cls.body
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name not in ("apply", "__init__")
        for write in _writes_to_self(fn)
    ]
    assert offences == []


def test_the_scan_sees_a_decision_that_changes_state_directly() -> None:
    source = ast.parse(
        "class Order(Aggregate):\n"
        "    def approve(self):\n"
        "        self.status = 'approved'\n"
        "        self.reasons.append('x')\n"
    )
    cls = source.body[0]
    assert isinstance(cls, ast.ClassDef)
    fn = cls.body[0]
    assert isinstance(fn, ast.FunctionDef)
    assert len(_writes_to_self(fn)) == 2
