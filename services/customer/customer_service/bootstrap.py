"""The composition root of the customer service."""

from __future__ import annotations

from pathlib import Path

from customer_service.adapters.http import router
from customer_service.application.handlers import build_bus
from customer_service.application.positions import PositionCorrections
from customer_service.application.timers import FOLLOW_UP_CHECK_SECONDS, release_neglected_prospects
from customer_service.domain.events import registry
from customer_service.projections.customers import CustomerDirectory
from customer_service.projections.follow_ups import FollowUps
from customer_service.projections.personal_search import PersonalSearch
from customer_service.projections.territory import TerritoryDirectory
from salesplatform.service import Consumes, ServiceDefinition


def definition() -> ServiceDefinition:
    return ServiceDefinition(
        name="customer",
        registry=registry,
        build_bus=build_bus,
        projections=[
            FollowUps(),
            PersonalSearch(),
            PositionCorrections(registry, [TerritoryDirectory(), CustomerDirectory()]),
        ],
        consumes=[
            # visits count as follow-ups for the 7-day rule; confirmed check-ins correct the
            # outlet's position
            Consumes("visit", ["visit.checked_in", "visit.check_in_confirmed"]),
            # the first order decides which card survives a merge
            Consumes("orders", ["order.placed"]),
        ],
        migrations=Path(__file__).parent / "migrations",
        routers=[router],
        timers=[("release_neglected_prospects", FOLLOW_UP_CHECK_SECONDS, release_neglected_prospects)],
        title="Customer service",
        description="The customer archive (客户档案): territory and staff, customer cards, approval of new "
        "outlets, classification, credit, assignment, the 7-day follow-up rule, merges and erasure.",
    )
