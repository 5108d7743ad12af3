"""``/v2.1/servers/{id}/os-instance-actions``: what was asked of a server and how each step
went (events; their tracebacks and hosts for admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from stackling.common.errors import NotFound
from stackling.compute.api.common import allowed, authorize, caller, compute
from stackling.compute.api.microversion import at_least
from stackling.compute.api.views import host_id, usage_time
from stackling.compute.models import InstanceAction, InstanceActionEvent
from stackling.compute.service import instance_actions
from stackling.compute.service.instances import get_row, not_found
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/servers/{server_id}/os-instance-actions")


async def _server(request: Request, server_id: str, rule: str) -> tuple[Any, Any]:
    ctx = await caller(request)
    async with compute(request).store.read() as session:
        try:
            row = await get_row(session, server_id, deleted=True)
        except NotFound:
            raise not_found(server_id) from None
    if not ctx.is_admin and row.project_id != ctx.project_id:
        raise not_found(server_id)
    authorize(request, ctx, rule, {"project_id": row.project_id, "user_id": row.user_id})
    return ctx, row


def _action(request: Request, a: InstanceAction) -> dict[str, Any]:
    out: dict[str, Any] = {"action": a.action, "instance_uuid": a.instance_uuid,
                           "message": a.message, "project_id": a.project_id,
                           "request_id": a.request_id, "start_time": usage_time(a.start_time),
                           "user_id": a.user_id}
    if at_least(request, "2.58"):
        out["updated_at"] = usage_time(a.updated_at)
    return out


@router.get("")
async def list_actions(request: Request, server_id: str) -> JSONResponse:
    await _server(request, server_id, "os_compute_api:os-instance-actions:list")
    actions = await instance_actions.list_actions(compute(request).store, server_id)
    return JSONResponse({"instanceActions": [_action(request, a) for a in actions]})


@router.get("/{request_id}")
async def show_action(request: Request, server_id: str, request_id: str) -> JSONResponse:
    ctx, row = await _server(request, server_id, "os_compute_api:os-instance-actions:show")
    record = await instance_actions.get_action(compute(request).store, server_id, request_id)
    body = _action(request, record.action)
    target = {"project_id": row.project_id, "user_id": row.user_id}
    show_events = allowed(request, ctx, "os_compute_api:os-instance-actions:events", target)
    if show_events or at_least(request, "2.51"):
        details = at_least(request, "2.84") and allowed(
            request, ctx, "os_compute_api:os-instance-actions:events:details", target)
        body["events"] = [_event(request, e, row.project_id, show_events, details)
                          for e in record.events]
    return JSONResponse({"instanceAction": body})


def _event(request: Request, e: InstanceActionEvent, project_id: str, admin: bool,
           details: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"event": e.event, "start_time": usage_time(e.start_time),
                           "finish_time": usage_time(e.finish_time), "result": e.result}
    if admin:
        out["traceback"] = e.traceback
    if at_least(request, "2.62"):
        out["hostId"] = host_id(e.host, project_id)
        if admin:
            out["host"] = e.host or ""
    if details:
        out["details"] = e.details
    return out
