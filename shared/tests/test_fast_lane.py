"""The fast lane (`make test-fast`, `pytest -m fast`): what it promises."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ["customer_service", "visit_service", "orders_service", "reporting_service", "console_service"]


def test_the_domain_packages_import_no_database_or_messaging_driver() -> None:
    """Every module of every service's `domain` package, imported in a fresh interpreter,
    leaves asyncpg and nats unimported."""
    script = textwrap.dedent(
        f"""
        import importlib, json, pkgutil, sys
        imported = []
        for service in {DOMAINS!r}:
            package = importlib.import_module(service + ".domain")
            imported.append(package.__name__)
            for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
                imported.append(importlib.import_module(module.name).__name__)
        drivers = sorted(m for m in sys.modules if m.split(".")[0] in ("asyncpg", "nats"))
        print(json.dumps({{"imported": imported, "drivers": drivers}}))
        """
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    found = json.loads(ran.stdout)
    assert {m.split(".")[0] for m in found["imported"]} == set(DOMAINS)
    assert "orders_service.domain.commands" in found["imported"]
    assert found["drivers"] == []


def test_a_fast_test_that_asks_for_the_servers_fails_before_they_start(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\naddopts = -p salesplatform.devstack.pytest_plugin\nmarkers =\n    fast: no servers\n"
    )
    (tmp_path / "test_asks.py").write_text(
        "import pytest\n\n@pytest.mark.fast\ndef test_asks(make_database):\n    pass\n"
    )
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "fast", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TEST_POSTGRES_ADMIN_DSN": "", "TEST_NATS_URL": ""},
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "is marked fast but asks for the servers" in ran.stdout
    assert "1 error" in ran.stdout and "passed" not in ran.stdout
