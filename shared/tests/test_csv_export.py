"""CSV cells a spreadsheet cannot run as formulas, and numbers that stay numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from salesplatform.csv_export import cell, csv_text

pytestmark = pytest.mark.fast


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_text_cell_that_could_start_a_formula_is_made_plain_text(start: str) -> None:
    dangerous = f'{start}HYPERLINK("http://example.invalid","x")'
    assert cell(dangerous) == "'" + dangerous
    text = csv_text(["客户"], [[dangerous]])
    [header, row] = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert header == ["客户"] and row == ["'" + dangerous]


def test_numbers_and_plain_text_are_written_as_they_are() -> None:
    assert cell(-1250) == "-1250"
    assert cell(Decimal("-12.50")) == "-12.50"
    assert cell(0.5) == "0.5"
    assert cell(True) == "true"
    assert cell(None) == ""
    assert cell("浦东片区") == "浦东片区"
    assert cell("a=b") == "a=b"
