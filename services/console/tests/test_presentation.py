"""How the console shows figures: yuan from fen, percent, red/amber/green against a goal, date
ranges in the company's days, and CSV cells a spreadsheet cannot run."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from console_service.domain import i18n
from console_service.domain.judgement import light
from console_service.domain.money import fen_of, percent, yuan, yuan_number
from console_service.domain.periods import chosen_range, month_of, preset_range
from console_service.domain.tables import Column, Table, csv_rows
from salesplatform.csv_export import csv_text

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    ("fen", "shown"),
    [
        (0, "¥0.00"),
        (5, "¥0.05"),
        (1234567, "¥12,345.67"),
        (100_000_000_00, "¥100,000,000.00"),
        (-1230, "-¥12.30"),
        (None, "—"),
    ],
)
def test_fen_are_shown_as_yuan_and_read_back(fen: int | None, shown: str) -> None:
    assert yuan(fen) == shown
    if fen is not None:
        assert fen_of(shown) == fen
        assert yuan_number(fen) == Decimal(fen) / 100


def test_fractions_are_shown_as_percent() -> None:
    assert percent(0.8537) == "85.4%"
    assert percent(1.0, 0) == "100%"
    assert percent(None) == "—"


@pytest.mark.parametrize(
    ("figure", "expected"),
    [
        ({"value": 0.9, "goal": 0.85, "met": True}, "green"),
        ({"value": 0.82, "goal": 0.85, "met": False}, "amber"),
        ({"value": 0.80, "goal": 0.85, "met": False}, "amber"),
        ({"value": 0.7999, "goal": 0.85, "met": False}, "red"),
        ({"value": 0.96, "goal": 1.0, "met": False}, "amber"),
        ({"value": 0.5, "goal": 1.0, "met": False}, "red"),
        # cooler misuse: the goal 0% is a ceiling
        ({"value": 0.0, "goal": 0.0, "met": True}, "green"),
        ({"value": 0.04, "goal": 0.0, "met": False}, "amber"),
        ({"value": 0.2, "goal": 0.0, "met": False}, "red"),
        ({"value": None, "goal": 0.85, "met": None}, "none"),
        (None, "none"),
    ],
)
def test_red_amber_green_against_the_goal(figure: dict | None, expected: str) -> None:
    assert light(figure) == expected


def days(r) -> tuple[date, date]:
    return r.first, r.last


def test_date_ranges_a_person_picks() -> None:
    today = date(2026, 12, 6)  # a Sunday
    assert days(preset_range("today", today)) == (today, today)
    assert days(preset_range("week", today)) == (date(2026, 11, 30), today)
    assert days(preset_range("month", today)) == (date(2026, 12, 1), today)
    assert days(preset_range("last_month", today)) == (date(2026, 11, 1), date(2026, 11, 30))
    assert days(preset_range("last_30_days", today)) == (date(2026, 11, 7), today)
    assert days(preset_range("last_month", date(2026, 1, 15))) == (date(2025, 12, 1), date(2025, 12, 31))
    custom = chosen_range("custom", "2026-10-03", "2026-10-20", today)
    assert (custom.first, custom.last, custom.preset) == (date(2026, 10, 3), date(2026, 10, 20), "custom")
    # Reversed days are put in order; unreadable ones fall back to the month to date.
    assert days(chosen_range(None, "2026-10-20", "2026-10-03", today)) == (date(2026, 10, 3), date(2026, 10, 20))
    assert days(chosen_range(None, "not a day", "", today)) == (date(2026, 12, 1), today)
    # A preset wins over days left in the form.
    assert days(chosen_range("today", "2026-10-03", "2026-10-20", today)) == (today, today)
    assert month_of("2026-11", today) == "2026-11"
    assert month_of("2026-13", today) == month_of("nope", today) == "2026-12"


def test_a_tables_csv_has_yuan_percent_points_and_headings_in_the_readers_language() -> None:
    table = Table(
        "kpi",
        "kpi",
        [
            Column("name", "rep"),
            Column("net_sales", "net_sales", "money"),
            Column("visit_success", "visit_success", "figure"),
        ],
        [{"name": "=谢磊", "net_sales": -1230, "visit_success": {"value": 0.6667, "goal": 0.85, "met": False}}],
    )
    header, rows = csv_rows(table, "zh")
    assert header == ["业务员", "销售额（净） (¥)", "拜访成功率 (%)"]
    assert [list(r) for r in rows] == [["=谢磊", Decimal("-12.30"), Decimal("66.67")]]
    text = csv_text(*csv_rows(table, "en"))
    assert text.startswith("\ufeffRep,Net sales (¥),Visit success (%)\r\n")
    assert "'=谢磊,-12.30,66.67" in text


def test_every_word_has_both_languages() -> None:
    for key, (zh, en) in i18n.TEXTS.items():
        assert zh and en, key
    assert i18n.text("kpi", "zh") == "KPI看板" and i18n.text("kpi", "en") == "KPI board"
    assert i18n.term("reason", "transit_damage", "zh") == "运输损坏"
    assert i18n.term("product_group", "a group added later", "en") == "a group added later"
    assert i18n.language("fr") == "zh"
