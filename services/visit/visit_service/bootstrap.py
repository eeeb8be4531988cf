"""The composition root of the visit service."""

from __future__ import annotations

import functools
import os

from salesplatform.events import Role
from salesplatform.service import Consumes, ServiceDefinition
from visit_service.adapters.http import router
from visit_service.application.handlers import build_bus, inline_projections
from visit_service.application.reactors import RouteReassignment
from visit_service.application.timers import (
    close_business_days,
    flag_breached_complaints,
    flag_overdue_approvals,
    plan_business_day,
)
from visit_service.domain.events import registry
from visit_service.projections.directory import CUSTOMER_EVENTS, ORDERS_EVENTS, Catalogue, CustomerDirectory

DESCRIPTION = """The field work of the sales department: reps' routes (线路, 路序), the day plan,
visits following the eight steps with the visit card (ODC卡), visit approvals, key-account visit
reports, half-yearly satisfaction surveys, complaints with their 48-hour SLA, ride-along
coaching and delivery spot checks. Keeps its own directory of customers, staff, the catalogue
and orders from the customer and orders services' events."""


def definition(
    timezone: str | None = None,
    high_value_grades: frozenset[str] | None = None,
    high_value_approver: Role | None = None,
) -> ServiceDefinition:
    """`timezone`: the company time zone for business dates in commands (the platform builds
    the command bus from the registry and clock only, so it is bound here; default
    COMPANY_TIMEZONE or Asia/Shanghai, as in the settings).

    Director-level approval of high-value accounts is a configured rule:
    VISIT_HIGH_VALUE_GRADES (e.g. "A") names the grades whose key-account visits are approved
    by VISIT_HIGH_VALUE_APPROVER (default area_manager) or above instead of the supervisor.
    """
    tz = timezone or os.environ.get("COMPANY_TIMEZONE", "Asia/Shanghai")
    if high_value_grades is None:
        raw = os.environ.get("VISIT_HIGH_VALUE_GRADES", "")
        high_value_grades = frozenset(g.strip().upper() for g in raw.split(",") if g.strip())
    if high_value_approver is None:
        high_value_approver = Role(os.environ.get("VISIT_HIGH_VALUE_APPROVER", Role.area_manager.value))
    return ServiceDefinition(
        name="visit",
        registry=registry,
        build_bus=functools.partial(
            build_bus, timezone=tz, high_value_grades=high_value_grades, high_value_approver=high_value_approver
        ),
        projections=[
            CustomerDirectory(),
            Catalogue(),
            RouteReassignment(registry, inline_projections()),
        ],
        consumes=[Consumes("customer", CUSTOMER_EVENTS), Consumes("orders", ORDERS_EVENTS)],
        routers=[router],
        timers=[
            ("plan_business_day", 300.0, plan_business_day),
            ("close_business_days", 300.0, close_business_days),
            ("visit_approval_sla", 60.0, flag_overdue_approvals),
            ("complaint_sla", 60.0, flag_breached_complaints),
        ],
        title="Visit service",
        description=DESCRIPTION,
    )
