"""The published language (salesplatform.published) names only events their producer records."""

from __future__ import annotations

import pytest

from customer_service.bootstrap import definition as customer
from orders_service.bootstrap import definition as orders
from salesplatform.published import PUBLISHED_BY

pytestmark = pytest.mark.fast

REGISTRIES = {"customer": customer().registry, "orders": orders().registry}


@pytest.mark.parametrize("producer", sorted(PUBLISHED_BY))
def test_every_published_event_is_recorded_by_its_producer(producer: str) -> None:
    unknown = sorted(t for t in PUBLISHED_BY[producer] if t not in REGISTRIES[producer])
    assert unknown == []
