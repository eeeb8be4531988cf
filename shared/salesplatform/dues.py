"""When money owed is overdue: one rule for every service that ages receivables.

An invoice is overdue (past due) from the day after its due date: on the due date itself it is
still payable on time. Days past due = as_of − due_on, so an invoice due today is 0 days past
due and not overdue; the orders service's credit checks and the reporting service's ageing and
credit reports all judge it with this module.
"""

from __future__ import annotations

from datetime import date


def days_past_due(due_on: date, as_of: date) -> int:
    return (as_of - due_on).days


def is_overdue(due_on: date, as_of: date) -> bool:
    return days_past_due(due_on, as_of) > 0


def overdue_sql(due_on: str, as_of: str) -> str:
    """The same rule as a SQL condition on two date expressions."""
    return f"({due_on} < {as_of})"
