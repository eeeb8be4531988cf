"""Local copies of another service's reference data, defined once for every service that keeps one.

Several services keep the customer service's staff and sales offices in their own database
(a service never asks another at run time). The columns copied from the events are the same
everywhere and are defined here; each service adds the columns of its own (how it marks a
departure, its per-column stream versions …) and applies the events its own way (event by
event, by stretch, or merged by stream version), since how it applies them is what sets its
projections apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The staff as `staff.assigned` describes them (customer service).
STAFF_COLUMNS = ("staff_id", "name", "role", "district_id", "area_id", "supervisor_id")
_STAFF_DEFINITIONS = (
    "staff_id      text PRIMARY KEY",
    "name          text",
    "role          text",
    "district_id   text",
    "area_id       text",
    "supervisor_id text",
)

# A project's sales office as `sales_office.opened` describes it (customer service).
SALES_OFFICE_COLUMNS = ("project_id", "name", "district_id", "area_id")
_SALES_OFFICE_DEFINITIONS = (
    "project_id   text PRIMARY KEY",
    "name         text NOT NULL",
    "district_id  text NOT NULL",
    "area_id      text NOT NULL",
)


def _table(name: str, columns: tuple[str, ...], extra_columns: tuple[str, ...]) -> str:
    lines = ",\n    ".join(columns + extra_columns)
    return f"CREATE TABLE {name} (\n    {lines}\n);\n"


def staff_table(*extra_columns: str) -> str:
    """DDL of the `staff` table: the copied columns, then the service's own (SQL column
    definitions such as "active boolean NOT NULL")."""
    return _table("staff", _STAFF_DEFINITIONS, extra_columns)


def assigned_staff(data: Mapping[str, Any]) -> dict[str, Any]:
    """The copied columns a `staff.assigned` event sets, but the key (`staff_id`)."""
    return {column: data.get(column) for column in STAFF_COLUMNS[1:]}


def opened_sales_office(data: Mapping[str, Any]) -> dict[str, Any]:
    """The copied columns a `sales_office.opened` event sets, in table order."""
    return {column: data[column] for column in SALES_OFFICE_COLUMNS}


def sales_office_table(name: str, *extra_columns: str) -> str:
    """DDL of a table of the sales offices named `name`: the copied columns, then the
    service's own."""
    return _table(name, _SALES_OFFICE_DEFINITIONS, extra_columns)
