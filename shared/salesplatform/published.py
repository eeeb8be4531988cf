"""The published language: the event types one service records and others read.

A consumer names what it reads from here (`CUSTOMER_CARD_EVENTS | STAFF_EVENTS`, plus any
further type of its own), so a new event type of a producer is added once, where the producer's
readers find it. Each event's payload is described by its model in the producer's
`domain/events.py` and in the service's AsyncAPI document (`salesplatform.contract`).
"""

from __future__ import annotations

# customer service: the life of a customer card, as every directory of customers keeps it.
CUSTOMER_CARD_EVENTS = frozenset(
    {
        "customer.registered",
        "customer.approved",
        "customer.rejected",
        "customer.classified",
        "customer.assigned",
        "customer.status_changed",
        "customer.released",
        "customer.claimed",
        "customer.merged",
        "customer.profile_updated",
        "customer.personal_data_erased",
    }
)
# customer service: a card's credit (rating, limit, payment terms).
CUSTOMER_CREDIT_EVENTS = frozenset({"customer.credit_limit_set"})
# customer service: the outlet's position on the map.
CUSTOMER_POSITION_EVENTS = frozenset({"customer.position_set"})
# customer service: the staff (reps, supervisors, managers) and where they work.
STAFF_EVENTS = frozenset({"staff.assigned", "staff.departed"})
# customer service: the territory (divisions, areas, districts).
TERRITORY_EVENTS = frozenset({"territory.division_defined", "territory.area_defined", "territory.district_defined"})
# customer service: a project's sales office (案场) opened.
SALES_OFFICE_EVENTS = frozenset({"sales_office.opened"})

# orders service: the returns (退回产品处理单) and the corrective actions they lead to.
RETURN_EVENTS = frozenset(
    {
        "return.requested",
        "return.inspected",
        "return.approved",
        "return.rejected",
        "return.resolved",
        "return.goods_received",
        "corrective_action.assigned",
    }
)

# orders service: the status a unit of a sales office is left in by each sales-control (销控)
# event that moves it; its own read model and reporting's follow the same steps.
UNIT_STATUS_AFTER: dict[str, str] = {
    "unit.reserved": "reserved",
    "unit.subscribed": "subscribed",
    "unit.contracted": "contracted",
    "unit.mortgage_started": "mortgage",
    "unit.handed_over": "handed_over",
    "unit.reservation_released": "available",
}
# orders service: a unit's life in sales control, as reporting follows it: defined, priced,
# deposits, and each step that moves its status.
UNIT_EVENTS = frozenset(
    {"unit.defined", "unit.priced", "unit.deposit_received", "unit.deposit_completed", "unit.deposit_overdue"}
) | frozenset(UNIT_STATUS_AFTER)

# Each service's published event types named here (tests/test_published.py holds every name to
# the producer's event registry, so a renamed event fails there, not silently in a consumer).
PUBLISHED_BY: dict[str, frozenset[str]] = {
    "customer": CUSTOMER_CARD_EVENTS
    | CUSTOMER_CREDIT_EVENTS
    | CUSTOMER_POSITION_EVENTS
    | STAFF_EVENTS
    | TERRITORY_EVENTS
    | SALES_OFFICE_EVENTS,
    "orders": RETURN_EVENTS | UNIT_EVENTS,
}
