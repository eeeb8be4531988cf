"""A rep's route (线路): an ordered list of customers (路序) visited on given weekdays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError
from salesplatform.events import Event
from visit_service.domain.events import RouteChanged, RouteDefined, RouteRetired


class Route(Aggregate):
    stream_prefix = "route"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.rep_id = ""
        self.name = ""
        self.weekdays: list[int] = []
        self.customer_ids: list[str] = []
        self.cycle_weeks = 1
        self.cycle_offset = 0
        self.plan_id: str | None = None
        self.retired = False

    def apply(self, event: Event) -> None:
        match event:
            case RouteDefined() | RouteChanged():
                self.rep_id = event.rep_id
                self.name = event.name
                self.weekdays = list(event.weekdays)
                self.customer_ids = list(event.customer_ids)
                self.cycle_weeks = event.cycle_weeks
                self.cycle_offset = event.cycle_offset
                self.plan_id = event.plan_id
            case RouteRetired():
                self.retired = True

    def runs_on(self, weekday: int) -> bool:
        return weekday in self.weekdays

    # -- decisions ----------------------------------------------------------------------------

    def define(
        self,
        rep_id: str,
        name: str,
        weekdays: Sequence[int],
        customer_ids: Sequence[str],
        *,
        cycle_weeks: int = 1,
        cycle_offset: int = 0,
        plan_id: str | None = None,
    ) -> None:
        if self.exists:
            raise DomainError(f"route {self.id} already exists", code="route_exists")
        _check_unique(customer_ids)
        if cycle_weeks < 1 or not 0 <= cycle_offset < cycle_weeks:
            raise DomainError("a route runs every 1 or more weeks", code="bad_cycle", field="cycle_weeks")
        self.record(
            RouteDefined(
                route_id=self.id,
                rep_id=rep_id,
                name=name,
                weekdays=sorted(set(weekdays)),
                customer_ids=list(customer_ids),
                cycle_weeks=cycle_weeks,
                cycle_offset=cycle_offset,
                plan_id=plan_id,
            )
        )

    def retire(self, reason: str, plan_id: str | None = None) -> None:
        self._ensure_running()
        self.record(RouteRetired(route_id=self.id, rep_id=self.rep_id, reason=reason, plan_id=plan_id))

    def _ensure_running(self) -> None:
        if self.retired:
            raise DomainError(f"route {self.id} is retired", code="route_retired")

    def add_customer(self, customer_id: str, position: int | None = None) -> None:
        """Insert at a 1-based `position` in the route order (default: at the end)."""
        self._ensure_running()
        if customer_id in self.customer_ids:
            raise DomainError(f"customer {customer_id} is already on route {self.id}", code="customer_already_on_route")
        order = list(self.customer_ids)
        if position is None or position > len(order):
            order.append(customer_id)
        else:
            order.insert(position - 1, customer_id)
        self._change(order, "customer_added", customer_id)

    def remove_customer(self, customer_id: str, *, reassigned: bool = False) -> None:
        self._ensure_running()
        if customer_id not in self.customer_ids:
            raise DomainError(f"customer {customer_id} is not on route {self.id}", code="customer_not_on_route")
        order = [c for c in self.customer_ids if c != customer_id]
        self._change(order, "customer_reassigned" if reassigned else "customer_removed", customer_id)

    def reorder(self, customer_ids: Sequence[str]) -> None:
        """The new order must hold exactly the route's customers: reordering adds or drops none."""
        self._ensure_running()
        _check_unique(customer_ids)
        if sorted(customer_ids) != sorted(self.customer_ids):
            raise DomainError(
                "a new order must list exactly the route's customers", code="reorder_mismatch", field="customer_ids"
            )
        if list(customer_ids) == self.customer_ids:
            return
        self._change(list(customer_ids), "reordered", None)

    def set_weekdays(self, weekdays: Sequence[int]) -> None:
        self._ensure_running()
        days = sorted(set(weekdays))
        if days == self.weekdays:
            return
        self.record(
            RouteChanged(
                route_id=self.id,
                rep_id=self.rep_id,
                name=self.name,
                weekdays=days,
                customer_ids=self.customer_ids,
                reason="weekdays_changed",
                **self._cycle(),
            )
        )

    def _change(self, order: list[str], reason: str, customer_id: str | None) -> None:
        self.record(
            RouteChanged(
                route_id=self.id,
                rep_id=self.rep_id,
                name=self.name,
                weekdays=self.weekdays,
                customer_ids=order,
                reason=reason,
                customer_id=customer_id,
                **self._cycle(),
            )
        )

    def _cycle(self) -> dict[str, Any]:
        return {"cycle_weeks": self.cycle_weeks, "cycle_offset": self.cycle_offset, "plan_id": self.plan_id}


def _check_unique(customer_ids: Sequence[str]) -> None:
    seen: set[str] = set()
    for c in customer_ids:
        if c in seen:
            raise DomainError(f"customer {c} is listed twice", code="duplicate_customer", field="customer_ids")
        seen.add(c)
