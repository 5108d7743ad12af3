"""Version discovery at ``/identity`` and ``/identity/v3``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.identity.api.common import base_url, json_response
from stackling.web.discovery import version_entry

router = APIRouter()

MEDIA_TYPE = "application/vnd.openstack.identity-v3+json"
VERSION = "v3.14"


def _v3(request: Request) -> dict[str, object]:
    return version_entry(base_url(request), VERSION, path="v3", media_type=MEDIA_TYPE,
                         updated="2020-04-07T00:00:00Z")


@router.get("/")
async def root(request: Request) -> Response:
    return json_response({"versions": {"values": [_v3(request)]}}, status=300)


@router.get("/v3")
@router.get("/v3/")
async def v3(request: Request) -> Response:
    return json_response({"version": _v3(request)})
