"""The composition root of the reporting service."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from reporting_service.adapters import http, office_http
from reporting_service.adapters.changes import ChangeNotice, publish_changes
from reporting_service.application.handlers import build_bus
from reporting_service.application.office import PERFORMANCE_CHECK_SECONDS, performance_timer
from reporting_service.config import OfficeRules
from reporting_service.domain.events import registry
from reporting_service.domain.reports import CHANGE_SUBJECTS, REPORTS
from reporting_service.projections.directory import DirectoryProjection
from reporting_service.projections.field import FieldWorkProjection
from reporting_service.projections.receivables import ReceivablesProjection
from reporting_service.projections.sales import SalesProjection
from reporting_service.projections.sales_office import SalesOfficeProjection
from reporting_service.projections.service_quality import ServiceQualityProjection
from salesplatform.service import Consumes, ServiceDefinition
from salesplatform.timers import Timer

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """
Reports, targets and the KPI board of the sales department, built as projections of the other
services' events (kept in this service's own log, so any report can be rebuilt from it).
Every report route describes what it counts: numerator, denominator, events and date.
Report consumers subscribe to core-NATS `reporting.changed.<report>`.
"""


def _notice_text(report: str) -> str:
    title = REPORTS[report].title if report in REPORTS else "targets"
    return f"What changed in the report {title} (core NATS, at most once), after each committed batch."


def definition(timezone: str = "Asia/Shanghai", office_rules: OfficeRules | None = None) -> ServiceDefinition:
    rules = office_rules or OfficeRules()
    return ServiceDefinition(
        name="reporting",
        registry=registry,
        build_bus=partial(build_bus, timezone=timezone, rules=rules),
        projections=[
            DirectoryProjection(timezone),
            SalesProjection(timezone),
            FieldWorkProjection(timezone),
            ServiceQualityProjection(timezone),
            ReceivablesProjection(timezone),
            SalesOfficeProjection(timezone),
        ],
        consumes=[Consumes("customer"), Consumes("visit"), Consumes("orders")],
        migrations=MIGRATIONS,
        routers=[http.routes, office_http.routes],
        timers=[Timer("performance_warnings", PERFORMANCE_CHECK_SECONDS, performance_timer)],
        on_changes=publish_changes,
        rules=rules,
        extra_publishers=[(f"changed.{report}", ChangeNotice, _notice_text(report)) for report in CHANGE_SUBJECTS],
        title="Reporting service",
        description=DESCRIPTION,
    )
