"""What each service declares personal on its commands (left out of dead letters where no key
seals it) names fields the commands really have, as sent."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from customer_service.bootstrap import definition as customer_definition
from orders_service.bootstrap import definition as orders_definition
from reporting_service.bootstrap import definition as reporting_definition
from salesplatform.clock import SystemClock
from salesplatform.commands import WITHHELD, withholding_guard
from visit_service.bootstrap import definition as visit_definition

pytestmark = pytest.mark.fast

DEFINITIONS = [
    customer_definition(),
    visit_definition("Asia/Shanghai"),
    orders_definition(),
    reporting_definition("Asia/Shanghai"),
]
BUSES = {d.name: d.build_bus(d.registry, SystemClock()) for d in DEFINITIONS}


@pytest.mark.parametrize("service", sorted(BUSES))
def test_declared_personal_fields_are_payload_fields(service: str) -> None:
    for name, spec in BUSES[service].specs.items():
        sent_as = {info.alias or field for field, info in spec.command.model_fields.items()}
        assert spec.command.personal_fields <= sent_as, (name, spec.command.personal_fields - sent_as)


def test_free_text_of_a_complaint_is_left_out_and_the_rest_kept() -> None:
    guard = withholding_guard(BUSES["visit"])
    payload = {
        "customer_id": "c1",
        "channel": "phone",
        "category": "quality",
        "severity": "high",
        "description": "王女士说",
    }
    kept, said = asyncio.run(guard("receive_complaint", orjson.dumps(payload)))
    assert orjson.loads(kept) == {**payload, "description": WITHHELD}
    assert said == {"Dlq-Withheld": "description"}
