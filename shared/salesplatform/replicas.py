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
from datetime import date, datetime
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


def column_lines(*definitions: str) -> str:
    """SQL column definitions joined for a CREATE TABLE (no trailing comma)."""
    return ",\n    ".join(definitions)


# Where a customer card sits and who holds it, as the customer events tell it: every service
# keeping a directory of cards copies these, in this order, among columns of its own.
CARD_PLACEMENT = column_lines(
    "customer_code text",
    "district_id   text",
    "area_id       text",
    "division_id   text",
    "rep_id        text",
    "channel       text",
)

# A line of a sales office's lead register (`lead_register.entry_recorded`), after the
# register it belongs to: the front desk keeps it (customer service), reporting counts it.
REGISTER_LINE = column_lines(
    "entry_no       integer NOT NULL",
    "business_date  date NOT NULL",
    "at             timestamptz NOT NULL",
    "lead_id        text NOT NULL",
    "rep_id         text NOT NULL",
    "basis          text NOT NULL",
    "new_lead       boolean NOT NULL",
    "first_visit    boolean NOT NULL",
)


def register_lines_table(name: str, register_column: str, *extra_columns: str) -> str:
    """DDL of a table of register lines named `name`: the project, the register (walk-ins or
    calls, in the column `register_column`) and the copied line, then the service's own columns;
    a line is keyed by its project, its register and its number."""
    lines = column_lines(
        "project_id  text NOT NULL",
        f"{register_column}  text NOT NULL",
        REGISTER_LINE,
        *extra_columns,
        f"PRIMARY KEY (project_id, {register_column}, entry_no)",
    )
    return f"CREATE TABLE {name} (\n    {lines}\n);\n"


def recorded_register_line(data: Mapping[str, Any]) -> dict[str, Any]:
    """What a `lead_register.entry_recorded` event sets of a register line, in table order:
    its key and the copied columns, the day and the time parsed (ISO strings in a payload)."""
    day, at = data["business_date"], data["at"]
    return {
        "project_id": data["project_id"],
        "register_kind": data["register_kind"],
        "entry_no": data["entry_no"],
        "business_date": date.fromisoformat(day) if isinstance(day, str) else day,
        "at": datetime.fromisoformat(at) if isinstance(at, str) else at,
        **{column: data[column] for column in ("lead_id", "rep_id", "basis", "new_lead", "first_visit")},
    }


# A unit's deal, as the sales-control events tell it: the orders service keeps it for its
# own checks, reporting for the office's reports.
UNIT_DEAL = column_lines(
    "total_price_fen     bigint",
    "lead_id             text",
    "credited_rep_id     text",
    "deal_price_fen      bigint",
    "deposit_agreed_fen  bigint NOT NULL DEFAULT 0",
    "deposit_total_fen   bigint NOT NULL DEFAULT 0",
    "deposit_due_by      timestamptz",
    "deposit_overdue     boolean NOT NULL DEFAULT false",
)
