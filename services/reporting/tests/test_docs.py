"""The written definitions of the reports are the same in the README and in the HTTP API."""

from __future__ import annotations

from pathlib import Path

import pytest

from reporting_service.domain.reports import CHANGE_SUBJECTS, REPORTS

pytestmark = pytest.mark.fast

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_report_definition_is_in_the_readme_word_for_word() -> None:
    for name, definition in REPORTS.items():
        assert f"(`{name}`)" in README, name
        assert definition.text in README, name


def test_every_change_subject_is_documented() -> None:
    section = README[README.index("### Subscriptions") : README.index("## Events consumed")]
    for report in CHANGE_SUBJECTS:
        assert f"`{report}`" in section, report
