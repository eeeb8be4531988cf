"""The composition root of the customer service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from customer_service.adapters.dead_letters import dead_letter_guard, open_dead_letter
from customer_service.adapters.http import router
from customer_service.adapters.reception_http import router as reception_router
from customer_service.application import positions
from customer_service.application.handlers import build_bus
from customer_service.application.positions import PositionCorrections
from customer_service.application.timers import FOLLOW_UP_CHECK_SECONDS, follow_up_rules
from customer_service.config import CustomerSettings
from customer_service.domain.events import registry
from customer_service.projections.follow_ups import FollowUps
from customer_service.projections.personal_search import PersonalSearch
from salesplatform.clock import Clock
from salesplatform.commands import CommandBus
from salesplatform.events import EventRegistry
from salesplatform.service import Consumes, ServiceDefinition
from salesplatform.settings import load
from salesplatform.timers import Timer


def build_customer_bus(registry: EventRegistry, clock: Clock, *, timezone: str) -> CommandBus:
    bus = build_bus(registry, clock, timezone=timezone)
    positions.register(bus)
    return bus


def definition(settings: CustomerSettings | None = None) -> ServiceDefinition:
    """`settings`: the service's own (default: from the environment, `config.py`)."""
    settings = settings or load(CustomerSettings)
    return ServiceDefinition(
        name="customer",
        registry=registry,
        build_bus=partial(build_customer_bus, timezone=settings.timezone),
        projections=[
            FollowUps(),
            PersonalSearch(),
        ],
        reactors=[PositionCorrections()],
        consumes=[
            # visits count as follow-ups for the 7-day rule; confirmed check-ins correct the
            # outlet's position
            Consumes("visit", ["visit.checked_in", "visit.check_in_confirmed"]),
            # the first order decides which card survives a merge; a lead with a unit reserved
            # is not released by the 7-day rule
            Consumes("orders", ["order.placed", "unit.reserved", "unit.reservation_released"]),
        ],
        migrations=Path(__file__).parent / "migrations",
        routers=[router, reception_router],
        timers=[Timer("follow_up_rules", FOLLOW_UP_CHECK_SECONDS, follow_up_rules)],
        dead_letter_guard=dead_letter_guard,
        open_dead_letter=open_dead_letter,
        title="Customer service",
        description="The customer archive (客户档案): territory and staff, customer cards, approval of new "
        "outlets, classification, credit, assignment, the 7-day follow-up rule, merges and erasure; the "
        "sales offices (案场): sign-in and reception in turn, lead registers, leads and who they belong to.",
    )
