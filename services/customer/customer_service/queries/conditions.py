"""A WHERE clause built from parts, each with its own arguments numbered in order."""

from __future__ import annotations

from typing import Any


class Where:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def add(self, sql: str, *values: Any) -> None:
        """A condition whose `{}` (or `{0}`, `{1}`) stand for `values`."""
        refs = []
        for v in values:
            self.args.append(v)
            refs.append(f"${len(self.args)}")
        self.parts.append(sql.format(*refs))

    def equal(self, **values: Any) -> None:
        """`column = value` for each value given (None: no condition)."""
        for column, value in values.items():
            if value is not None:
                self.add(f"{column} = {{}}", value)

    def sql(self) -> str:
        return " AND ".join(self.parts) if self.parts else "true"
