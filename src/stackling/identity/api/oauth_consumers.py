"""``/v3/OS-OAUTH1/consumers``: OAuth1 consumers (the secret is shown on create only)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, ValidationError
from stackling.identity.api.common import (
    authorize,
    head_aware,
    identity,
    json_body,
    json_response,
    list_response,
    require_object,
    self_link,
)
from stackling.identity.service.oauth_consumers import Consumers

router = APIRouter(prefix="/v3/OS-OAUTH1")


def _consumers(request: Request) -> Consumers:
    svc = identity(request)
    return Consumers(svc.store, svc.credential_keys)


def _render(request: Request, consumer: dict[str, Any]) -> dict[str, Any]:
    return {**consumer, "links": self_link(request, f"OS-OAUTH1/consumers/{consumer['id']}")}


def _description(spec: dict[str, Any]) -> str | None:
    value = spec.get("description")
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"Invalid input for field 'description': {value!r} is not of "
                              "type 'string', 'null'")
    return value


def _extra(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in ("id", "description", "secret", "links")}


@router.post("/consumers")
async def create_consumer(request: Request) -> Response:
    await authorize(request, "identity:create_consumer")
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("Malformed request body: the body is not valid JSON.") from exc
    spec = body.get("consumer") if isinstance(body, dict) else None
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ValidationError("Invalid input for field 'consumer': expected an object.")
    made = await _consumers(request).create(_description(spec), _extra(spec))
    return json_response({"consumer": {**_render(request, made.consumer),
                                       "secret": made.secret}}, status=201)


@router.api_route("/consumers", methods=["GET", "HEAD"])
async def list_consumers(request: Request) -> Response:
    await authorize(request, "identity:list_consumers")
    consumers = await _consumers(request).list()
    return head_aware(request, list_response(request, "consumers",
                                             [_render(request, c) for c in consumers]))


@router.api_route("/consumers/{consumer_id}", methods=["GET", "HEAD"])
async def get_consumer(request: Request, consumer_id: str) -> Response:
    await authorize(request, "identity:get_consumer")
    consumer = await _consumers(request).get(consumer_id)
    return head_aware(request, json_response({"consumer": _render(request, consumer)}))


@router.patch("/consumers/{consumer_id}")
async def update_consumer(request: Request, consumer_id: str) -> Response:
    await authorize(request, "identity:update_consumer")
    spec = require_object(await json_body(request), "consumer")
    if not spec:
        raise ValidationError("Invalid input for field 'consumer': {} should be non-empty")
    if "secret" in spec:
        raise ValidationError("Invalid input for field 'consumer': 'secret' may not be "
                              "updated")
    if "id" in spec and spec["id"] != consumer_id:
        raise BadRequest("Cannot change ID")
    consumer = await _consumers(request).update(
        consumer_id, _description(spec), "description" in spec, _extra(spec))
    return json_response({"consumer": _render(request, consumer)})


@router.delete("/consumers/{consumer_id}")
async def delete_consumer(request: Request, consumer_id: str) -> Response:
    await authorize(request, "identity:delete_consumer")
    await _consumers(request).delete(consumer_id)
    return Response(status_code=204)
