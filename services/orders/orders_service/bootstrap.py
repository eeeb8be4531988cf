"""The composition root: events, commands, read models, consumers, routes and timers."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from orders_service.adapters.http import router
from orders_service.adapters.units_http import router as units_router
from orders_service.application import reactor
from orders_service.application.handlers import build_bus
from orders_service.application.reactor import VisitOrders
from orders_service.application.timers import check_deadlines
from orders_service.config import OrderRulesSettings
from orders_service.domain.events import registry
from orders_service.domain.policy import OrderPolicy
from orders_service.projections.catalogue import Catalogue
from orders_service.projections.directory import CustomerDirectory
from orders_service.projections.orders import OrderBoard
from orders_service.projections.promotions import Promotions
from orders_service.projections.receivables import Receivables
from orders_service.projections.returns import Returns
from orders_service.projections.sales_control import SalesControl, SalesOffices
from salesplatform.clock import Clock
from salesplatform.commands import CommandBus
from salesplatform.events import EventRegistry
from salesplatform.projections import Projection
from salesplatform.service import Consumes, ServiceDefinition
from salesplatform.settings import load
from salesplatform.timers import Timer

DEADLINE_CHECK_SECONDS = 60.0


def inline_projections(timezone: str = "Asia/Shanghai") -> list[Projection]:
    return [OrderBoard(), Receivables(), Catalogue(), Promotions(), Returns(), SalesControl(timezone)]


def build_orders_bus(
    registry: EventRegistry, clock: Clock, *, policy: OrderPolicy, inline: list[Projection]
) -> CommandBus:
    bus = build_bus(registry, clock, policy, inline)
    reactor.register(bus, policy)
    return bus


def definition(policy: OrderPolicy | None = None) -> ServiceDefinition:
    policy = policy or load(OrderRulesSettings).policy()
    return ServiceDefinition(
        name="orders",
        registry=registry,
        build_bus=partial(build_orders_bus, policy=policy, inline=inline_projections(policy.timezone)),
        projections=[CustomerDirectory(), SalesOffices()],
        reactors=[VisitOrders()],
        migrations=Path(__file__).parent / "migrations",
        consumes=[
            Consumes("customer"),
            Consumes("visit", ["visit.order_taken", "visit.delivery_confirmed"]),
        ],
        routers=[router, units_router],
        timers=[Timer("deadlines", DEADLINE_CHECK_SECONDS, check_deadlines)],
        rules=policy,
        title="Orders service",
        description="Catalogue and prices, orders and deliveries, promotions, deposits, receivables "
        "and returns (退回产品处理单) of the sales department; sales control (销控) of the sales offices' "
        "projects: units, price lists, deposits, subscriptions (认购书), contracts and handover.",
    )
