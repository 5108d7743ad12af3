"""Version discovery: ``GET /`` (300 Multiple Choices) and ``GET /versions`` (200).

Advertised: v2.0 to v2.13 (multiple-store APIs, image tasks, the tasks of an image). Not
advertised: 2.14/2.18 (the image cache API) and 2.15-2.17 (the new locations API).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.image.api.common import json_response
from stackling.web.urls import base_url

router = APIRouter()

CURRENT: Final = 13


def versions_document(request: Request) -> dict[str, Any]:
    href = f"{base_url(request)}/v2/"
    versions = []
    for minor in range(CURRENT, -1, -1):
        versions.append({"id": f"v2.{minor}",
                         "status": "CURRENT" if minor == CURRENT else "SUPPORTED",
                         "links": [{"rel": "self", "href": href}]})
    return {"versions": versions}


@router.get("/")
@router.get("/v2")
@router.get("/v2/")
async def choices(request: Request) -> Response:
    return json_response(versions_document(request), 300)


@router.get("/versions")
async def versions(request: Request) -> Response:
    return json_response(versions_document(request), 200)
