"""``os-server-external-events`` (other services tell compute about a server: the network
service posts ``network-vif-plugged``) and ``/servers/{id}/diagnostics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from stackling.common.errors import BadRequest, Conflict, NotFound, StacklingError
from stackling.compute.api.common import authorize, caller, compute, invalid, json_body
from stackling.compute.api.microversion import at_least
from stackling.compute.api.servers import load
from stackling.compute.models import Instance
from stackling.compute.rpcapi import ExternalEvent
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1")

_NAMES = [("2.1", "network-changed"), ("2.1", "network-vif-plugged"),
          ("2.1", "network-vif-unplugged"), ("2.1", "network-vif-deleted"),
          ("2.51", "volume-extended"), ("2.76", "power-update"),
          ("2.82", "accelerator-request-bound"), ("2.93", "volume-reimaged")]


@router.post("/os-server-external-events")
async def create_events(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-server-external-events:create", {})
    body = await json_body(request)
    events = body.get("events")
    if not isinstance(events, list) or not events or set(body) - {"events"}:
        raise invalid("events", events, "'events' must be a non-empty list")
    names = {n for v, n in _NAMES if at_least(request, v)}
    svc = compute(request)
    results: list[dict[str, Any]] = []
    for event in events:
        if not isinstance(event, dict) or set(event) - {"name", "server_uuid", "status",
                                                         "tag"}:
            raise invalid("events", event, "is not a valid event")
        if event.get("name") not in names:
            raise invalid("name", event.get("name"), f"is not one of {sorted(names)}")
        status = event.get("status", "completed")
        if status not in ("failed", "completed", "in-progress"):
            raise invalid("status", status, "is not one of failed, completed, in-progress")
        uuid = str(event.get("server_uuid", ""))
        result = {"name": event["name"], "server_uuid": uuid, "status": status}
        if event.get("tag") is not None:
            result["tag"] = event["tag"]
        async with svc.store.read() as session:
            row = (await session.execute(select(Instance).where(
                Instance.uuid == uuid, Instance.deleted.is_(False)))).scalar_one_or_none()
        if row is None:
            result["code"] = 404
        elif row.host is None:
            result["code"] = 422
        else:
            result["code"] = 200
            try:
                await svc.agents.cast(row.host, ExternalEvent(
                    instance_uuid=uuid, request_id=ctx.request_id, name=event["name"],
                    status=status, tag=event.get("tag")))
            except StacklingError:
                result["code"] = 422
        results.append(result)
    codes = {r["code"] for r in results}
    if codes == {404}:
        raise NotFound("No instances found for any event")
    return JSONResponse({"events": results}, status_code=200 if codes == {200} else 207)


@router.get("/servers/{server_id}/diagnostics")
async def diagnostics(request: Request, server_id: str) -> JSONResponse:
    ctx = await caller(request)
    rec = await load(request, ctx, server_id)
    authorize(request, ctx, "os_compute_api:os-server-diagnostics",
              {"project_id": rec.row.project_id})
    if rec.row.host is None:
        raise Conflict(f"Instance {server_id} is not ready")
    data = await compute(request).agents.get_diagnostics(rec.row.host, server_id)
    if at_least(request, "2.48"):
        return JSONResponse(data)
    # before 2.48 the answer was driver-specific: Nova's libvirt-style flat keys
    flat: dict[str, Any] = {}
    for cpu in data.get("cpu_details", []):
        flat[f"cpu{cpu['id']}_time"] = cpu["time"]
    flat["memory"] = data.get("memory_details", {}).get("maximum", 0) * 1024
    for i, disk in enumerate(data.get("disk_details", [])):
        name = f"vd{chr(ord('a') + i)}"
        flat.update({f"{name}_read": disk["read_bytes"],
                     f"{name}_read_req": disk["read_requests"],
                     f"{name}_write": disk["write_bytes"],
                     f"{name}_write_req": disk["write_requests"]})
    for i, nic in enumerate(data.get("nic_details", [])):
        for key in ("rx", "rx_drop", "rx_errors", "rx_packets", "tx", "tx_drop", "tx_errors",
                    "tx_packets"):
            source = f"{key}_octets" if key in ("rx", "tx") else key
            flat[f"vnet{i}_{key}"] = nic.get(source, 0)
    if not flat:
        raise BadRequest("No diagnostics available.")
    return JSONResponse(flat)
