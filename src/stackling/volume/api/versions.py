"""Version discovery: ``GET /`` (300 Multiple Choices) and ``GET /v3/`` (200)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from stackling.volume.api.microversion import MAX_VERSION, MIN_VERSION
from stackling.web.responses import JSONResponse
from stackling.web.urls import base_url

router = APIRouter()


def _v3(request: Request) -> dict[str, Any]:
    return {"id": "v3.0", "status": "CURRENT", "version": str(MAX_VERSION),
            "min_version": str(MIN_VERSION), "updated": "2023-08-31T00:00:00Z",
            "links": [{"rel": "describedby", "type": "text/html",
                       "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": f"{base_url(request)}/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


@router.get("/")
async def versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": [_v3(request)]}, status_code=300)


@router.get("/v3")
@router.get("/v3/")
async def version_v3(request: Request) -> JSONResponse:
    return JSONResponse({"versions": [_v3(request)]})
