"""Records filed once and never changed: satisfaction surveys (满意度调查), key-account visit
reports (走访用户报告单), ride-along coaching notes (跟线) and delivery spot checks."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date

from salesplatform.aggregate import Aggregate
from salesplatform.errors import DomainError
from salesplatform.events import Event
from salesplatform.ids import uuid5
from visit_service.domain.events import (
    CoachingRecorded,
    DeliverySpotChecked,
    KeyAccountReportFiled,
    ReportIssue,
    SurveyRecorded,
)

_SURVEY_IDS = uuid.UUID("0b6c2d7e-57a1-4c64-9d3e-5c1d3c1f2a01")


def half_year(day: date) -> str:
    """The survey period a day falls in: `2026H1` (January–June) or `2026H2`."""
    return f"{day.year}H{1 if day.month <= 6 else 2}"


def survey_id_for(customer_id: str, period: str) -> str:
    """One survey per customer and half year: the id is derived from both, so a second survey
    of the same period lands on the same stream and is refused."""
    return str(uuid5(_SURVEY_IDS, f"{customer_id}:{period}"))


class _Once(Aggregate):
    what = "record"

    def apply(self, event: Event) -> None:
        self.recorded = event

    def _first(self) -> None:
        if self.exists:
            raise DomainError(f"{self.what} {self.id} already exists", code=f"{self.stream_prefix}_exists")


class Survey(_Once):
    stream_prefix = "survey"
    what = "survey"

    def record_results(
        self,
        *,
        customer_id: str,
        period: str,
        scores: Mapping[str, int],
        satisfied: bool,
        rep_id: str | None,
        business_date: date,
        district_id: str | None,
        area_id: str | None,
    ) -> None:
        if self.exists:
            raise DomainError(f"customer {customer_id} is already surveyed for {period}", code="survey_exists")
        self.record(
            SurveyRecorded(
                survey_id=self.id,
                customer_id=customer_id,
                period=period,
                scores=dict(scores),
                satisfied=satisfied,
                rep_id=rep_id,
                business_date=business_date,
                district_id=district_id,
                area_id=area_id,
            )
        )


class KeyAccountReport(_Once):
    stream_prefix = "key_account_report"
    what = "key-account report"

    def file(
        self,
        *,
        customer_id: str,
        issues: Sequence[ReportIssue],
        summary: str,
        filed_by: str,
        filed_on: date,
        visit_id: str | None,
        district_id: str | None,
        area_id: str | None,
    ) -> None:
        self._first()
        self.record(
            KeyAccountReportFiled(
                report_id=self.id,
                customer_id=customer_id,
                issues=list(issues),
                summary=summary,
                filed_by=filed_by,
                filed_on=filed_on,
                visit_id=visit_id,
                district_id=district_id,
                area_id=area_id,
            )
        )


class Coaching(_Once):
    stream_prefix = "coaching"
    what = "coaching note"

    def record_note(
        self,
        *,
        supervisor_id: str,
        rep_id: str,
        business_date: date,
        notes: str,
        strengths: Sequence[str],
        improvements: Sequence[str],
        visit_id: str | None,
        customer_id: str | None,
    ) -> None:
        self._first()
        if supervisor_id == rep_id:
            raise DomainError("a supervisor coaches a rep, not themselves", code="self_coaching")
        self.record(
            CoachingRecorded(
                coaching_id=self.id,
                supervisor_id=supervisor_id,
                rep_id=rep_id,
                business_date=business_date,
                notes=notes,
                strengths=list(strengths),
                improvements=list(improvements),
                visit_id=visit_id,
                customer_id=customer_id,
            )
        )


class SpotCheck(_Once):
    stream_prefix = "spot_check"
    what = "delivery spot check"

    def record_check(
        self,
        *,
        order_id: str,
        customer_id: str,
        checked_by: str,
        business_date: date,
        delivered: bool,
        on_time: bool | None,
        quantities_match: bool,
        notes: str,
    ) -> None:
        self._first()
        if not delivered and on_time:
            raise DomainError("an undelivered order cannot be on time", code="inconsistent_check", field="on_time")
        self.record(
            DeliverySpotChecked(
                spot_check_id=self.id,
                order_id=order_id,
                customer_id=customer_id,
                checked_by=checked_by,
                business_date=business_date,
                delivered=delivered,
                on_time=on_time,
                quantities_match=quantities_match,
                notes=notes,
            )
        )
