"""The body size limit, and the exemption for routes that stream their bodies."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse
from starlette.types import Scope

from stackling.web.app import create_service_app
from stackling.web.errors import keystone_error

router = APIRouter()


@router.put("/small")
async def small(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


@router.put("/stream")
async def stream(request: Request) -> JSONResponse:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
    return JSONResponse({"bytes": total})


def _exempt(scope: Scope) -> bool:
    return bool(scope.get("path", "").endswith("/stream"))


def _client(exempt: bool) -> httpx.AsyncClient:
    app = create_service_app("t", [router], formatter=keystone_error, validator=None,
                             max_body_bytes=1024, body_limit_exempt=_exempt if exempt else None)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_limit_applies_to_every_route_without_exemption() -> None:
    async with _client(exempt=False) as client:
        assert (await client.put("/small", content=b"x" * 1024)).json() == {"bytes": 1024}
        r = await client.put("/small", content=b"x" * 1025)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == 413
        assert (await client.put("/stream", content=b"x" * 4096)).status_code == 413


async def test_exempt_routes_stream_bodies_over_the_limit() -> None:
    async def chunks():  # chunked transfer: no content-length
        for _ in range(8):
            yield b"y" * 1000

    async with _client(exempt=True) as client:
        assert (await client.put("/stream", content=b"x" * 4096)).json() == {"bytes": 4096}
        assert (await client.put("/stream", content=chunks())).json() == {"bytes": 8000}
        # the predicate exempts only what it names
        assert (await client.put("/small", content=b"x" * 1025)).status_code == 413
