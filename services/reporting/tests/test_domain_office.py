"""Pure tests of the sales offices' meetings and assessments (domain/office.py): the close-out's
missed forecast, the Monday claims, and the warnings. No I/O."""

from __future__ import annotations

from datetime import date

import pytest

from reporting_service.domain.office import (
    DailyClose,
    Figures,
    PerformanceFile,
    WeeklyClaim,
    behind,
    expected_by_now,
    forecast_missed,
    monday_of,
    warning_due,
)
from salesplatform.errors import DomainError

pytestmark = pytest.mark.fast


def test_a_forecast_is_missed_when_any_figure_falls_short() -> None:
    forecast = Figures(deposits=2, subscriptions=1, contracts=0, amount_fen=300)
    assert not forecast_missed(forecast, Figures(2, 1, 0, 300))
    assert not forecast_missed(forecast, Figures(3, 2, 1, 900))
    assert forecast_missed(forecast, Figures(1, 1, 0, 300))
    assert forecast_missed(forecast, Figures(2, 1, 0, 299))
    close = DailyClose("P1@r1@2026-11-03")
    assert close.close("P1", "r1", date(2026, 11, 3), forecast, None)
    assert not close.close("P1", "r1", date(2026, 11, 3), forecast, None)  # the same again: nothing
    assert close.pending[0].forecast_for == date(2026, 11, 4)


def test_weekly_targets_are_claimed_at_the_monday_meeting() -> None:
    monday = date(2026, 11, 2)
    assert monday_of(date(2026, 11, 8)) == monday
    claim = WeeklyClaim("P1@r1@2026-11-02")
    assert claim.claim("P1", "r1", monday, 1, 300, today=date(2026, 10, 30))  # ahead of the meeting
    assert claim.claim("P1", "r1", monday, 2, 600, today=monday)  # changed at the meeting
    with pytest.raises(DomainError) as e:
        claim.claim("P1", "r1", monday, 3, 900, today=date(2026, 11, 3))
    assert e.value.code == "claim_after_meeting"
    with pytest.raises(DomainError) as e:
        claim.claim("P1", "r1", date(2026, 11, 4), 1, 1, today=date(2026, 11, 1))
    assert e.value.code == "not_a_monday"


def test_a_target_is_due_from_the_reps_first_day_at_the_office() -> None:
    """D3: spread over the days from the first sign-in to the month's end; nothing before."""
    november = date(2026, 11, 1)
    assert expected_by_now(300, november, date(2026, 11, 30)) == 300
    assert expected_by_now(300, november, date(2026, 11, 10)) == 100
    assert expected_by_now(290, date(2026, 11, 2), date(2026, 11, 9)) == 80  # 8 of 29 days
    assert expected_by_now(300, date(2026, 11, 16), date(2026, 11, 15)) == 0  # not started yet
    assert behind(79, 100, 20) and not behind(80, 100, 20)


def test_an_oral_warning_then_a_written_one_after_the_escalation_days() -> None:
    oral = date(2026, 11, 10)
    assert warning_due([], True, oral, 7) == "oral"
    assert warning_due([], False, oral, 7) is None
    assert warning_due([("oral", oral)], True, date(2026, 11, 16), 7) is None
    assert warning_due([("oral", oral)], True, date(2026, 11, 17), 7) == "written"
    assert warning_due([("oral", oral), ("written", date(2026, 11, 17))], True, date(2026, 11, 30), 7) is None
    file = PerformanceFile("r2@2026-11")
    figures = {"started": date(2026, 11, 2), "target_fen": 290, "margin_percent": 20, "escalation_days": 7}
    assert file.review("r2", "2026-11", oral, as_of=date(2026, 11, 9), actual_fen=0, **figures) == "oral"
    assert file.pending[0].expected_fen == 80
    assert file.review("r2", "2026-11", date(2026, 11, 12), as_of=date(2026, 11, 11), actual_fen=0, **figures) is None
    assert file.review("r2", "2026-11", date(2026, 11, 17), as_of=date(2026, 11, 16), actual_fen=200, **figures) is None
