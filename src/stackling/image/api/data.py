"""Image data routes: ``PUT``/``GET /v2/images/{id}/file``, ``PUT /stage``, ``POST /import``.

Uploads stream: the request body is passed chunk by chunk to the service (these routes are
exempt from the platform's JSON body limit; the service caps the size itself). When an
upload is refused part way, the rest of the body is read and dropped (up to a bound) so the
client gets the error instead of a reset connection.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Final

from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse
from starlette.types import Scope

from stackling.common.blocking import run_blocking
from stackling.common.errors import BadRequest, Forbidden, NotFound, StacklingError
from stackling.image.api.common import (
    caller,
    json_object,
    no_content,
    require_octet_stream,
    service,
)
from stackling.image.service import data, tasks
from stackling.image.stores.base import Chunk

router = APIRouter()
LOG = logging.getLogger(__name__)

DRAIN_LIMIT: Final = 256 << 20
_STREAMING = re.compile(r"/v2/images/[^/]+/(file|stage)$")


def streams_body(scope: Scope) -> bool:
    """The body-limit exemption: uploads to ``/file`` and ``/stage``."""
    return scope.get("method") == "PUT" and bool(_STREAMING.search(scope.get("path", "")))


class RangeNotSatisfiable(StacklingError):
    code = 416
    title = "Requested Range Not Satisfiable"


def _declared_size(request: Request) -> int | None:
    raw = request.headers.get("x-openstack-image-size") or \
        request.headers.get("content-length")
    if raw is None:
        return None
    try:
        size = int(raw)
    except ValueError:
        raise BadRequest("Invalid or missing image size in request headers.") from None
    return size or None


async def _drain(body: AsyncIterator[Chunk]) -> None:
    seen = 0
    try:
        async for chunk in body:
            seen += len(chunk)
            if seen > DRAIN_LIMIT:
                return
    except (ClientDisconnect, RuntimeError):
        return


@router.put("/v2/images/{image_id}/file")
async def upload(request: Request, image_id: str) -> Response:
    require_octet_stream(request)
    c = await caller(request)
    size = _declared_size(request)
    record = await c.find(image_id, "upload_image")
    body = request.stream()
    try:
        await data.upload(service(request), record, body, size)
    except StacklingError:
        await _drain(body)
        raise
    except ClientDisconnect:
        return _gone_client(image_id)
    return no_content()


def _gone_client(image_id: str) -> Response:
    """The client hung up mid-upload: the image is queued again; nobody reads this."""
    LOG.info("image %s: client disconnected during the upload", image_id)
    return Response(status_code=400)


@router.put("/v2/images/{image_id}/stage")
async def stage(request: Request, image_id: str) -> Response:
    svc = service(request)
    if "glance-direct" not in svc.conf.import_methods:
        raise NotFound("'glance-direct' method is not available at this site.")
    require_octet_stream(request)
    c = await caller(request)
    size = _declared_size(request)
    record = await c.find(image_id, "modify_image")
    body = request.stream()
    try:
        await data.stage(svc, record, body, size)
    except StacklingError:
        await _drain(body)
        raise
    except ClientDisconnect:
        return _gone_client(image_id)
    return no_content()


def _range(header: str, size: int) -> tuple[int, int]:
    """(offset, length) for a ``Range: bytes=...`` header, as Glance (webob) reads it."""
    if "," in header:
        raise BadRequest("Requests with multiple ranges are not supported in Glance. You may "
                         "make multiple single-range requests instead.")
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        raise RangeNotSatisfiable("Invalid Range header.")
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) + 1 if m.group(2) else None
        if end is not None and end <= start:
            raise RangeNotSatisfiable("Invalid Range header.")
    else:
        start, end = -int(m.group(2)), None
        if start == 0:
            raise RangeNotSatisfiable("Invalid Range header.")
    if start >= size:
        raise RangeNotSatisfiable("Invalid start position in Range header. Start position "
                                  f"MUST be in the inclusive range [0, {size - 1}].")
    if start < 0:
        start = max(0, size + start)
    stop = size if end is None or end > size else end
    return start, stop - start


@router.get("/v2/images/{image_id}/file")
async def download(request: Request, image_id: str) -> Response:
    c = await caller(request)
    svc = service(request)
    record = await c.find(image_id)
    if record.status == "deactivated" and not c.is_admin:
        raise Forbidden("The requested image has been deactivated. Image data download is "
                        "forbidden.")
    c.image("download_image", record)
    size = record.size or 0
    offset, length, status = 0, size, 200
    header = request.headers.get("range")
    if header is not None and record.location:
        offset, length = _range(header, size)
        status = 206
    chunks = await data.open_data(svc, record, offset, length)
    if chunks is None:
        return no_content()
    headers = {"Content-Length": str(length)}
    if status == 206:
        headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{size}"
    if record.checksum:
        headers["Content-MD5"] = record.checksum
    return StreamingResponse(_then_trim(chunks, length), status_code=status, headers=headers,
                             media_type="application/octet-stream")


async def _then_trim(chunks: AsyncIterator[Chunk], length: int) -> AsyncIterator[Chunk]:
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        if length > data.TRIM_AFTER:
            await run_blocking(data.release_memory)


@router.post("/v2/images/{image_id}/import")
async def import_image(request: Request, image_id: str) -> Response:
    c = await caller(request)
    svc = service(request)
    body = await json_object(request)
    method, _ = tasks.check_import_body(body, svc.conf.import_methods)
    record = await c.find(image_id)
    c.image("copy_image" if method == "copy-image" else "modify_image", record)
    stores = tasks.chosen_stores(svc, body, request.headers.get("x-image-meta-store"))
    await tasks.start_import(svc, c.ctx, record, body, method, stores)
    return Response(status_code=202, media_type="application/json")

