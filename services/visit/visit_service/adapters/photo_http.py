"""Photo evidence over HTTP: the upload (the image itself as the request body), the photos of
a visit, a photo's bytes, and the supervisor's review queue.

`POST /visits/{visit_id}/photos?kind=shelf|cooler|display` takes the image as the raw body with
its `Content-Type` (image/jpeg, image/png or image/webp by default) and the usual bearer
token. The body must be what its type says (the file's signature is checked) and at most
VISIT_PHOTO_MAX_BYTES (5 MiB by default): else 415 or 413, and nothing is kept. The photo is
put in the object store under `<visit id>/<photo id>` (the photo id derives from the visit and
the bytes' SHA-256, so sending the same photo again names the same photo) and recorded on the
visit with the JSON command `attach_photo`, which checks the store holds exactly that object;
if the command is refused, the stored bytes are deleted again.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any, Literal

import asyncpg
import structlog
from fastapi import APIRouter, Depends, Query
from fastapi import Request as HttpRequest
from fastapi.responses import Response

from salesplatform.commands import Request
from salesplatform.errors import NotFound, ServiceError
from salesplatform.events import Actor
from salesplatform.ids import uuid5
from salesplatform.inputs import Day
from salesplatform.openapi import answers
from salesplatform.service import Runtime, error_response, http_actor, http_runtime
from visit_service.adapters.answers import PhotoReview, VisitPhotos
from visit_service.adapters.photo_store import PhotoStoreUnavailable
from visit_service.adapters.reads import (
    VisitRules,
    date_range,
    existing_visit,
    read_in_scope,
    readable_visit,
    today,
    visit_rules,
)
from visit_service.application.field_work import object_name_for
from visit_service.config import PHOTO_TYPES
from visit_service.domain.access import ensure_can_act, territory_of
from visit_service.queries import photos

log = structlog.get_logger(__name__)

_PHOTO_IDS = uuid.UUID("0d8b6c5e-2a41-4b7f-93e1-7c5a9f3e2b64")

# The first bytes of each image format.
SIGNATURES = {
    "image/jpeg": lambda b: b[:3] == b"\xff\xd8\xff",
    "image/png": lambda b: b[:8] == b"\x89PNG\r\n\x1a\n",
    "image/webp": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
}


class PhotoTooLarge(ServiceError):
    status = 413
    code = "photo_too_large"


class UnsupportedPhoto(ServiceError):
    status = 415
    code = "unsupported_photo_type"


class StoreUnavailable(ServiceError):
    status = 503
    code = "photo_store_unavailable"


class PhotoGone(ServiceError):
    status = 410
    code = "photo_removed"


def photo_id_for(visit_id: str, digest: str) -> str:
    return str(uuid5(_PHOTO_IDS, f"{visit_id}:{digest}"))


def _photo_view(r: asyncpg.Record) -> dict[str, Any]:
    out = dict(r)
    out["content_url"] = None if r["removed"] else f"/visits/{r['visit_id']}/photos/{r['photo_id']}"
    return out


async def _read_body(request: HttpRequest, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    too_large = PhotoTooLarge(f"a photo may hold at most {limit} bytes")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


router = APIRouter(tags=["photos"])


@router.post(
    "/visits/{visit_id}/photos",
    summary="Upload a photo of a visit step (the image as the request body)",
    openapi_extra={
        "requestBody": {
            "required": True,
            # The types a photo may have; VISIT_PHOTO_TYPES may allow fewer.
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in PHOTO_TYPES},
        }
    },
)
async def upload_photo(
    visit_id: str,
    request: HttpRequest,
    kind: Literal["shelf", "cooler", "display"] = Query(...),
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
    rules: VisitRules = Depends(visit_rules),
) -> Any:
    allowed = rules.config.photos
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in allowed.content_types:
        raise UnsupportedPhoto(f"a photo is one of {', '.join(allowed.content_types)}, not {content_type or 'untyped'}")
    data = await _read_body(request, allowed.max_bytes)
    if not data:
        raise UnsupportedPhoto("the request holds no image")
    if not SIGNATURES[content_type](data):
        raise UnsupportedPhoto(f"the body is not a {content_type} image", code="photo_content_mismatch")
    async with runtime.pool.acquire() as conn:
        row = await existing_visit(conn, visit_id)
    ensure_can_act(actor, territory_of(row), f"visit {visit_id}")
    digest = "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
    photo_id = photo_id_for(visit_id, digest)
    name = object_name_for(visit_id, photo_id)
    store = rules.photos
    try:
        stored = await store.info(name)
        if stored is None or stored.digest != digest:
            stored = await store.put(name, data, content_type)
    except PhotoStoreUnavailable as exc:
        raise StoreUnavailable(str(exc)) from exc
    outcome = await runtime.group.submit(
        Request(
            name="attach_photo",
            payload={
                "visit_id": visit_id,
                "photo_id": photo_id,
                "kind": kind,
                "object_name": name,
                "digest": stored.digest,
                "size_bytes": stored.size_bytes,
                "content_type": content_type,
            },
            actor=actor,
            idempotency_key=request.headers.get("idempotency-key") or f"attach_photo:{photo_id}",
            correlation_id=request.headers.get("x-correlation-id"),
        )
    )
    body = {"visit_id": visit_id, "photo_id": photo_id, "object_name": name, "digest": stored.digest}
    if outcome.ok:
        return body | {"size_bytes": stored.size_bytes, "content_type": content_type, "replayed": outcome.replayed}
    assert outcome.error is not None
    if outcome.error.code == "photo_already_attached":
        return body | {"size_bytes": stored.size_bytes, "content_type": content_type, "replayed": True}
    # Refused: keep nothing, unless the same photo was attached meanwhile.
    async with runtime.pool.acquire() as conn:
        attached = await photos.is_attached(conn, photo_id)
    if not attached:
        try:
            await store.delete(name)
        except PhotoStoreUnavailable as exc:
            # Unreferenced bytes no query shows; named in the log for an operator to remove.
            log.warning("refused_photo_not_deleted", object_name=name, error=str(exc))
    return error_response(outcome.error)


@router.get(
    "/visits/{visit_id}/photos",
    summary="The photos of a visit",
    response_model=None,
    responses=answers(VisitPhotos),
)
async def visit_photos(
    visit_id: str, actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        await readable_visit(conn, visit_id, actor)
        rows = await photos.visit_photos(conn, visit_id)
    return {"visit_id": visit_id, "photos": [_photo_view(r) for r in rows]}


@router.get(
    "/visits/{visit_id}/photos/{photo_id}",
    summary="A photo's image",
    response_class=Response,
    responses={200: {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def photo_content(
    visit_id: str,
    photo_id: str,
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
    rules: VisitRules = Depends(visit_rules),
) -> Response:
    async with runtime.pool.acquire() as conn:
        await readable_visit(conn, visit_id, actor)
        photo = await photos.photo(conn, visit_id, photo_id)
    if photo is None:
        raise NotFound(f"visit {visit_id} has no photo {photo_id}", code="photo_not_found")
    if photo["removed"]:
        raise PhotoGone(f"photo {photo_id} was removed ({photo['removed']})")
    try:
        data = await rules.photos.get(photo["object_name"])
    except PhotoStoreUnavailable as exc:
        raise StoreUnavailable(str(exc)) from exc
    if data is None:
        raise PhotoGone(f"photo {photo_id} is no longer in the store")
    return Response(data, media_type=photo["content_type"], headers={"Digest": photo["digest"]})


@router.get(
    "/photos/review",
    summary="Photos for the supervisor's review",
    response_model=None,
    responses=answers(PhotoReview),
)
async def photo_review(
    district_id: str | None = None,
    area_id: str | None = None,
    from_: Day | None = Query(None, alias="from"),
    to: Day | None = None,
    status: Literal["pending", "reviewed", "all"] = "pending",
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
    rules: VisitRules = Depends(visit_rules),
) -> dict[str, Any]:
    """Photos kept in the date range (by the visit's business date) with the visit's audit
    against the standard picture: not yet reviewed by default."""
    start, end = date_range(from_, to, today(runtime, rules.config.timezone))
    scope, rows = await read_in_scope(
        runtime,
        actor,
        district_id,
        area_id,
        "photos",
        lambda conn, scope: photos.for_review(conn, start, end, status, scope),
    )
    items = []
    for r in rows:
        audit = r["merchandising"] or {}
        item = _photo_view(r)
        item.pop("merchandising", None)
        item["audit"] = {
            "standard_met": audit.get("standard_met"),
            "missing_items": audit.get("missing_items", []),
            "checklist": audit.get("checklist"),
            "cites_this_photo": r["photo_id"] in (audit.get("photo_ids") or []),
        }
        items.append(item)
    return {"from": start, "to": end, "district_id": scope.district_id, "area_id": scope.area_id, "photos": items}
