"""``/v2.1/os-networks`` (the nova-network era proxy, removed in 2.36): an empty list, so
clients that look a network up by name through compute get a clean "not found"."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from stackling.common.errors import NotFound
from stackling.compute.api.common import caller
from stackling.compute.api.microversion import at_least

router = APIRouter(prefix="/v2.1/os-networks")


def _gone(request: Request) -> None:
    if at_least(request, "2.36"):
        raise NotFound("The resource could not be found.")


@router.get("")
async def list_networks(request: Request) -> JSONResponse:
    await caller(request)
    _gone(request)
    return JSONResponse({"networks": []})


@router.get("/{network_id}")
async def show_network(request: Request, network_id: str) -> JSONResponse:
    await caller(request)
    _gone(request)
    raise NotFound(f"Network {network_id} could not be found.")
