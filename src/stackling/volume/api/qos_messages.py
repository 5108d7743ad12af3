"""``/v3/qos-specs`` (admin) and ``/v3/messages`` (3.3+)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, NotFound
from stackling.volume.api.common import accepted, authorize, caller, json_body, reply, volumes
from stackling.volume.api.microversion import at_least
from stackling.volume.api.views import ts
from stackling.volume.models import QosSpec, UserMessage
from stackling.volume.service import messages
from stackling.volume.service import qos as service
from stackling.volume.service.common import metadata
from stackling.web.urls import base_url

router = APIRouter()
RULE = "volume_extension:qos_specs_manage"


def _qos(row: QosSpec) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "consumer": row.consumer, "specs": dict(row.specs)}


def _qos_links(request: Request, qos_id: str) -> list[dict[str, str]]:
    root = base_url(request)
    return [{"rel": "self", "href": f"{root}/v3/qos-specs/{qos_id}"},
            {"rel": "bookmark", "href": f"{root}/qos-specs/{qos_id}"}]


@router.post("/v3/qos-specs")
async def create(request: Request) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, RULE)
    body = await json_body(request)
    spec = body.get("qos_specs")
    if not isinstance(spec, dict):
        raise BadRequest("Missing required element 'qos_specs' in request body.")
    spec = dict(spec)
    name = spec.pop("name", None)
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Invalid input received: Please specify a name for QoS specs.")
    consumer = str(spec.pop("consumer", "back-end"))
    row = await service.create(volumes(request), name, consumer, metadata(spec, "qos_specs"))
    return reply({"qos_specs": _qos(row), "links": _qos_links(request, row.id)})


@router.get("/v3/qos-specs")
async def index(request: Request) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, RULE)
    return reply({"qos_specs": [_qos(r) for r in await service.list_specs(volumes(request))]})


@router.get("/v3/qos-specs/{qos_id}")
async def show(request: Request, qos_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, RULE)
    row = await service.get(volumes(request), qos_id)
    return reply({"qos_specs": _qos(row), "links": _qos_links(request, row.id)})


@router.put("/v3/qos-specs/{qos_id}")
async def set_keys(request: Request, qos_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, RULE)
    body = await json_body(request)
    specs = metadata(body.get("qos_specs"), "qos_specs")
    return reply({"qos_specs": await service.set_keys(volumes(request), qos_id, specs)})


@router.put("/v3/qos-specs/{qos_id}/delete_keys")
async def unset_keys(request: Request, qos_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, RULE)
    keys = (await json_body(request)).get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise BadRequest("Invalid input received: keys must be a list of strings")
    await service.unset_keys(volumes(request), qos_id, keys)
    return accepted()


@router.delete("/v3/qos-specs/{qos_id}")
async def delete(request: Request, qos_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, RULE)
    force = request.query_params.get("force", "false").lower() in ("true", "1")
    await service.delete(volumes(request), qos_id, force)
    return accepted()


@router.get("/v3/qos-specs/{qos_id}/associations")
async def associations(request: Request, qos_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, RULE)
    rows = await service.associations(volumes(request), qos_id)
    return reply({"qos_associations": [
        {"association_type": "volume_type", "id": r.id, "name": r.name} for r in rows]})


@router.get("/v3/qos-specs/{qos_id}/associate")
async def associate(request: Request, qos_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, RULE)
    await service.associate(volumes(request), ctx, qos_id,
                            request.query_params.get("vol_type_id"))
    return accepted()


@router.get("/v3/qos-specs/{qos_id}/disassociate")
async def disassociate(request: Request, qos_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, RULE)
    type_id = request.query_params.get("vol_type_id")
    if not type_id:
        raise BadRequest("Invalid input received: vol_type_id is required")
    await service.disassociate(volumes(request), ctx, qos_id, type_id)
    return accepted()


@router.get("/v3/qos-specs/{qos_id}/disassociate_all")
async def disassociate_all(request: Request, qos_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, RULE)
    await service.disassociate(volumes(request), ctx, qos_id, None)
    return accepted()


# -- messages ---------------------------------------------------------------------------------
def _message(request: Request, row: UserMessage) -> dict[str, Any]:
    root = base_url(request)
    return {"id": row.id, "request_id": row.request_id, "message_level": row.message_level,
            "event_id": row.event_id, "created_at": ts(row.created_at),
            "guaranteed_until": ts(row.expires_at), "resource_uuid": row.resource_uuid,
            "resource_type": row.resource_type, "user_message": row.user_message,
            "links": [{"rel": "self", "href": f"{root}/v3/messages/{row.id}"},
                      {"rel": "bookmark", "href": f"{root}/messages/{row.id}"}]}


def _need(request: Request) -> None:
    if not at_least(request, "3.3"):
        raise NotFound("The resource could not be found.")


@router.get("/v3/messages")
async def list_messages(request: Request) -> Response:
    _need(request)
    ctx = await caller(request)
    rows = await messages.list_messages(volumes(request).store, ctx)
    return reply({"messages": [_message(request, r) for r in rows]})


@router.get("/v3/messages/{message_id}")
async def show_message(request: Request, message_id: str) -> Response:
    _need(request)
    ctx = await caller(request)
    row = await messages.get(volumes(request).store, ctx, message_id)
    return reply({"message": _message(request, row)})


@router.delete("/v3/messages/{message_id}")
async def delete_message(request: Request, message_id: str) -> Response:
    _need(request)
    ctx = await caller(request)
    await messages.delete(volumes(request).store, ctx, message_id)
    return Response(status_code=204)
