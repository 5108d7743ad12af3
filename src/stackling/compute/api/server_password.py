"""``/v2.1/servers/{id}/os-server-password``: show (``{"password": ...}``, empty when the
guest posted none) and clear (204)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.compute.api.common import caller, compute
from stackling.compute.api.servers import load_authorized
from stackling.compute.service import server_password
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/servers/{server_id}/os-server-password")


async def _authorized(request: Request, server_id: str, rule: str) -> None:
    await load_authorized(request, await caller(request), server_id, rule)


@router.get("")
async def show_password(request: Request, server_id: str) -> JSONResponse:
    await _authorized(request, server_id, "os_compute_api:os-server-password:show")
    return JSONResponse({"password": await server_password.get(compute(request), server_id)})


@router.delete("")
async def clear_password(request: Request, server_id: str) -> Response:
    await _authorized(request, server_id, "os_compute_api:os-server-password:clear")
    await server_password.clear(compute(request), server_id)
    return Response(status_code=204)
