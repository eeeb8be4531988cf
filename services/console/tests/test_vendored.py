"""The charting library is served by the console itself, the version and checksum its notes
say, with its licence beside it; no page loads anything from another host."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

PACKAGE = Path(__file__).resolve().parents[1] / "console_service"
VENDOR = PACKAGE / "static" / "vendor"


def test_echarts_is_the_noted_file_with_its_licence() -> None:
    notes = (VENDOR / "README.md").read_text()
    row = next(line for line in notes.splitlines() if line.startswith("| `echarts.min.js`"))
    version, checksum = re.search(r"\| ([0-9.]+) \|.*\| `([0-9a-f]{64})` \|", row).groups()
    assert hashlib.sha256((VENDOR / "echarts.min.js").read_bytes()).hexdigest() == checksum
    assert f'version:"{version}"' in (VENDOR / "echarts.min.js").read_text(errors="replace").replace(" ", "")
    assert "Apache License" in (VENDOR / "ECHARTS-LICENSE").read_text()


def test_pages_load_scripts_and_styles_only_from_the_console() -> None:
    for template in (PACKAGE / "templates").glob("*.html"):
        text = template.read_text()
        for url in re.findall(r'(?:src|href)="([^"{]+)"', text):
            assert url.startswith("/"), (template.name, url)
