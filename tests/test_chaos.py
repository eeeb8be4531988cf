"""The fault suite's small run (`make chaos` runs them all): the whole system as processes under a
steady load of ingested orders while one service is killed, PostgreSQL is stopped with `-m
immediate` and a node of the three-node NATS cluster is killed, each taken back 5 s later; then
every command is reconciled against the orders log, the dead letters and the reports."""

from __future__ import annotations

import pytest

from salesplatform.devstack.chaos import SMALL_FAULTS, STEADY, PhaseResult, run_chaos, table, verdict


@pytest.mark.timeout(900)
def test_outages_lose_and_double_no_command() -> None:
    report = run_chaos(SMALL_FAULTS, rate=20.0)
    phases, text = report.phases, report.text()
    assert [p.fault for p in phases[1:]] == list(SMALL_FAULTS)
    assert all(p.valid_sent > 0 for p in phases), text
    assert phases[0].clean and phases[0].accepted == phases[0].valid_sent, text
    assert not verdict(phases, report.failures), text
    assert all(p.clean for p in phases), text


def test_the_verdict_fails_any_loss_duplicate_or_fault_not_recovered() -> None:
    steady = PhaseResult(STEADY, valid_sent=10, accepted=10)
    assert verdict([steady], []) == []
    lost = PhaseResult(SMALL_FAULTS[0], recovery_seconds=4.0, valid_sent=10, accepted=9, lost=1)
    assert verdict([steady, lost], []) == ["kill -9 orders: 1 lost, 0 doubled, 0 wrongly rejected"]
    doubled = PhaseResult(SMALL_FAULTS[0], recovery_seconds=4.0, valid_sent=10, accepted=10, doubled=1)
    assert verdict([steady, doubled], []) == ["kill -9 orders: 0 lost, 1 doubled, 0 wrongly rejected"]
    never_back = PhaseResult(SMALL_FAULTS[0], valid_sent=10, accepted=10)
    assert verdict([steady, never_back], []) == ["kill -9 orders: not recovered"]
    off = "reporting counts 9 orders for 90 fen; the orders log has 10 for 100 fen"
    assert verdict([steady], [off]) == [off]
    assert "| kill -9 orders | 10 | 9 | 1 | 0 | 0 | 4.0 |" in table([steady, lost])
