"""Complaints (投诉): the flow, default routing, the 48-hour acknowledgement SLA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from salesplatform.errors import DomainError
from visit_service.domain.complaint import ACKNOWLEDGE_SLA, DEFAULT_DEPARTMENT, Complaint
from visit_service.domain.events import ComplaintClosed, ComplaintSlaBreached

pytestmark = pytest.mark.fast

AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def received(category: str = "quality") -> Complaint:
    c = Complaint("k1")
    c.receive(
        customer_id="c1",
        channel="phone",
        category=category,
        severity="high",
        received_at=AT,  # type: ignore[arg-type]
        rep_id="rep-1",
        description="bottles leak",
        district_id="d1",
        area_id="a1",
    )
    return c


def test_received_complaint_must_be_acknowledged_within_48_hours() -> None:
    c = received()
    assert c.pending[0].acknowledge_by == AT + timedelta(hours=48) == AT + ACKNOWLEDGE_SLA
    c.acknowledge(AT + timedelta(hours=48), "rep-1")
    assert c.pending[-1].within_sla is True
    late = received()
    late.acknowledge(AT + timedelta(hours=48, seconds=1), "rep-1")
    assert late.pending[-1].within_sla is False


@pytest.mark.parametrize(
    "category, department",
    [
        ("quality", "production"),
        ("technical", "technical"),
        ("logistics", "logistics"),
        ("service", "sales"),
    ],
)
def test_complaints_are_routed_by_category_by_default(category: str, department: str) -> None:
    c = received(category)
    c.acknowledge(AT, "rep-1")
    c.route(None)
    assert c.pending[-1].department == department == DEFAULT_DEPARTMENT[category]


def test_the_whole_flow_ends_closed_with_the_customers_confirmation() -> None:
    c = received()
    c.acknowledge(AT, "sup-1")
    c.route("technical")
    c.route("production")  # re-routed before it is resolved
    c.resolve("customer misuse, explained: stored in the sun", customer_misuse=True)
    c.close()
    assert isinstance(c.pending[-1], ComplaintClosed) and c.pending[-1].customer_confirmed is True
    assert c.pending[-2].customer_misuse is True
    assert c.status == "closed"


def test_steps_out_of_order_are_refused() -> None:
    c = received()
    for step, code in (
        (lambda: c.route(None), "not_acknowledged"),
        (lambda: c.resolve("x", False), "not_routed"),
        (c.close, "not_resolved"),
    ):
        with pytest.raises(DomainError) as e:
            step()
        assert e.value.code == code
    c.acknowledge(AT, "rep-1")
    with pytest.raises(DomainError) as e:
        c.acknowledge(AT, "rep-1")
    assert e.value.code == "already_acknowledged"
    c.route(None)
    with pytest.raises(DomainError) as e:
        c.route("production")
    assert e.value.code == "already_routed"
    c.resolve("replaced", False)
    with pytest.raises(DomainError) as e:
        c.route("sales")
    assert e.value.code == "already_resolved"
    c.close()
    with pytest.raises(DomainError) as e:
        c.close()
    assert e.value.code == "already_closed"


def test_breach_is_flagged_after_48_hours_once_and_never_after_acknowledgement() -> None:
    c = received()
    with pytest.raises(DomainError) as e:
        c.flag_breach(AT + timedelta(hours=48))
    assert e.value.code == "not_overdue"
    c.flag_breach(AT + timedelta(hours=48, minutes=1))
    assert isinstance(c.pending[-1], ComplaintSlaBreached) and c.pending[-1].customer_id == "c1"
    with pytest.raises(DomainError) as e:
        c.flag_breach(AT + timedelta(hours=50))
    assert e.value.code == "already_flagged"
    answered = received()
    answered.acknowledge(AT + timedelta(hours=1), "rep-1")
    with pytest.raises(DomainError) as e:
        answered.flag_breach(AT + timedelta(hours=49))
    assert e.value.code == "already_acknowledged"
