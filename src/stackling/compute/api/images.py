"""``/v2.1/images`` (the image proxy, answered until 2.35) and ``/images/{id}/metadata``
(until 2.38): the image service seen through compute, with the caller's own token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.clients.image import Image
from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, NotFound
from stackling.compute.api.common import caller, compute, json_body, links, root
from stackling.compute.api.microversion import at_least
from stackling.compute.api.server_body import metadata
from stackling.web.pagination import page_links, parse_limit
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/images")

_STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "importing": "SAVING",
           "uploading": "SAVING", "deleted": "DELETED", "pending_delete": "DELETED",
           "killed": "ERROR"}
_PROGRESS = {"ACTIVE": 100, "SAVING": 25}


async def _ready(request: Request, until: str) -> RequestContext:
    if at_least(request, until):
        raise NotFound("The resource could not be found.")
    return await caller(request)


def _images(request: Request) -> Any:
    images = compute(request).images
    if images is None:
        raise NotFound("This cloud has no image service.")
    return images


def _links(request: Request, image_id: str) -> list[dict[str, str]]:
    out = links(request, "images", image_id)
    out.append({"rel": "alternate", "type": "application/vnd.openstack.image",
                "href": f"{root(request)}/images/{image_id}"})
    return out


def _detail(request: Request, image: Image) -> dict[str, Any]:
    status = _STATUS.get(image.status, "UNKNOWN")
    out: dict[str, Any] = {
        "id": image.id, "name": image.name, "minRam": image.min_ram,
        "minDisk": image.min_disk, "metadata": {k: v for k, v in image.properties.items()
                                               if isinstance(v, str)},
        "created": image.created_at, "updated": image.updated_at, "status": status,
        "progress": _PROGRESS.get(status, 0), "links": _links(request, image.id),
        "OS-EXT-IMG-SIZE:size": image.size}
    server = image.properties.get("instance_uuid")
    if isinstance(server, str):
        out["server"] = {"id": server, "links": links(request, "servers", server)}
    return out


async def _list(request: Request, detail: bool) -> JSONResponse:
    ctx = await _ready(request, "2.36")
    q = request.query_params
    filters: dict[str, str] = {}
    if "name" in q:
        filters["name"] = q["name"]
    if "status" in q:
        filters["status"] = q["status"].lower()
    if "server" in q:
        filters["instance_uuid"] = q["server"].rstrip("/").rsplit("/", 1)[-1]
    if "type" in q:
        filters["image_type"] = q["type"]
    images: list[Image] = await _images(request).list_images(token=ctx.token, filters=filters)
    for param, attr in (("minRam", "min_ram"), ("minDisk", "min_disk")):
        if param in q:
            try:
                floor = int(q[param])
            except ValueError:
                raise BadRequest(f"Invalid {param} filter [{q[param]}]") from None
            images = [i for i in images if getattr(i, attr) >= floor]
    if "changes-since" in q:
        images = [i for i in images if (i.updated_at or "") >= q["changes-since"]]
    marker = q.get("marker")
    if marker is not None:
        ids = [i.id for i in images]
        if marker not in ids:
            raise BadRequest(f"marker [{marker}] not found")
        images = images[ids.index(marker) + 1:]
    limit = parse_limit(q.get("limit"), compute(request).conf.max_limit)
    if limit is not None:
        images = images[:limit]
    items = [_detail(request, i) if detail else
             {"id": i.id, "name": i.name, "links": _links(request, i.id)} for i in images]
    body: dict[str, Any] = {"images": items}
    nav = page_links(request, items, limit) if limit is not None else []
    if nav:
        body["images_links"] = nav
    return JSONResponse(body)


@router.get("")
async def list_images(request: Request) -> JSONResponse:
    return await _list(request, detail=False)


@router.get("/detail")
async def list_images_detail(request: Request) -> JSONResponse:
    return await _list(request, detail=True)


@router.get("/{image_id}")
async def show_image(request: Request, image_id: str) -> JSONResponse:
    ctx = await _ready(request, "2.36")
    image = await _images(request).get(image_id, token=ctx.token)
    return JSONResponse({"image": _detail(request, image)})


@router.delete("/{image_id}")
async def delete_image(request: Request, image_id: str) -> Response:
    ctx = await _ready(request, "2.36")
    await _images(request).delete(image_id, token=ctx.token)
    return Response(status_code=204)


# -- image metadata (until 2.38) ----------------------------------------------------------
def _meta(image: Image) -> dict[str, str]:
    return {k: v for k, v in image.properties.items() if isinstance(v, str)}


@router.get("/{image_id}/metadata")
async def image_metadata(request: Request, image_id: str) -> JSONResponse:
    ctx = await _ready(request, "2.39")
    image = await _images(request).get(image_id, token=ctx.token)
    return JSONResponse({"metadata": _meta(image)})


@router.post("/{image_id}/metadata")
async def merge_image_metadata(request: Request, image_id: str) -> JSONResponse:
    ctx = await _ready(request, "2.39")
    items = metadata((await json_body(request)).get("metadata"))
    image = await _images(request).update_properties(image_id, token=ctx.token, set_=items)
    return JSONResponse({"metadata": _meta(image)})


@router.put("/{image_id}/metadata")
async def replace_image_metadata(request: Request, image_id: str) -> JSONResponse:
    ctx = await _ready(request, "2.39")
    items = metadata((await json_body(request)).get("metadata"))
    client = _images(request)
    current = await client.get(image_id, token=ctx.token)
    image = await client.update_properties(
        image_id, token=ctx.token, set_=items,
        remove=[k for k in _meta(current) if k not in items])
    return JSONResponse({"metadata": _meta(image)})


@router.get("/{image_id}/metadata/{key}")
async def show_image_metadata_item(request: Request, image_id: str, key: str) -> JSONResponse:
    ctx = await _ready(request, "2.39")
    meta = _meta(await _images(request).get(image_id, token=ctx.token))
    if key not in meta:
        raise NotFound(f"Image {image_id} has no metadata with key {key}.")
    return JSONResponse({"meta": {key: meta[key]}})


@router.put("/{image_id}/metadata/{key}")
async def set_image_metadata_item(request: Request, image_id: str, key: str) -> JSONResponse:
    ctx = await _ready(request, "2.39")
    meta = metadata((await json_body(request)).get("meta"), "meta")
    if key not in meta:
        raise BadRequest("Request body and URI mismatch")
    if len(meta) > 1:
        raise BadRequest("Request body contains too many items")
    await _images(request).update_properties(image_id, token=ctx.token, set_=meta)
    return JSONResponse({"meta": meta})


@router.delete("/{image_id}/metadata/{key}")
async def delete_image_metadata_item(request: Request, image_id: str, key: str) -> Response:
    ctx = await _ready(request, "2.39")
    client = _images(request)
    if key not in _meta(await client.get(image_id, token=ctx.token)):
        raise NotFound(f"Image {image_id} has no metadata with key {key}.")
    await client.update_properties(image_id, token=ctx.token, remove=[key])
    return Response(status_code=204)
