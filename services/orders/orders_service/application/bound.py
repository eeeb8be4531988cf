"""Handlers given their settings (the order rules) when they are registered on the bus."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial, update_wrapper
from typing import Any

from salesplatform.uow import UnitOfWork

Handler = Callable[[Any, UnitOfWork], Awaitable[dict[str, Any]]]


def bound(handler: Callable[..., Awaitable[dict[str, Any]]], **settings: Any) -> Handler:
    """The handler with its settings given, keeping its name and text (the command's summary)."""
    return update_wrapper(partial(handler, **settings), handler)
