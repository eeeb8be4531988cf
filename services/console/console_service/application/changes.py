"""Report changes fanned out to the open pages.

The change feed hands every `reporting.changed.<report>` notice to the hub; each open page (a
Server-Sent Events stream) has subscribed to the reports it shows and, where the page shows a
date range, to changes inside it. A page that falls behind (its queue full) is told to re-read
everything instead of being sent a backlog; so is every page after the feed reconnects, since
core NATS may have dropped notices meanwhile.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date
from typing import Any

QUEUE_SIZE = 64


@dataclass(frozen=True)
class Notice:
    """What a page is told: `changed` (one of its reports changed), `resync` (re-read it all)."""

    kind: str
    report: str = ""


@dataclass(eq=False)
class Subscription:
    reports: frozenset[str]
    first: date | None = None
    last: date | None = None
    queue: asyncio.Queue[Notice | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def concerned(self, report: str, changes: list[dict[str, Any]]) -> bool:
        if report not in self.reports:
            return False
        if self.first is None or self.last is None or not changes:
            return True
        return any(_within(change, self.first, self.last) for change in changes)

    def tell(self, notice: Notice) -> None:
        try:
            self.queue.put_nowait(notice)
        except asyncio.QueueFull:
            # Behind: drop the backlog, one resync covers it.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(Notice("resync"))


def _within(change: dict[str, Any], first: date, last: date) -> bool:
    """A change keyed by a day (`period` YYYY-MM-DD) or a month (`month` YYYY-MM) outside the
    page's range does not concern it; any other change (a customer, a rebuild) does."""
    period = change.get("period")
    if isinstance(period, str) and len(period) == 10:
        try:
            return first <= date.fromisoformat(period) <= last
        except ValueError:
            return True
    month = change.get("month")
    if isinstance(month, str) and len(month) == 7:
        return f"{first:%Y-%m}" <= month <= f"{last:%Y-%m}"
    return True


class ChangeHub:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.closed = False

    def subscribe(self, reports: frozenset[str], first: date | None = None, last: date | None = None) -> Subscription:
        subscription = Subscription(reports, first, last)
        if self.closed:
            subscription.queue.put_nowait(None)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def open_pages(self) -> int:
        return len(self._subscriptions)

    def publish(self, report: str, changes: list[dict[str, Any]]) -> None:
        notice = Notice("changed", report)
        for subscription in list(self._subscriptions):
            if subscription.concerned(report, changes):
                subscription.tell(notice)

    def resync(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.tell(Notice("resync"))

    def close(self) -> None:
        """The console is stopping: every open stream ends now."""
        self.closed = True
        for subscription in list(self._subscriptions):
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            subscription.queue.put_nowait(None)
