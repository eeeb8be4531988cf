"""Field execution at the outlet: where a check-in happened, the audit against the channel's
standard picture, photo evidence, and the supervisor's side of it (confirming a check-in,
reviewing photos, defining standard pictures, closing the monthly route cleanup)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from salesplatform.commands import CommandBus, invalid
from salesplatform.errors import DomainError
from salesplatform.events import Role
from salesplatform.uow import UnitOfWork
from visit_service.adapters.photo_store import PhotoStore
from visit_service.application.handlers import (
    LINE,
    SUPERVISORS,
    SYSTEM,
    TIMERS,
    open_visit,
    today,
    visit_result,
    visit_territory,
)
from visit_service.config import FieldConfig
from visit_service.domain.access import Territory, ensure_supervises
from visit_service.domain.check_in import assess_position
from visit_service.domain.commands import (
    AttachPhoto,
    AuditMerchandising,
    CheckIn,
    CloseRouteCleanup,
    ConfirmCheckIn,
    DefineStandardPicture,
    ExpirePhoto,
    ReviewPhoto,
)
from visit_service.domain.geo import Point
from visit_service.domain.merchandising import compare_with_standard
from visit_service.domain.standards import (
    RouteCleanup,
    StandardPicture,
    cleanup_id_for,
    cleanup_report,
    month_end,
)
from visit_service.domain.visit import Visit
from visit_service.queries import directory, field, visits

MANAGERS = {Role.sales_manager, Role.general_manager}


# -- check-ins ------------------------------------------------------------------------------------


async def check_in(cmd: CheckIn, uow: UnitOfWork, *, config: FieldConfig) -> dict[str, Any]:
    """Step 1: check in at the outlet; the position is judged against the outlet's."""
    visit = await open_visit(uow, cmd.visit_id)
    customer = await directory.customer(uow.conn, visit.customer_id)
    outlet = None
    if customer is not None and customer["latitude"] is not None and customer["longitude"] is not None:
        outlet = Point(customer["latitude"], customer["longitude"])
    day = today(uow, config.timezone)
    # Check-ins at the same coordinates decide one after the other, each seeing the last.
    await uow.claim(f"check_in_position:{cmd.latitude!r}:{cmd.longitude!r}")
    repeated = await visits.checked_in_at(
        uow.conn,
        cmd.latitude,
        cmd.longitude,
        visit.customer_id,
        day - timedelta(days=config.positions.repeat_window_days),
    )
    position = assess_position(Point(cmd.latitude, cmd.longitude), cmd.accuracy_m, outlet, config.positions, repeated)
    visit.check_in(uow.clock.now(), cmd.latitude, cmd.longitude, day, cmd.accuracy_m, position)
    await uow.save(visit)
    return visit_result(visit) | {
        "position_verified": position.verified,
        "distance_m": position.distance_m,
        "flags": list(position.flags),
    }


async def confirm_check_in(cmd: ConfirmCheckIn, uow: UnitOfWork) -> dict[str, Any]:
    """A supervisor vouches the rep was at the outlet: the outlet's position is corrected."""
    visit = await uow.get(Visit, cmd.visit_id)
    ensure_supervises(uow.actor, visit_territory(visit), f"visit {cmd.visit_id}")
    visit.confirm_check_in(uow.actor.id, cmd.note)
    await uow.save(visit)
    return visit_result(visit) | {"confirmed_by": uow.actor.id}


# -- the audit against the standard picture --------------------------------------------------------


async def audit_merchandising(cmd: AuditMerchandising, uow: UnitOfWork) -> dict[str, Any]:
    """Step 3: required SKUs, price tags, display, and the channel's standard picture."""
    visit = await open_visit(uow, cmd.visit_id)
    customer = await directory.known_customer(uow.conn, visit.customer_id)
    required = await directory.required_skus(uow.conn, customer["channel"])
    standard = await uow.load(StandardPicture, customer["channel"] or "")
    comparison = compare_with_standard([i.code for i in standard.items], cmd.checklist)
    visit.audit_merchandising(
        required,
        cmd.present_skus,
        cmd.price_tags_ok,
        cmd.display_ok,
        await directory.known_skus(uow.conn, cmd.present_skus),
        comparison,
        cmd.photo_ids,
    )
    await uow.save(visit)
    return visit_result(visit) | {
        "missing_skus": [s for s in required if s not in cmd.present_skus],
        "standard_met": comparison.met if comparison else None,
        "missing_items": list(comparison.missing) if comparison else [],
    }


async def define_standard_picture(cmd: DefineStandardPicture, uow: UnitOfWork) -> dict[str, Any]:
    """A channel's standard success picture, as the checklist of the audit."""
    picture = await uow.load(StandardPicture, cmd.channel)
    picture.define(cmd.items, uow.actor.id)
    await uow.save(picture)
    return {"channel": cmd.channel, "items": [i.code for i in cmd.items], "version": picture.version}


# -- photos -----------------------------------------------------------------------------------------


def object_name_for(visit_id: str, photo_id: str) -> str:
    return f"{visit_id}/{photo_id}"


async def attach_photo(cmd: AttachPhoto, uow: UnitOfWork, *, photos: PhotoStore) -> dict[str, Any]:
    """Record a photo the object store holds (the upload endpoint puts it there first)."""
    visit = await open_visit(uow, cmd.visit_id)
    if cmd.object_name != object_name_for(visit.id, cmd.photo_id):
        raise DomainError(
            f"photo {cmd.photo_id} of visit {visit.id} is kept as {object_name_for(visit.id, cmd.photo_id)}",
            code="wrong_object_name",
            field="object_name",
        )
    stored = await photos.info(cmd.object_name)
    if stored is None or stored.digest != cmd.digest or stored.size_bytes != cmd.size_bytes:
        raise DomainError(
            f"the photo store holds no object {cmd.object_name} with this digest and size",
            code="photo_not_stored",
            field="object_name",
        )
    visit.attach_photo(
        cmd.photo_id,
        kind=cmd.kind,
        object_name=cmd.object_name,
        digest=cmd.digest,
        size_bytes=cmd.size_bytes,
        content_type=cmd.content_type,
        taken_by=uow.actor.id,
        taken_at=uow.clock.now(),
    )
    await uow.save(visit)
    return visit_result(visit) | {"photo_id": cmd.photo_id, "object_name": cmd.object_name, "digest": cmd.digest}


async def review_photo(cmd: ReviewPhoto, uow: UnitOfWork) -> dict[str, Any]:
    """The supervisor's verdict on a photo: it shows what the visit card says, or not."""
    visit = await uow.get(Visit, cmd.visit_id)
    ensure_supervises(uow.actor, visit_territory(visit), f"visit {cmd.visit_id}")
    visit.review_photo(cmd.photo_id, cmd.verdict, cmd.note, uow.actor.id)
    await uow.save(visit)
    return {"visit_id": visit.id, "photo_id": cmd.photo_id, "verdict": cmd.verdict}


async def expire_photo(cmd: ExpirePhoto, uow: UnitOfWork, *, photos: PhotoStore, config: FieldConfig) -> dict[str, Any]:
    """Delete a photo kept its retention time: the bytes first, then the record of it."""
    visit = await uow.get(Visit, cmd.visit_id)
    photo = visit.photos.get(cmd.photo_id)
    if photo is None:
        raise DomainError(f"photo {cmd.photo_id} is not a photo of visit {visit.id}", code="unknown_photo")
    due = photo.taken_at + timedelta(days=config.photos.retention_days)
    if not photo.removed_ and uow.clock.now() < due:
        raise DomainError(f"photo {cmd.photo_id} is kept until {due.isoformat()}", code="not_due")
    if not photo.removed_:
        await photos.delete(photo.object_name)
    visit.remove_photo(cmd.photo_id, "retention")
    await uow.save(visit)
    return {"visit_id": visit.id, "photo_id": cmd.photo_id, "removed": "retention"}


# -- the monthly route cleanup ----------------------------------------------------------------------


async def close_route_cleanup(cmd: CloseRouteCleanup, uow: UnitOfWork, *, config: FieldConfig) -> dict[str, Any]:
    """Close the district's cleanup of the month; the report as it stands is kept with it."""
    district_id = cmd.district_id or uow.actor.district
    if district_id is None:
        raise invalid("district_id", "name the district", "missing")
    area_id = await directory.area_of_district(uow.conn, district_id)
    ensure_supervises(uow.actor, Territory(None, district_id, area_id), f"the route cleanup of district {district_id}")
    day = today(uow, config.timezone)
    report = cleanup_report(
        await field.outlets_on_record(uow.conn, district_id), min(day, month_end(cmd.month)), config.cleanup
    )
    cleanup = await uow.load(RouteCleanup, cleanup_id_for(district_id, cmd.month))
    cleanup.close(
        district_id=district_id, month=cmd.month, closed_by=uow.actor.id, closed_on=day, report=report, notes=cmd.notes
    )
    await uow.save(cleanup)
    return {"cleanup_id": cleanup.id, "district_id": district_id, "month": cmd.month} | {
        "counts": {k: len(v) for k, v in report.items()}
    }


# -- registration -------------------------------------------------------------------------------------


def register(bus: CommandBus, config: FieldConfig, photos: PhotoStore) -> None:
    """The field execution commands on the service's bus."""
    bus.command(CheckIn, roles=LINE, summary="Step 1: check in at the outlet (time, position, accuracy)")(
        partial(check_in, config=config)
    )
    bus.command(ConfirmCheckIn, roles=SUPERVISORS, summary="Confirm a check-in: the outlet is where it was made")(
        confirm_check_in
    )
    bus.command(AuditMerchandising, roles=LINE, summary="Step 3: audit against the standard picture")(
        audit_merchandising
    )
    bus.command(DefineStandardPicture, roles=MANAGERS | SYSTEM, summary="A channel's standard picture (checklist)")(
        define_standard_picture
    )
    bus.command(AttachPhoto, roles=LINE, summary="Record a stored photo on a visit (after the upload)")(
        partial(attach_photo, photos=photos)
    )
    bus.command(ReviewPhoto, roles=SUPERVISORS, summary="A supervisor's verdict on a visit photo")(review_photo)
    bus.command(ExpirePhoto, roles=TIMERS, summary="Delete a photo kept its retention time (retention timer)")(
        partial(expire_photo, photos=photos, config=config)
    )
    bus.command(CloseRouteCleanup, roles=SUPERVISORS, summary="Close the district's monthly route cleanup")(
        partial(close_route_cleanup, config=config)
    )
