"""CSV that a spreadsheet opens safely: every CSV the services and the console export.

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return would be run as a
formula by Excel, LibreOffice or Sheets (CSV injection, OWASP); such a cell is prefixed with
`'`, which makes it plain text. A cell whose value is a number (int, float, Decimal: amounts,
counts, shares, computed by the service itself) is written as the number, so a negative one
stays a number; text that only looks like a number ("-5" typed into a name) is text and is
prefixed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The rows as CSV, lines ended by CRLF (RFC 4180), UTF-8 with a byte-order mark so Excel
    reads the Chinese right."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([cell(h) for h in header])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return buffer.getvalue()
