"""A complaint (投诉): received → acknowledged within 48 hours (48小时内派人或去函) → routed to the
responsible department → resolved (customer misuse is explained to the customer) → closed with
the customer's confirmation. One not acknowledged in 48 hours is flagged as breached."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError
from salesplatform.events import Event
from visit_service.domain.access import Territory
from visit_service.domain.events import (
    ComplaintAcknowledged,
    ComplaintCategory,
    ComplaintClosed,
    ComplaintReceived,
    ComplaintResolved,
    ComplaintRouted,
    ComplaintSlaBreached,
    Department,
)

ACKNOWLEDGE_SLA = timedelta(hours=48)

# Where a complaint goes unless someone routes it elsewhere: quality to production, design to
# technical, transport damage to logistics, service to sales.
DEFAULT_DEPARTMENT: dict[str, Department] = {
    "quality": "production",
    "technical": "technical",
    "logistics": "logistics",
    "service": "sales",
}

Status = Literal["received", "acknowledged", "routed", "resolved", "closed"]


class Complaint(Aggregate):
    stream_prefix = "complaint"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.customer_id = ""
        self.category: ComplaintCategory = "service"
        self.status: Status = "received"
        self.acknowledge_by: datetime | None = None
        self.department: Department | None = None
        self.breach_flagged = False
        self.territory = Territory(None, None, None)

    def apply(self, event: Event) -> None:
        match event:
            case ComplaintReceived():
                self.customer_id = event.customer_id
                self.category = event.category
                self.acknowledge_by = event.acknowledge_by
                self.territory = Territory(event.rep_id, event.district_id, event.area_id)
            case ComplaintAcknowledged():
                self.status = "acknowledged"
            case ComplaintRouted():
                self.status = "routed"
                self.department = event.department
            case ComplaintResolved():
                self.status = "resolved"
            case ComplaintClosed():
                self.status = "closed"
            case ComplaintSlaBreached():
                self.breach_flagged = True

    def receive(
        self,
        *,
        customer_id: str,
        channel: str,
        category: ComplaintCategory,
        severity: str,
        received_at: datetime,
        rep_id: str | None,
        description: str,
        district_id: str | None,
        area_id: str | None,
    ) -> None:
        if self.exists:
            raise DomainError(f"complaint {self.id} already exists", code="complaint_exists")
        self.record(
            ComplaintReceived(
                complaint_id=self.id,
                customer_id=customer_id,
                channel=channel,
                category=category,
                severity=severity,
                received_at=received_at,
                rep_id=rep_id,
                description=description,
                district_id=district_id,
                area_id=area_id,
                acknowledge_by=received_at + ACKNOWLEDGE_SLA,
            )
        )

    def acknowledge(self, at: datetime, by: str) -> None:
        if self.status != "received":
            raise DomainError(f"complaint {self.id} is already acknowledged", code="already_acknowledged")
        assert self.acknowledge_by is not None
        self.record(ComplaintAcknowledged(complaint_id=self.id, at=at, within_sla=at <= self.acknowledge_by, by=by))

    def route(self, department: Department | None) -> None:
        """Route to `department`, or to the category's default one; re-routing is allowed until
        the complaint is resolved."""
        if self.status == "received":
            raise DomainError("acknowledge the complaint before routing it", code="not_acknowledged")
        if self.status in ("resolved", "closed"):
            raise DomainError(f"complaint {self.id} is already {self.status}", code=f"already_{self.status}")
        target = department or DEFAULT_DEPARTMENT[self.category]
        if target == self.department:
            raise DomainError(f"complaint {self.id} is already with {target}", code="already_routed")
        self.record(ComplaintRouted(complaint_id=self.id, department=target))

    def resolve(self, resolution: str, customer_misuse: bool) -> None:
        if self.status in ("received", "acknowledged"):
            raise DomainError("route the complaint to a department before resolving it", code="not_routed")
        if self.status in ("resolved", "closed"):
            raise DomainError(f"complaint {self.id} is already {self.status}", code=f"already_{self.status}")
        self.record(ComplaintResolved(complaint_id=self.id, resolution=resolution, customer_misuse=customer_misuse))

    def close(self) -> None:
        """Closed only with the customer's confirmation (the command cannot say otherwise)."""
        if self.status == "closed":
            raise DomainError(f"complaint {self.id} is already closed", code="already_closed")
        if self.status != "resolved":
            raise DomainError("a complaint is closed only after it is resolved", code="not_resolved")
        self.record(ComplaintClosed(complaint_id=self.id, customer_confirmed=True))

    def flag_breach(self, now: datetime) -> None:
        if self.status != "received":
            raise DomainError(f"complaint {self.id} was acknowledged", code="already_acknowledged")
        if self.breach_flagged:
            raise DomainError(f"complaint {self.id} is already flagged", code="already_flagged")
        assert self.acknowledge_by is not None
        if now <= self.acknowledge_by:
            raise DomainError(
                f"complaint {self.id} may be acknowledged until {self.acknowledge_by.isoformat()}", code="not_overdue"
            )
        self.record(ComplaintSlaBreached(complaint_id=self.id, customer_id=self.customer_id))
