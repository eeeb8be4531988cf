"""The composition root of the visit service."""

from __future__ import annotations

import functools

from salesplatform.clock import Clock
from salesplatform.commands import CommandBus
from salesplatform.events import EventRegistry, Role
from salesplatform.service import Consumes, Runtime, ServiceDefinition
from salesplatform.settings import load
from salesplatform.timers import Timer
from visit_service.adapters import field_http, http, photo_http
from visit_service.adapters.photo_store import PhotoStore
from visit_service.adapters.reads import VisitRules
from visit_service.application import field_work, reactors, route_plans
from visit_service.application import photos as photo_erasure
from visit_service.application.handlers import build_bus
from visit_service.application.photos import PhotoErasure, expire_photos
from visit_service.application.reactors import RouteReassignment
from visit_service.application.route_plans import propose_route_plans
from visit_service.application.timers import (
    close_business_days,
    flag_breached_complaints,
    flag_overdue_approvals,
    plan_business_day,
)
from visit_service.config import FieldConfig, FieldSettings
from visit_service.domain.events import registry
from visit_service.projections.directory import CUSTOMER_EVENTS, ORDERS_EVENTS, Catalogue, CustomerDirectory

DESCRIPTION = """The field work of the sales department: reps' routes (线路, 路序) and their planning,
the day plan, visits following the eight steps with the visit card (ODC卡), check-ins judged
against the outlet's position, photo evidence, the audit against the channel's standard
picture, visit approvals, key-account visit reports, half-yearly satisfaction surveys,
complaints with their 48-hour SLA, ride-along coaching, delivery spot checks and the monthly
route cleanup. Keeps its own directory of customers, staff, the catalogue and orders from the
customer and orders services' events."""

# Seconds between runs of the planner and of the photo retention.
PLANNER_SECONDS = 5.0
RETENTION_SECONDS = 3600.0


def build_field_bus(
    registry: EventRegistry,
    clock: Clock,
    *,
    timezone: str,
    high_value_grades: frozenset[str],
    high_value_approver: Role,
    config: FieldConfig,
    photos: PhotoStore,
) -> CommandBus:
    bus = build_bus(
        registry,
        clock,
        timezone=timezone,
        high_value_grades=high_value_grades,
        high_value_approver=high_value_approver,
    )
    field_work.register(bus, config, photos)
    route_plans.register(bus, config)
    reactors.register(bus)
    photo_erasure.register(bus, photos)
    return bus


async def open_photo_store(runtime: Runtime, *, photos: PhotoStore) -> None:
    await photos.bind(runtime.js, runtime.topology, replicas=runtime.settings.stream_replicas)


def definition(
    timezone: str | None = None,
    config: FieldConfig | None = None,
    settings: FieldSettings | None = None,
) -> ServiceDefinition:
    """`settings`: the service's own (default: from the environment, `config.py`), which
    `timezone` (the company time zone for business dates in commands) and `config` (the
    numbers of field execution) override.

    Director-level approval of high-value accounts is a configured rule:
    VISIT_HIGH_VALUE_GRADES (e.g. "A") names the grades whose key-account visits are approved
    by VISIT_HIGH_VALUE_APPROVER (default area_manager) or above instead of the supervisor.
    """
    settings = settings or load(FieldSettings)
    tz = timezone or settings.timezone
    config = config or settings.config(tz)
    photos = PhotoStore()
    return ServiceDefinition(
        name="visit",
        registry=registry,
        build_bus=functools.partial(
            build_field_bus,
            timezone=tz,
            high_value_grades=settings.grades_approved_higher(),
            high_value_approver=settings.high_value_approver,
            config=config,
            photos=photos,
        ),
        projections=[
            CustomerDirectory(tz),
            Catalogue(),
        ],
        reactors=[RouteReassignment(), PhotoErasure()],
        consumes=[Consumes("customer", CUSTOMER_EVENTS), Consumes("orders", ORDERS_EVENTS)],
        routers=[http.router, field_http.router, photo_http.router],
        rules=VisitRules(config, photos),
        timers=[
            Timer("plan_business_day", 300.0, plan_business_day, at_day_start=True),
            Timer("close_business_days", 300.0, close_business_days, at_day_start=True),
            Timer("visit_approval_sla", 60.0, flag_overdue_approvals),
            Timer("complaint_sla", 60.0, flag_breached_complaints),
            Timer("propose_route_plans", PLANNER_SECONDS, propose_route_plans),
            Timer("photo_retention", RETENTION_SECONDS, functools.partial(expire_photos, config=config)),
        ],
        on_start=functools.partial(open_photo_store, photos=photos),
        title="Visit service",
        description=DESCRIPTION,
    )
