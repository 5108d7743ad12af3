"""Image data: upload (``PUT /file``), staging (``PUT /stage``) and download, streamed.

An upload never holds the image in memory: chunks are gathered into 2 MiB batches (lists
of the received chunks, not copied); while the next batches arrive, earlier ones are hashed
(md5 and sha512, each in a worker thread) and written to the store (a third), so receiving,
hashing and writing overlap (at most 2 batches in flight). The format
inspector sees every chunk as it arrives and stops a bad upload after its first MiB.

Failure semantics: whatever goes wrong (bad data, quota, size cap, client gone, store error,
cancellation), the store writer is aborted (no half-written file anywhere) and the image goes
back to ``queued`` for a retry; it is never ``active`` without all its data. If removing the
partial data fails the image becomes ``killed`` instead. An image deleted during its upload
gets its data removed and the uploader a 410.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import ctypes.util
import functools
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.blocking import run_blocking
from stackling.common.errors import BadRequest, Gone, PayloadTooLarge, UnsupportedMediaType
from stackling.common.timeutils import utcnow
from stackling.image.inspect import FormatInspector, ImageFormatError, Inspection
from stackling.image.models import Image
from stackling.image.service import quotas
from stackling.image.service.glance import ImageService
from stackling.image.service.images import transition_error
from stackling.image.service.records import ImageRecord, cas, load
from stackling.image.stores import Store, StoreFull, StoreWriter
from stackling.image.stores.base import Chunk

LOG = logging.getLogger(__name__)
BATCH: Final = 2 << 20
DEPTH: Final = 2
CLAIM_STEP: Final = 64 << 20
TRIM_AFTER: Final = 64 << 20
HASH_ALGO: Final = "sha512"


class InvalidImageData(UnsupportedMediaType):
    """Glance answers a format mismatch or a failed safety check with 415."""


@dataclass
class Received:
    size: int
    checksum: str
    hash_value: str
    inspection: Inspection | None


def _hash_all(hasher: Any, chunks: list[Chunk]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


async def pump(chunks: AsyncIterator[Chunk], writer: StoreWriter,
               inspector: FormatInspector | None, limit: int,
               on_size: Callable[[int], Awaitable[None]] | None = None) -> Received:
    """Stream ``chunks`` into ``writer``, hashing and inspecting on the way. Raises
    PayloadTooLarge past ``limit`` bytes and InvalidImageData for unsafe data; the caller
    aborts the writer on any exception.

    Chunks are never copied: a batch (a list of the received chunks, about ``BATCH`` bytes)
    goes to three lanes (md5, sha512, the store's write), each a chain of worker-thread
    calls that keeps the batches in order. Up to ``DEPTH`` batches are in flight, so the
    event loop keeps receiving while the threads work."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha512()
    lanes: list[asyncio.Future[Any] | None] = [None, None, None]
    in_flight: collections.deque[asyncio.Future[Any]] = collections.deque()
    batch: list[Chunk] = []
    batched = 0
    size = 0

    async def after(prev: asyncio.Future[Any] | None,
                    work: Callable[[], Awaitable[Any]]) -> None:
        if prev is not None:
            await prev
        await work()

    def dispatch(data: list[Chunk]) -> None:
        works: list[Callable[[], Awaitable[Any]]] = [
            functools.partial(run_blocking, _hash_all, md5, data),
            functools.partial(run_blocking, _hash_all, sha, data),
            functools.partial(writer.write, data)]
        for i, work in enumerate(works):
            lanes[i] = asyncio.ensure_future(after(lanes[i], work))
        in_flight.append(asyncio.gather(*[lane for lane in lanes if lane is not None]))

    try:
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The incoming image is too large: more than {limit} "
                                      "bytes")
            if inspector is not None:
                inspector.feed(chunk)
            if on_size is not None:
                await on_size(size)
            batch.append(chunk)
            batched += len(chunk)
            if batched >= BATCH:
                while len(in_flight) >= DEPTH:
                    await in_flight.popleft()
                dispatch(batch)
                batch, batched = [], 0
        if batch:
            dispatch(batch)
        while in_flight:
            await in_flight.popleft()
        inspection = inspector.finish() if inspector is not None else None
    except ImageFormatError as exc:
        raise InvalidImageData(str(exc)) from exc
    finally:
        pending = [f for f in [*in_flight, *lanes] if f is not None and not f.done()]
        for future in pending:
            future.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        batch = []
        if size > TRIM_AFTER:
            await run_blocking(release_memory)
    return Received(size, md5.hexdigest(), sha.hexdigest(), inspection)


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        func: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c") or
                                                 "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return func


_malloc_trim = _load_malloc_trim()


def release_memory() -> None:
    """Give the heap memory a big transfer freed back to the system (glibc keeps freed
    small blocks otherwise, and the process grows a little with every upload)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


class Claim:
    """Bytes an upload claims against a size quota, grown in steps as data arrives."""

    def __init__(self, svc: ImageService, record: ImageRecord, resource: str, status: str,
                 claimed: int) -> None:
        self.svc = svc
        self.image_id = record.id
        self.project = record.owner
        self.quota = quotas.limits(svc.conf, record.owner)
        self.resource = resource
        self.status = status
        self.claimed = claimed
        self.active = bool(self.project) and getattr(self.quota, resource) >= 0

    async def grow(self, size: int) -> None:
        """Claim at least ``size`` bytes (and up to CLAIM_STEP more, as the quota allows, so
        the next chunks need no database round trip). 413 when even ``size`` is over."""
        if not self.active or size <= self.claimed or self.project is None:
            return
        limit = getattr(self.quota, self.resource) * quotas.MIB
        async with self.svc.db.write() as session:
            await quotas.lock(session, self.project)
            used = (await quotas.usage(session, self.project))[self.resource]
            headroom = limit - (used - self.claimed)
            if size > headroom:
                raise quotas.over_limit(self.project, self.resource,
                                        getattr(self.quota, self.resource),
                                        (used - self.claimed) // quotas.MIB,
                                        -(-size // quotas.MIB))
            new = min(max(size, self.claimed + CLAIM_STEP), headroom)
            await session.execute(update(Image).where(
                Image.id == self.image_id, Image.status == self.status)
                .values(reserved=new))
        self.claimed = new


def _require_formats(record: ImageRecord) -> None:
    missing = [k for k in ("disk_format", "container_format") if not getattr(record, k)]
    if len(missing) == 1:
        raise BadRequest(f"Property {missing[0]} must be set prior to saving data.")
    if missing:
        raise BadRequest(f"Properties {', '.join(missing)} must be set prior to saving data.")


async def _begin(svc: ImageService, record: ImageRecord, expect: str, new: str,
                 deltas: dict[str, int], reserved: int) -> None:
    """CAS ``expect`` -> ``new`` with the quota checks, in one transaction."""
    quota = quotas.limits(svc.conf, record.owner)
    wanted = {k: v for k, v in deltas.items() if getattr(quota, k) >= 0}
    if wanted and record.owner:
        await quotas.ensure_lock_row(svc.db, record.owner)
    async with svc.db.write() as session:
        if wanted and record.owner:
            await quotas.lock(session, record.owner)
            await quotas.check(session, quota, record.owner, wanted)
        if not await _cas(session, record.id, expect, new, reserved=reserved):
            current = await load(session, record.id)
            raise transition_error(current.status if current else "deleted", new)


async def _cas(session: AsyncSession, image_id: str, expect: str, new: str, **values: Any
               ) -> bool:
    """Move the image from status ``expect`` to ``new`` (with ``values``) if it still is."""
    result = await session.execute(
        update(Image).where(Image.id == image_id, ~Image.deleted, Image.status == expect)
        .values(status=new, updated_at=utcnow(), revision=Image.revision + 1, **values))
    return bool(getattr(result, "rowcount", 0) == 1)


async def _give_up(svc: ImageService, record: ImageRecord, writer: StoreWriter, status: str,
                   **revert: Any) -> None:
    """Abort the write and put the image back to ``queued`` (``killed`` if the partial
    data could not be removed)."""
    back = "queued"
    try:
        await writer.abort()
    except Exception:
        LOG.exception("image %s: could not remove partial data", record.id)
        back = "killed"
    try:
        async with svc.db.write() as session:
            await _cas(session, record.id, status, back, reserved=0, **revert)
    except Exception:
        LOG.exception("image %s: could not restore its status after a failed upload",
                      record.id)


def _store_failure(exc: Exception) -> Exception:
    if isinstance(exc, StoreFull):
        return PayloadTooLarge(f"Image storage media is full: {exc}")
    return exc


async def upload(svc: ImageService, record: ImageRecord, chunks: AsyncIterator[Chunk],
                 declared_size: int | None) -> None:
    """``PUT /v2/images/{id}/file``: queued -> saving -> active."""
    if record.status != "queued":
        raise transition_error(record.status, "saving")
    _require_formats(record)
    if declared_size is not None and declared_size > svc.conf.max_image_size:
        raise PayloadTooLarge(f"The incoming image is too large: {declared_size} bytes")
    claimed = declared_size or 0
    await _begin(svc, record, "queued", "saving",
                 {"image_count_uploading": 1, "image_size_total": claimed}, claimed)
    claim = Claim(svc, record, "image_size_total", "saving", claimed)
    writer = svc.store.writer(record.id)
    inspector = FormatInspector(record.disk_format, record.container_format)
    try:
        received = await pump(chunks, writer, inspector, svc.conf.max_image_size, claim.grow
                              if claim.active else None)
        location = await writer.commit()
    except BaseException as exc:
        await asyncio.shield(_give_up(svc, record, writer, "saving", size=None,
                                      virtual_size=None))
        if isinstance(exc, Exception):
            raise _store_failure(exc) from exc
        raise
    await _finish(svc, record, svc.store, location, received, "saving")


async def _finish(svc: ImageService, record: ImageRecord, store: Store, location: str,
                  received: Received, status: str, **extra: Any) -> None:
    virtual = received.inspection.virtual_size if received.inspection else None
    async with svc.db.write() as session:
        done = await _cas(session, record.id, status, "active", size=received.size,
                          virtual_size=virtual, checksum=received.checksum,
                          os_hash_algo=HASH_ALGO, os_hash_value=received.hash_value,
                          store=store.name, location=location, reserved=0, **extra)
    if not done:
        try:
            await store.delete(location)
        except Exception:
            LOG.exception("image %s: could not remove data of a deleted image", record.id)
        raise Gone(f"Image {record.id} could not be found after upload. The image may have "
                   "been deleted during the upload, cleaning up the chunks uploaded.")


async def stage(svc: ImageService, record: ImageRecord, chunks: AsyncIterator[Chunk],
                declared_size: int | None) -> None:
    """``PUT /v2/images/{id}/stage``: queued -> uploading, data in the staging store."""
    if record.status != "queued":
        raise transition_error(record.status, "uploading")
    claimed = declared_size or 0
    await _begin(svc, record, "queued", "uploading",
                 {"image_count_uploading": 1, "image_stage_total": claimed}, claimed)
    claim = Claim(svc, record, "image_stage_total", "uploading", claimed)
    writer = svc.staging.writer(record.id)
    try:
        received = await pump(chunks, writer, None, svc.conf.max_image_size,
                              claim.grow if claim.active else None)
        location = await writer.commit()
    except BaseException as exc:
        await asyncio.shield(_give_up(svc, record, writer, "uploading", size=None))
        if isinstance(exc, Exception):
            raise _store_failure(exc) from exc
        raise
    async with svc.db.write() as session:
        kept = await cas(session, record.id, status="uploading", staged=location,
                         size=received.size, reserved=0)
    if not kept:
        await svc.staging.delete(location)
        raise Gone(f"Image {record.id} could not be found after upload. The image may have "
                   "been deleted during the upload, cleaning up the chunks uploaded.")


async def open_data(svc: ImageService, record: ImageRecord, offset: int = 0,
                    length: int | None = None) -> AsyncIterator[Chunk] | None:
    """The image's bytes, or None when it has none (Glance answers 204)."""
    if not record.location or record.store not in svc.stores:
        return None
    return await svc.stores[record.store].read(record.location, offset, length)


async def read_staged(svc: ImageService, record: ImageRecord) -> AsyncIterator[Chunk]:
    assert record.staged is not None
    return await svc.staging.read(record.staged)
