"""Photos leave the object store with the customer's personal data, and after their retention.

Erasure: the customer service publishes `customer.personal_data_erased`; the reactor
`photo_erasure` (salesplatform.reactors) sends `erase_customer_photos` for every visit of that
customer with photos attached before the erasure (in the log's order), as
`service:visit:photo_erasure`, keyed by the erasure's event id and the visit; the command
deletes the photos taken before the erasure from the store and records `visit.photo_removed`
(reason `erasure`). The store's delete comes first and is idempotent; while the store cannot be
reached the reactor waits (its batch is tried again later, never dead-lettered), so an erasure
is never lost. A photo already removed is skipped, so reacting again removes nothing more.

Retention: the timer `expire_photos` sends `expire_photo` for every photo kept longer than
VISIT_PHOTO_RETENTION_DAYS (180 by default); the handler deletes the bytes, then records the
removal (reason `retention`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from salesplatform.commands import Command, CommandBus
from salesplatform.events import Role
from salesplatform.reactors import Reaction, Reactor
from salesplatform.store import RecordedEvent
from salesplatform.timers import SystemCommand, TimerRun, send_system_commands
from salesplatform.uow import UnitOfWork
from visit_service.adapters.photo_store import PhotoStore
from visit_service.application.timers import TIMER_ACTOR
from visit_service.config import FieldConfig
from visit_service.domain.visit import Visit
from visit_service.queries.photos import taken_before, visits_with_photos_of

if TYPE_CHECKING:
    from salesplatform.service import Runtime

log = structlog.get_logger(__name__)

ERASED = "customer.personal_data_erased"


class EraseCustomerPhotos(Command):
    """Delete a visit's photos taken before its customer's erasure (sent by the service)."""

    name = "erase_customer_photos"
    visit_id: str
    customer_id: str
    erased_at: datetime


async def erase_customer_photos(cmd: EraseCustomerPhotos, uow: UnitOfWork, *, photos: PhotoStore) -> dict[str, Any]:
    visit = await uow.get(Visit, cmd.visit_id)
    removed: list[str] = []
    for photo in sorted(visit.photos.values(), key=lambda p: p.photo_id):
        if photo.removed_ or photo.taken_at > cmd.erased_at:
            continue
        await photos.delete(photo.object_name)
        visit.remove_photo(photo.photo_id, "erasure")
        removed.append(photo.photo_id)
    if removed:
        await uow.save(visit)
        log.info("customer_photos_erased", customer_id=cmd.customer_id, visit_id=cmd.visit_id, photos=len(removed))
    return {"visit_id": cmd.visit_id, "removed": removed}


def register(bus: CommandBus, photos: PhotoStore) -> None:
    """The command the reactor sends, on the service's bus (only the service sends it)."""
    bus.command(EraseCustomerPhotos, roles={Role.service}, summary=EraseCustomerPhotos.__doc__ or "")(
        partial(erase_customer_photos, photos=photos)
    )


class PhotoErasure(Reactor):
    name = "photo_erasure"
    event_types = frozenset({ERASED})
    # Older releases reacted in a catch-up projection of this name: carry on where it stopped.
    takes_over = "photo_erasure"

    async def react(self, conn: asyncpg.Connection, event: RecordedEvent) -> Sequence[Reaction]:
        customer_id = event.data["customer_id"]
        visit_ids = await visits_with_photos_of(conn, customer_id, event)
        erased_at = event.envelope.occurred_at.isoformat()
        return [
            Reaction(
                EraseCustomerPhotos.name,
                {"visit_id": visit_id, "customer_id": customer_id, "erased_at": erased_at},
                key=visit_id,
            )
            for visit_id in visit_ids
        ]


async def expire_photos(rt: Runtime, *, config: FieldConfig, limit: int = 500) -> TimerRun:
    """Photos kept longer than the retention time are deleted (`expire_photo`, by photo id)."""
    cutoff = rt.clock.now() - timedelta(days=config.photos.retention_days)
    async with rt.pool.acquire() as conn:
        due = await taken_before(conn, cutoff, limit)
    commands = [
        SystemCommand(
            "expire_photo",
            {"visit_id": r["visit_id"], "photo_id": r["photo_id"]},
            f"expire_photo:{r['photo_id']}",
            r["photo_id"],
        )
        for r in due
    ]
    return await send_system_commands(rt, TIMER_ACTOR, commands, not_due={"photo_removed", "not_due"})
