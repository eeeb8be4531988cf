"""Report changes reach the open pages that show them: by report and, where the page shows a
range of days, by day; a page that falls behind, and every page after a reconnect, re-reads."""

from __future__ import annotations

from datetime import date

import pytest

from console_service.application.changes import QUEUE_SIZE, ChangeHub, Notice

pytestmark = pytest.mark.fast


def drained(subscription) -> list[Notice | None]:
    out = []
    while not subscription.queue.empty():
        out.append(subscription.queue.get_nowait())
    return out


def test_a_page_hears_of_its_reports_within_its_days() -> None:
    hub = ChangeHub()
    board = hub.subscribe(frozenset({"kpi", "sales"}), date(2026, 12, 1), date(2026, 12, 6))
    ageing = hub.subscribe(frozenset({"receivables"}))
    hub.publish("sales", [{"period": "2026-12-06", "rep_id": "r1"}])
    hub.publish("sales", [{"period": "2026-11-30", "rep_id": "r1"}])  # before the page's range
    hub.publish("kpi", [{"period": "2026-11-30"}, {"period": "2026-12-02"}])
    hub.publish("target_achievement", [{"month": "2026-12"}])  # not shown on the board
    hub.publish("receivables", [{"customer_id": "c1"}])
    hub.publish("kpi", [{"rebuilt": True}])  # no day: re-read
    assert drained(board) == [Notice("changed", "sales"), Notice("changed", "kpi"), Notice("changed", "kpi")]
    assert drained(ageing) == [Notice("changed", "receivables")]


def test_months_are_matched_against_the_range() -> None:
    hub = ChangeHub()
    page = hub.subscribe(frozenset({"target_achievement"}), date(2026, 12, 1), date(2026, 12, 31))
    hub.publish("target_achievement", [{"month": "2026-11"}])
    hub.publish("target_achievement", [{"month": "2026-12", "rep_id": "r1"}])
    assert drained(page) == [Notice("changed", "target_achievement")]


def test_a_page_behind_gets_one_resync_and_all_get_one_after_a_reconnect() -> None:
    hub = ChangeHub()
    slow = hub.subscribe(frozenset({"sales"}))
    for _ in range(QUEUE_SIZE + 10):
        hub.publish("sales", [])
    assert Notice("resync") in drained(slow)
    other = hub.subscribe(frozenset({"kpi"}))
    hub.resync()
    assert drained(slow) == [Notice("resync")] and drained(other) == [Notice("resync")]


def test_closing_ends_every_stream_and_unsubscribed_pages_hear_nothing() -> None:
    hub = ChangeHub()
    gone = hub.subscribe(frozenset({"sales"}))
    hub.unsubscribe(gone)
    open_page = hub.subscribe(frozenset({"sales"}))
    hub.publish("sales", [])
    assert drained(gone) == []
    hub.close()
    assert drained(open_page) == [None]
    assert drained(hub.subscribe(frozenset({"sales"}))) == [None]
    assert hub.open_pages == 2
