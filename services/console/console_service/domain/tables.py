"""A page's tables: columns of a kind (money, count, a figure judged against its goal …), rows
of values, and the same table as CSV cells.

Rows hold what the page shows: names already resolved and terms already in the reader's
language for text columns, the API's numbers untouched for the others (fen, counts, fractions,
`{value, goal, met}` figures), so the page and its CSV show the figures the reports gave.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from console_service.domain import i18n
from console_service.domain.money import yuan_number

Kind = Literal["text", "count", "money", "percent", "figure", "progress", "flag", "photo"]


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # an i18n text key
    kind: Kind = "text"

    def heading(self, lang: str) -> str:
        words = i18n.text(self.label, lang)
        if self.kind == "money":
            return f"{words} (¥)"
        if self.kind in ("percent", "figure", "progress"):
            return f"{words} (%)"
        return words

    @property
    def numeric(self) -> bool:
        return self.kind in ("count", "money", "percent", "figure", "progress")


@dataclass
class Table:
    name: str  # the CSV's file name and the table's id on the page
    title: str  # an i18n text key
    columns: list[Column]
    rows: list[dict[str, Any]]
    total: int | None = None  # rows the report has (more than shown: the CSV has them all)
    key: str = ""  # the row field that identifies a row (rep_id, customer_id …)
    notes: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.total is not None and self.total > len(self.rows)


def percent_number(fraction: float | None) -> Decimal | None:
    if fraction is None:
        return None
    return (Decimal(str(fraction)) * 100).quantize(Decimal("0.01"))


def csv_value(column: Column, value: Any) -> Any:
    """A row's value as a CSV cell: yuan with two decimals, percent points, counts, text."""
    match column.kind:
        case "money":
            return yuan_number(value)
        case "percent":
            return percent_number(value)
        case "figure":
            return percent_number(value.get("value") if isinstance(value, dict) else None)
        case "progress":
            return percent_number(value.get("value") if isinstance(value, dict) else value)
        case "flag":
            return "" if value is None else bool(value)
    return value


def csv_rows(table: Table, lang: str) -> tuple[list[str], Iterator[Sequence[Any]]]:
    header = [c.heading(lang) for c in table.columns]
    rows = ([csv_value(c, row.get(c.key)) for c in table.columns] for row in table.rows)
    return header, rows
