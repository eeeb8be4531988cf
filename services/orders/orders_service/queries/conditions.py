"""WHERE clauses with numbered parameters."""

from __future__ import annotations

from typing import Any


class Where:
    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def add(self, clause: str, *values: Any) -> Where:
        """A clause whose `{}` stand for `values`, in order."""
        for value in values:
            self.args.append(value)
            clause = clause.replace("{}", f"${len(self.args)}", 1)
        self.clauses.append(clause)
        return self

    def within(self, scope: list[tuple[str, Any]], alias: str) -> Where:
        """`alias.column = value` for each (column, value) of a reader's scope."""
        for column, value in scope:
            self.add(f"{alias}.{column} = {{}}", value)
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "true"

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"
