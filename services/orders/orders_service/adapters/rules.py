"""FastAPI dependency: the order rules the service runs with."""

from __future__ import annotations

from fastapi import Depends

from orders_service.domain.policy import OrderPolicy
from salesplatform.service import Runtime, http_runtime


def order_policy(runtime: Runtime = Depends(http_runtime)) -> OrderPolicy:
    """The service definition's rules (its `OrderPolicy`), read per request."""
    policy: OrderPolicy = runtime.definition.rules
    return policy
