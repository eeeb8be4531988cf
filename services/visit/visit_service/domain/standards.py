"""Field standards: the standard success picture (成功图象) of a channel, and the monthly route
cleanup (线路清理) of a district."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError
from salesplatform.events import Event
from salesplatform.ids import uuid5
from visit_service.domain.events import RouteCleanupClosed, StandardItem, StandardPictureDefined

_CLEANUP_IDS = uuid.UUID("3c5e7d10-94f1-4f6e-8a0b-2d4c6e8f1a35")


class StandardPicture(Aggregate):
    """The checklist of a channel's standard picture; defined again to change it."""

    stream_prefix = "standard_picture"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.items: list[StandardItem] = []

    def apply(self, event: Event) -> None:
        match event:
            case StandardPictureDefined():
                self.items = list(event.items)

    def define(self, items: Sequence[StandardItem], defined_by: str) -> None:
        codes = [i.code for i in items]
        if len(set(codes)) != len(codes):
            raise DomainError("an item code is listed twice", code="duplicate_item", field="items")
        if list(items) == self.items:
            raise DomainError(f"the standard picture of {self.id} is already so", code="standard_unchanged")
        self.record(StandardPictureDefined(channel=self.id, items=list(items), defined_by=defined_by))


# -- the monthly route cleanup ------------------------------------------------------------------

ON_ROUTE_STATUSES = ("prospect", "active")  # outlets a rep should visit
INACTIVE_STATUSES = ("dormant", "lost")


@dataclass(frozen=True)
class CleanupRules:
    unvisited_days: int = 30  # on a route but not checked in at for this long
    new_outlet_days: int = 30  # approved this recently and on no route: waiting to be added


@dataclass(frozen=True)
class OutletOnRecord:
    customer_id: str
    rep_id: str | None
    status: str | None
    approved_on: date | None
    route_ids: tuple[str, ...]
    last_visit_on: date | None  # last check-in


CLEANUP_SECTIONS = ("no_route", "unvisited", "inactive_on_route", "new_waiting")


def cleanup_report(outlets: Sequence[OutletOnRecord], as_of: date, rules: CleanupRules) -> dict[str, list[str]]:
    """The four lists of the cleanup form, each sorted by customer id:

    - `no_route`: approved outlets (prospect, active) on no route, approved more than
      `new_outlet_days` ago (or when unknown);
    - `new_waiting`: approved outlets on no route, approved within the last `new_outlet_days`;
    - `unvisited`: approved outlets on a route not checked in at for more than
      `unvisited_days` (never, for one approved longer ago than that);
    - `inactive_on_route`: dormant or lost outlets still on a route.
    """
    out: dict[str, list[str]] = {k: [] for k in CLEANUP_SECTIONS}
    new_since = as_of - timedelta(days=rules.new_outlet_days)
    visited_since = as_of - timedelta(days=rules.unvisited_days)
    for o in sorted(outlets, key=lambda o: o.customer_id):
        if o.status in INACTIVE_STATUSES:
            if o.route_ids:
                out["inactive_on_route"].append(o.customer_id)
            continue
        if o.status not in ON_ROUTE_STATUSES:
            continue
        if not o.route_ids:
            recent = o.approved_on is not None and o.approved_on > new_since
            out["new_waiting" if recent else "no_route"].append(o.customer_id)
            continue
        if o.last_visit_on is not None:
            if o.last_visit_on < visited_since:
                out["unvisited"].append(o.customer_id)
        elif o.approved_on is None or o.approved_on < visited_since:
            out["unvisited"].append(o.customer_id)
    return out


def cleanup_id_for(district_id: str, month: str) -> str:
    return str(uuid5(_CLEANUP_IDS, f"{district_id}:{month}"))


def month_end(month: str) -> date:
    y, m = int(month[:4]), int(month[5:7])
    return date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)


class RouteCleanup(Aggregate):
    """One district's cleanup of one month; closed once."""

    stream_prefix = "route_cleanup"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.closed = False

    def apply(self, event: Event) -> None:
        match event:
            case RouteCleanupClosed():
                self.closed = True

    def close(
        self,
        *,
        district_id: str,
        month: str,
        closed_by: str,
        closed_on: date,
        report: Mapping[str, list[str]],
        notes: str | None,
    ) -> None:
        if self.closed:
            raise DomainError(
                f"the route cleanup of {district_id} for {month} is already closed", code="already_closed"
            )
        if month > closed_on.strftime("%Y-%m"):
            raise DomainError(f"{month} has not begun", code="month_in_future", field="month")
        self.record(
            RouteCleanupClosed(
                cleanup_id=self.id,
                district_id=district_id,
                month=month,
                closed_by=closed_by,
                closed_on=closed_on,
                counts={k: len(v) for k, v in report.items()},
                outlets={k: list(v) for k, v in report.items()},
                notes=notes,
            )
        )
