"""Contract tests: what each service consumes is what its producer publishes.

Consumers keep their own copy of the contract (they never import the producer's classes); these
tests hold the copies to the producer's published JSON Schemas, so a renamed event or field
fails here rather than silently in a projection."""

from __future__ import annotations

import pytest

from customer_service.bootstrap import definition as customer
from orders_service.bootstrap import definition as orders
from reporting_service.bootstrap import definition as reporting
from visit_service.bootstrap import definition as visit

pytestmark = pytest.mark.fast

DEFINITIONS = {d.name: d for d in (customer(), visit(), orders(), reporting())}

# The fields other services read from each event's data (the shared contract).
CONTRACT: dict[str, set[str]] = {
    "territory.district_defined": {"district_id", "name", "area_id", "division_id"},
    "territory.area_defined": {"area_id", "name", "division_id"},
    "staff.assigned": {"staff_id", "role", "district_id", "area_id"},
    "customer.registered": {"customer_id", "name", "district_id", "area_id", "rep_id", "channel", "nature", "status"},
    "customer.approved": {"customer_id", "customer_code", "status"},
    "customer.classified": {"customer_id", "channel", "grade", "nature"},
    "customer.credit_limit_set": {"customer_id", "credit_rating", "credit_limit_fen", "payment_terms_days"},
    "customer.assigned": {"customer_id", "rep_id", "district_id", "area_id", "previous_rep_id"},
    "customer.status_changed": {"customer_id", "status"},
    "customer.released": {"customer_id", "rep_id"},
    "customer.claimed": {"customer_id", "rep_id"},
    "customer.merged": {"customer_id", "survivor_id"},
    "visit.planned": {"visit_id", "rep_id", "customer_id", "business_date", "planned"},
    "visit.checked_in": {"visit_id", "rep_id", "customer_id", "business_date", "at"},
    "visit.merchandising_audited": {"visit_id", "required_skus", "present_skus", "price_tags_ok", "display_ok"},
    "visit.cooler_checked": {"visit_id", "cooler_id", "compliant", "misused"},
    "visit.order_suggested": {"visit_id", "lines"},
    "visit.order_taken": {
        "visit_id",
        "rep_id",
        "customer_id",
        "business_date",
        "order_id",
        "lines",
        "suggested_adopted",
    },
    "visit.delivery_confirmed": {"visit_id", "order_id", "delivered"},
    "visit.checked_out": {"visit_id", "successful"},
    "visit.missed": {"visit_id", "rep_id", "customer_id", "business_date"},
    "complaint.received": {"complaint_id", "customer_id", "category", "received_at"},
    "complaint.acknowledged": {"complaint_id", "within_sla"},
    "complaint.sla_breached": {"complaint_id", "customer_id"},
    "survey.recorded": {"survey_id", "customer_id", "period", "satisfied"},
    "sku.defined": {"sku", "name", "product_group", "list_price_fen", "floor_price_fen"},
    "required_skus.set": {"channel", "skus"},
    "order.placed": {
        "order_id",
        "customer_id",
        "rep_id",
        "district_id",
        "area_id",
        "source",
        "lines",
        "amount_fen",
        "business_date",
    },
    "order.confirmed": {"order_id", "deliver_by"},
    "order.delivered": {"order_id", "customer_id", "delivered_at", "on_time"},
    "order.cancelled": {"order_id"},
    "invoice.issued": {"invoice_id", "order_id", "customer_id", "amount_fen", "due_on"},
    "payment.received": {"payment_id", "customer_id", "amount_fen", "allocations"},
    "return.requested": {"return_id", "order_id", "customer_id", "lines", "scope", "reason"},
    "return.approved": {"return_id"},
    "return.resolved": {"return_id", "resolution", "amount_fen"},
    "promotion.planned": {"promotion_id", "starts_on", "ends_on", "skus", "budget_fen"},
    "promotion.cost_incurred": {"promotion_id", "order_id", "cost_fen"},
    # the sales offices: the customer service's reception, read by orders and reporting
    "sales_office.opened": {"project_id", "name", "district_id", "area_id"},
    "reception.signed_in": {"project_id", "business_date", "rep_id"},
    "lead_register.entry_recorded": {
        "project_id",
        "register_kind",
        "entry_no",
        "business_date",
        "at",
        "lead_id",
        "rep_id",
        "basis",
        "new_lead",
        "first_visit",
    },
    "lead.registered": {"lead_id", "project_id", "rep_id", "source", "at"},
    "lead.received": {"lead_id", "following_rep_id", "kind", "again"},
    "lead.lapsed": {"lead_id"},
    "lead.released": {"lead_id"},
    "lead.dispute_decided": {"lead_id", "rep_id", "at"},
    # sales control: the orders service's units, read by the customer service and reporting
    "unit.defined": {
        "unit_id",
        "project_id",
        "building",
        "unit_no",
        "layout_name",
        "rooms",
        "halls",
        "bathrooms",
        "area_sqm",
    },
    "unit.priced": {"unit_id", "project_id", "total_price_fen"},
    "unit.reserved": {"unit_id", "project_id", "lead_id", "credited_rep_id", "price_fen", "business_date"},
    "unit.deposit_received": {"unit_id", "project_id", "agreed_fen", "total_fen", "due_by"},
    "unit.subscribed": {"unit_id", "project_id", "lead_id", "credited_rep_id", "price_fen", "business_date"},
    "unit.contracted": {"unit_id", "project_id", "lead_id", "credited_rep_id", "price_fen", "business_date"},
    "unit.handed_over": {"unit_id", "project_id", "lead_id", "business_date"},
    "unit.reservation_released": {"unit_id", "project_id", "lead_id", "previous_status", "business_date"},
}

PRODUCER = {
    "territory": "customer",
    "staff": "customer",
    "customer": "customer",
    "visit": "visit",
    "complaint": "visit",
    "survey": "visit",
    "sku": "orders",
    "required_skus": "orders",
    "order": "orders",
    "invoice": "orders",
    "payment": "orders",
    "return": "orders",
    "promotion": "orders",
    "sales_office": "customer",
    "reception": "customer",
    "lead_register": "customer",
    "lead": "customer",
    "unit": "orders",
}


def consumed() -> list[tuple[str, str, str]]:
    out = []
    for consumer in DEFINITIONS.values():
        for c in consumer.consumes:
            for event_type in c.event_types or []:
                out.append((consumer.name, c.service, event_type))
    return out


@pytest.mark.parametrize(("consumer", "producer", "event_type"), consumed())
def test_every_consumed_event_type_is_published_by_its_producer(consumer: str, producer: str, event_type: str) -> None:
    assert event_type in DEFINITIONS[producer].registry, (
        f"{consumer} consumes {event_type}, which {producer} does not publish"
    )


@pytest.mark.parametrize("event_type", sorted(CONTRACT))
def test_published_event_has_the_fields_consumers_read(event_type: str) -> None:
    producer = DEFINITIONS[PRODUCER[event_type.split(".")[0]]]
    schema = producer.registry.model(event_type).model_json_schema(by_alias=True)
    missing = CONTRACT[event_type] - set(schema["properties"])
    assert not missing, f"{event_type} lacks {sorted(missing)}"


def test_every_service_documents_its_events_as_json_schema() -> None:
    for definition in DEFINITIONS.values():
        schemas = definition.registry.json_schemas()
        assert "envelope" in schemas
        for event_type, schema in schemas.items():
            if event_type != "envelope":
                assert schema["x-schema-version"] >= 1 and schema["type"] == "object"
