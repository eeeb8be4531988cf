"""A route plan (路序方案): asked for, proposed by the planner, then adopted or rejected by a
supervisor. Adoption replaces the rep's routes with the plan's days (the handler does that on
the routes); the plan's own stream records the decision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError, PermissionDenied
from salesplatform.events import Event
from visit_service.domain.events import (
    PlanDay,
    PlanRules,
    RoutePlanAdopted,
    RoutePlanFailed,
    RoutePlanProposed,
    RoutePlanRejected,
    RoutePlanRequested,
    Unplaced,
)

Status = Literal["new", "requested", "proposed", "failed", "adopted", "rejected"]


class RoutePlan(Aggregate):
    stream_prefix = "route_plan"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status: Status = "new"
        self.rep_id = ""
        self.district_id: str | None = None
        self.area_id: str | None = None
        self.requested_by = ""
        self.start: tuple[float, float] = (0.0, 0.0)
        self.effective_from: date = date.min
        self.rules: PlanRules | None = None
        self.matrix: dict[str, dict[str, float]] | None = None
        self.days: list[PlanDay] = []
        self.cycle_weeks = 1

    def apply(self, event: Event) -> None:
        match event:
            case RoutePlanRequested():
                self.status = "requested"
                self.rep_id, self.district_id, self.area_id = event.rep_id, event.district_id, event.area_id
                self.requested_by = event.requested_by
                self.start = (event.start_latitude, event.start_longitude)
                self.effective_from = event.effective_from
                self.rules = event.rules
                self.matrix = event.matrix
            case RoutePlanProposed():
                self.status = "proposed"
                self.days = list(event.days)
                self.cycle_weeks = event.cycle_weeks
            case RoutePlanFailed():
                self.status = "failed"
            case RoutePlanAdopted():
                self.status = "adopted"
            case RoutePlanRejected():
                self.status = "rejected"

    def request(
        self,
        *,
        rep_id: str,
        district_id: str | None,
        area_id: str | None,
        requested_by: str,
        start: tuple[float, float],
        effective_from: date,
        rules: PlanRules,
        matrix: dict[str, dict[str, float]] | None,
    ) -> None:
        if self.exists:
            raise DomainError(f"route plan {self.id} already exists", code="plan_exists")
        if effective_from.isoweekday() != 1:
            raise DomainError("a plan takes effect on a Monday", code="not_a_monday", field="effective_from")
        self.record(
            RoutePlanRequested(
                plan_id=self.id,
                rep_id=rep_id,
                district_id=district_id,
                area_id=area_id,
                requested_by=requested_by,
                start_latitude=start[0],
                start_longitude=start[1],
                effective_from=effective_from,
                rules=rules,
                matrix=matrix,
            )
        )

    def _require(self, *allowed: Status) -> None:
        if self.status not in allowed:
            raise DomainError(
                f"route plan {self.id} is {self.status}, not {' or '.join(allowed)}", code=f"plan_{self.status}"
            )

    def propose(
        self,
        *,
        cycle_weeks: int,
        days: Sequence[PlanDay],
        current_distance_m: float,
        proposed_distance_m: float,
        unplaced: Sequence[Unplaced],
        unmeasured: Sequence[str],
        solver: dict[str, Any],
    ) -> None:
        self._require("requested")
        self.record(
            RoutePlanProposed(
                plan_id=self.id,
                rep_id=self.rep_id,
                cycle_weeks=cycle_weeks,
                effective_from=self.effective_from,
                days=list(days),
                current_distance_m=current_distance_m,
                proposed_distance_m=proposed_distance_m,
                unplaced=list(unplaced),
                unmeasured=list(unmeasured),
                solver=solver,
            )
        )

    def fail(self, reason: str) -> None:
        self._require("requested")
        self.record(RoutePlanFailed(plan_id=self.id, rep_id=self.rep_id, reason=reason))

    def check_decider(self, decider_id: str) -> None:
        """Refused unless the plan is proposed and the decider is not its rep."""
        self._require("proposed")
        if decider_id == self.rep_id:
            raise PermissionDenied("a rep does not adopt or reject their own route plan", code="own_request")

    def adopt(self, adopted_by: str, route_ids: Sequence[str], retired_route_ids: Sequence[str]) -> None:
        self.check_decider(adopted_by)
        self.record(
            RoutePlanAdopted(
                plan_id=self.id,
                rep_id=self.rep_id,
                adopted_by=adopted_by,
                effective_from=self.effective_from,
                route_ids=list(route_ids),
                retired_route_ids=list(retired_route_ids),
            )
        )

    def reject(self, rejected_by: str, reason: str) -> None:
        self.check_decider(rejected_by)
        self.record(RoutePlanRejected(plan_id=self.id, rep_id=self.rep_id, rejected_by=rejected_by, reason=reason))
