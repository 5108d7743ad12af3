"""``os-assisted-volume-snapshots``: create (POST) and delete (DELETE with
``?delete_info={"volume_id": ...}``) a snapshot of an attached file-backed volume, asked by
a volume service (service role or admin). See :mod:`stackling.compute.service.assisted_snapshots`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest
from stackling.compute.api.common import authorize, caller, compute, invalid, json_body
from stackling.compute.service import assisted_snapshots
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1")

_CREATE_INFO = {"snapshot_id", "type", "new_file", "id"}


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid(where, value, f"{value!r} is not a non-empty string")
    return value


def _create_body(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Nova's schema: snapshot.volume_id and snapshot.create_info (snapshot_id, type
    "qcow2", new_file, optional id); nothing else."""
    if set(body) != {"snapshot"}:
        raise invalid("snapshot", body, "'snapshot' is a required property and the only one")
    snap = body["snapshot"]
    if not isinstance(snap, dict):
        raise invalid("snapshot", snap, f"{snap!r} is not of type 'object'")
    for key in ("volume_id", "create_info"):
        if key not in snap:
            raise invalid("snapshot", snap, f"'{key}' is a required property")
    if set(snap) - {"volume_id", "create_info"}:
        raise invalid("snapshot", snap, "Additional properties are not allowed")
    volume_id = _text("snapshot/volume_id", snap["volume_id"])
    info = snap["create_info"]
    if not isinstance(info, dict):
        raise invalid("snapshot/create_info", info, f"{info!r} is not of type 'object'")
    for key in ("snapshot_id", "type", "new_file"):
        if key not in info:
            raise invalid("snapshot/create_info", info, f"'{key}' is a required property")
    if set(info) - _CREATE_INFO:
        raise invalid("snapshot/create_info", info, "Additional properties are not allowed")
    for key in info:
        _text(f"snapshot/create_info/{key}", info[key])
    if info["type"] != "qcow2":
        raise invalid("snapshot/create_info/type", info["type"],
                      f"{info['type']!r} is not one of ['qcow2']")
    return volume_id, info


@router.post("/os-assisted-volume-snapshots")
async def create_snapshot(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-assisted-volume-snapshots:create", {})
    volume_id, info = _create_body(await json_body(request))
    snapshot = await assisted_snapshots.create(compute(request), ctx.request_id, volume_id,
                                               info)
    return JSONResponse({"snapshot": snapshot})


@router.delete("/os-assisted-volume-snapshots/{snapshot_id}")
async def delete_snapshot(request: Request, snapshot_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-assisted-volume-snapshots:delete", {})
    raw = request.query_params.get("delete_info")
    if raw is None:
        raise BadRequest("'delete_info'")  # Nova's KeyError text
    try:
        delete_info = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"Invalid delete_info: {exc}") from None
    if not isinstance(delete_info, dict) or "volume_id" not in delete_info:
        raise BadRequest("'volume_id'")
    volume_id = delete_info["volume_id"]
    if not isinstance(volume_id, str) or not volume_id:
        raise BadRequest(f"Invalid volume_id in delete_info: {volume_id!r}")
    await assisted_snapshots.delete(compute(request), ctx.request_id, volume_id, snapshot_id,
                                    delete_info)
    return Response(status_code=204)
