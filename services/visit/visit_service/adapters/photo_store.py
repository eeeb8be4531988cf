"""Visit photos in the NATS JetStream Object Store (the platform's NATS; no other server).

One bucket per system, `<SERVICE>_PHOTOS` (`VISIT_PHOTOS`; tests prefix it like the streams),
holding each photo under `<visit id>/<photo id>`; the store keeps the SHA-256 digest of the
bytes, which the visit's events name with the object. Deleting a photo removes its bytes (the
store's chunks are purged), so a deleted photo cannot be read back by anyone.

A store that cannot be reached (NATS down, a request timing out) raises `PhotoStoreUnavailable`,
a ConnectionError: the callers treat it as an outage to wait out, never as a wrong photo.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ObjectMeta, ObjectStoreConfig, StorageType
from nats.js.object_store import ObjectStore

from salesplatform.messaging import Topology

_OUTAGES = (
    nats.errors.TimeoutError,
    nats.errors.ConnectionClosedError,
    nats.errors.NoServersError,
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.js.errors.ServiceUnavailableError,
    asyncio.TimeoutError,
)


class PhotoStoreUnavailable(ConnectionError):
    """The object store cannot be reached now; try again later."""


@dataclass(frozen=True)
class StoredPhoto:
    name: str
    digest: str
    size_bytes: int


class PhotoStore:
    """The photo bucket, opened when the service starts (`bind`)."""

    def __init__(self) -> None:
        self._js: JetStreamContext | None = None
        self._bucket: ObjectStore | None = None
        self.bucket_name = ""
        self.replicas = 1

    async def bind(self, js: JetStreamContext, topology: Topology, *, replicas: int = 1) -> None:
        """Open (or make) the bucket, kept on `replicas` NATS servers like the service's streams."""
        self._js = js
        self.bucket_name = topology.stream("PHOTOS")
        self.replicas = replicas
        self._bucket = None
        await self._open()

    async def _open(self) -> ObjectStore:
        if self._bucket is not None:
            return self._bucket
        if self._js is None:
            raise PhotoStoreUnavailable("the photo store is not opened (the service has not started)")
        try:
            try:
                self._bucket = await self._js.object_store(self.bucket_name)
                await self._keep_replicas(self._js)
            except nats.js.errors.BucketNotFoundError:
                try:
                    self._bucket = await self._js.create_object_store(
                        self.bucket_name,
                        ObjectStoreConfig(
                            description="Photos taken on visits", storage=StorageType.FILE, replicas=self.replicas
                        ),
                    )
                except nats.js.errors.BadRequestError:  # made meanwhile by another instance
                    self._bucket = await self._js.object_store(self.bucket_name)
        except _OUTAGES as exc:
            raise PhotoStoreUnavailable(f"the photo store cannot be reached: {exc!r}") from exc
        return self._bucket

    async def _keep_replicas(self, js: JetStreamContext) -> None:
        """A bucket made with fewer replicas (an earlier version made every one with one) is
        brought to the number asked, as the streams are."""
        stream = f"OBJ_{self.bucket_name}"
        config = (await js.stream_info(stream)).config
        if (config.num_replicas or 1) != self.replicas:
            config.num_replicas = self.replicas
            await js.update_stream(config)

    async def put(self, name: str, data: bytes, content_type: str) -> StoredPhoto:
        bucket = await self._open()
        try:
            info = await bucket.put(name, data, meta=ObjectMeta(name=name, headers={"Content-Type": [content_type]}))
        except _OUTAGES as exc:
            raise PhotoStoreUnavailable(f"the photo could not be stored: {exc!r}") from exc
        return StoredPhoto(name, info.digest or "", int(info.size or 0))

    async def info(self, name: str) -> StoredPhoto | None:
        bucket = await self._open()
        try:
            info = await bucket.get_info(name)
        except nats.js.errors.ObjectNotFoundError:
            return None
        except _OUTAGES as exc:
            raise PhotoStoreUnavailable(f"the photo store cannot be reached: {exc!r}") from exc
        return StoredPhoto(name, info.digest or "", int(info.size or 0))

    async def get(self, name: str) -> bytes | None:
        bucket = await self._open()
        try:
            result = await bucket.get(name)
        except nats.js.errors.ObjectNotFoundError:
            return None
        except _OUTAGES as exc:
            raise PhotoStoreUnavailable(f"the photo store cannot be reached: {exc!r}") from exc
        return bytes(result.data or b"")

    async def delete(self, name: str) -> bool:
        """Remove the photo's bytes; False when there was nothing to remove."""
        bucket = await self._open()
        try:
            await bucket.delete(name)
        except nats.js.errors.ObjectNotFoundError:
            return False
        except _OUTAGES as exc:
            raise PhotoStoreUnavailable(f"the photo could not be deleted: {exc!r}") from exc
        return True
