"""A rep's route (线路): an ordered list of customers (路序) visited on given weekdays."""

from __future__ import annotations

from collections.abc import Sequence

from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError
from salesplatform.events import Event
from visit_service.domain.events import RouteChanged, RouteDefined


class Route(Aggregate):
    stream_prefix = "route"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.rep_id = ""
        self.name = ""
        self.weekdays: list[int] = []
        self.customer_ids: list[str] = []

    def apply(self, event: Event) -> None:
        match event:
            case RouteDefined() | RouteChanged():
                self.rep_id = event.rep_id
                self.name = event.name
                self.weekdays = list(event.weekdays)
                self.customer_ids = list(event.customer_ids)

    def runs_on(self, weekday: int) -> bool:
        return weekday in self.weekdays

    # -- decisions ----------------------------------------------------------------------------

    def define(self, rep_id: str, name: str, weekdays: Sequence[int], customer_ids: Sequence[str]) -> None:
        if self.exists:
            raise DomainError(f"route {self.id} already exists", code="route_exists")
        _check_unique(customer_ids)
        self.record(
            RouteDefined(
                route_id=self.id,
                rep_id=rep_id,
                name=name,
                weekdays=sorted(set(weekdays)),
                customer_ids=list(customer_ids),
            )
        )

    def add_customer(self, customer_id: str, position: int | None = None) -> None:
        """Insert at a 1-based `position` in the route order (default: at the end)."""
        if customer_id in self.customer_ids:
            raise DomainError(f"customer {customer_id} is already on route {self.id}", code="customer_already_on_route")
        order = list(self.customer_ids)
        if position is None or position > len(order):
            order.append(customer_id)
        else:
            order.insert(position - 1, customer_id)
        self._change(order, "customer_added", customer_id)

    def remove_customer(self, customer_id: str, *, reassigned: bool = False) -> None:
        if customer_id not in self.customer_ids:
            raise DomainError(f"customer {customer_id} is not on route {self.id}", code="customer_not_on_route")
        order = [c for c in self.customer_ids if c != customer_id]
        self._change(order, "customer_reassigned" if reassigned else "customer_removed", customer_id)

    def reorder(self, customer_ids: Sequence[str]) -> None:
        """The new order must hold exactly the route's customers: reordering adds or drops none."""
        _check_unique(customer_ids)
        if sorted(customer_ids) != sorted(self.customer_ids):
            raise DomainError(
                "a new order must list exactly the route's customers", code="reorder_mismatch", field="customer_ids"
            )
        if list(customer_ids) == self.customer_ids:
            return
        self._change(list(customer_ids), "reordered", None)

    def set_weekdays(self, weekdays: Sequence[int]) -> None:
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
                customer_id=customer_id,  # type: ignore[arg-type]
            )
        )


def _check_unique(customer_ids: Sequence[str]) -> None:
    seen: set[str] = set()
    for c in customer_ids:
        if c in seen:
            raise DomainError(f"customer {c} is listed twice", code="duplicate_customer", field="customer_ids")
        seen.add(c)
