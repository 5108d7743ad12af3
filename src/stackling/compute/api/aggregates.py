"""``/v2.1/os-aggregates`` (admin): aggregates, their hosts and metadata (the
``availability_zone`` key defines zones)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest
from stackling.compute.api.common import (
    authorize,
    caller,
    compute,
    invalid,
    json_body,
    no_extra,
    obj,
    required,
    string,
)
from stackling.compute.api.microversion import at_least
from stackling.compute.api.views import usage_time
from stackling.compute.service import aggregates
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/os-aggregates")


def view(request: Request, rec: aggregates.AggregateRecord,
         full: bool = True) -> dict[str, Any]:
    a = rec.aggregate
    out: dict[str, Any] = {"availability_zone": a.availability_zone,
                           "created_at": usage_time(a.created_at), "deleted": False,
                           "deleted_at": None, "id": a.id, "name": a.name,
                           "updated_at": usage_time(a.updated_at)}
    if full:
        out["hosts"] = list(rec.hosts)
        out["metadata"] = dict(a.metadata_)
    if at_least(request, "2.41"):
        out["uuid"] = a.uuid
    return out


async def _admin(request: Request, rule: str) -> None:
    ctx = await caller(request)
    authorize(request, ctx, f"os_compute_api:os-aggregates:{rule}", {})


def _zone(body: dict[str, Any]) -> str | None:
    if body.get("availability_zone") is None:
        return None
    return string(body, "availability_zone", min_len=1, max_len=255, name_like=True)


@router.get("")
async def list_aggregates(request: Request) -> JSONResponse:
    await _admin(request, "index")
    records = await aggregates.list_aggregates(compute(request))
    return JSONResponse({"aggregates": [view(request, r) for r in records]})


@router.post("")
async def create_aggregate(request: Request) -> JSONResponse:
    await _admin(request, "create")
    body = obj(await json_body(request), "aggregate")
    no_extra(body, {"name", "availability_zone"}, "aggregate")
    name = string(body, "name", min_len=1, max_len=255, name_like=True) \
        if "name" in body else required(body, "name", "aggregate")
    rec = await aggregates.create(compute(request), str(name), _zone(body))
    return JSONResponse({"aggregate": view(request, rec, full=False)})


@router.get("/{ident}")
async def show_aggregate(request: Request, ident: str) -> JSONResponse:
    await _admin(request, "show")
    return JSONResponse({"aggregate": view(request, await aggregates.get(compute(request),
                                                                         ident))})


@router.put("/{ident}")
async def update_aggregate(request: Request, ident: str) -> JSONResponse:
    await _admin(request, "update")
    body = obj(await json_body(request), "aggregate")
    no_extra(body, {"name", "availability_zone"}, "aggregate")
    if not body:
        raise BadRequest("Invalid input: 'name' or 'availability_zone' is required.")
    name = string(body, "name", min_len=1, max_len=255, name_like=True) \
        if "name" in body else None
    rec = await aggregates.update(compute(request), ident, name, _zone(body),
                                  "availability_zone" in body)
    return JSONResponse({"aggregate": view(request, rec)})


@router.delete("/{ident}")
async def delete_aggregate(request: Request, ident: str) -> Response:
    await _admin(request, "delete")
    await aggregates.delete(compute(request), ident)
    return Response(status_code=200)


@router.post("/{ident}/action")
async def aggregate_action(request: Request, ident: str) -> JSONResponse:
    body = await json_body(request)
    if len(body) != 1:
        raise BadRequest("Invalid aggregate action.")
    name, arg = next(iter(body.items()))
    svc = compute(request)
    if name in ("add_host", "remove_host"):
        await _admin(request, name)
        if not isinstance(arg, dict):
            raise invalid(name, arg, "is not of type 'object'")
        no_extra(arg, {"host"}, name)
        host = string(arg, "host", min_len=1, max_len=255)
        assert host is not None
        rec = await (aggregates.add_host if name == "add_host" else aggregates.remove_host)(
            svc, ident, host)
        return JSONResponse({"aggregate": view(request, rec)})
    if name == "set_metadata":
        await _admin(request, "set_metadata")
        if not isinstance(arg, dict) or not isinstance(arg.get("metadata"), dict):
            raise invalid("set_metadata", arg, "'metadata' is a required object")
        items: dict[str, str | None] = {}
        for key, value in arg["metadata"].items():
            if not isinstance(key, str) or not 1 <= len(key) <= 255:
                raise invalid("metadata", key, "is not a valid key")
            if value is not None and (not isinstance(value, str) or len(value) > 255):
                raise invalid(f"metadata/{key}", value, "is not a string or null")
            items[key] = value
        rec = await aggregates.set_metadata(svc, ident, items)
        return JSONResponse({"aggregate": view(request, rec)})
    raise BadRequest(f"Invalid aggregate action: {name}")
