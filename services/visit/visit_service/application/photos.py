"""Photos leave the object store with the customer's personal data, and after their retention.

Erasure: the customer service publishes `customer.personal_data_erased`; the catch-up
projection `photo_erasure` deletes from the store every photo of that customer's visits attached
before the erasure (in the log's order) and records `visit.photo_removed` (reason `erasure`) in
the transaction of its checkpoint. The store's delete comes first and is idempotent; while the
store cannot be reached the projection waits (the batch is tried again later, never
dead-lettered), so an erasure is never lost. It reads only the log and the visits' own streams,
so a replay (a rebuild) finds nothing left to remove.

Retention: the timer `expire_photos` sends `expire_photo` for every photo kept longer than
VISIT_PHOTO_RETENTION_DAYS (180 by default); the handler deletes the bytes, then records the
removal (reason `retention`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg
import structlog

from salesplatform.clock import FixedClock
from salesplatform.events import EventRegistry, service_actor
from salesplatform.projections import Change, Projection
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

REACTOR_ACTOR = service_actor("visit", "photo-erasure")
ERASED = "customer.personal_data_erased"


class PhotoErasure(Projection):
    name = "photo_erasure"
    event_types = frozenset({ERASED})
    # No tables: what it did is in the log (visit.photo_removed, caused by the erasure).
    schema_sql = "SELECT 1"

    def __init__(self, registry: EventRegistry, inline_projections: Sequence[Projection], photos: PhotoStore) -> None:
        self.registry = registry
        self.inline_projections = list(inline_projections)
        self.photos = photos

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        customer_id = event.data["customer_id"]
        visit_ids = await visits_with_photos_of(conn, customer_id, event)
        if not visit_ids:
            return None
        uow = UnitOfWork(
            conn,
            self.registry,
            # The removal takes the time of its cause, so replaying the log gives the same events.
            FixedClock(event.envelope.occurred_at),
            REACTOR_ACTOR,
            self.inline_projections,
            correlation_id=event.envelope.correlation_id,
            causation_id=str(event.envelope.event_id),
        )
        removed: list[str] = []
        for visit_id in visit_ids:
            visit = await uow.get(Visit, visit_id)
            for photo in sorted(visit.photos.values(), key=lambda p: p.photo_id):
                if photo.removed_ or photo.taken_at > event.envelope.occurred_at:
                    continue
                await self.photos.delete(photo.object_name)
                visit.remove_photo(photo.photo_id, "erasure")
                removed.append(photo.photo_id)
            await uow.save(visit)
        if not removed:
            return None
        log.info("customer_photos_erased", customer_id=customer_id, photos=len(removed))
        return [{"customer_id": customer_id, "photos": removed}]


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
