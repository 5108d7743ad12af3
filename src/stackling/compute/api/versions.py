"""Version discovery: ``/`` lists the API versions, ``/v2.1`` describes the one we serve."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from stackling.compute.api.common import root
from stackling.compute.api.microversion import MAX_VERSION, MIN_VERSION
from stackling.web.responses import JSONResponse

router = APIRouter()

UPDATED = "2013-07-23T11:33:21Z"


def _v20(request: Request) -> dict[str, Any]:
    return {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
            "updated": "2011-01-21T11:33:21Z",
            "links": [{"rel": "self", "href": f"{root(request)}/v2/"}]}


def _v21(request: Request) -> dict[str, Any]:
    return {"id": "v2.1", "status": "CURRENT", "version": str(MAX_VERSION),
            "min_version": str(MIN_VERSION), "updated": UPDATED,
            "links": [{"rel": "self", "href": f"{root(request)}/v2.1/"}]}


@router.get("/")
async def versions(request: Request) -> JSONResponse:
    return JSONResponse({"versions": [_v20(request), _v21(request)]})


@router.get("/v2")
@router.get("/v2/")
async def version_v20(request: Request) -> JSONResponse:
    doc = _v20(request)
    doc["links"].append({"rel": "describedby", "type": "text/html",
                         "href": "http://docs.openstack.org/"})
    doc["media-types"] = [{"base": "application/json",
                           "type": "application/vnd.openstack.compute+json;version=2"}]
    return JSONResponse({"version": doc})


@router.get("/v2.1")
@router.get("/v2.1/")
async def version_v21(request: Request) -> JSONResponse:
    doc = _v21(request)
    doc["links"].append({"rel": "describedby", "type": "text/html",
                         "href": "http://docs.openstack.org/"})
    doc["media-types"] = [{"base": "application/json",
                           "type": "application/vnd.openstack.compute+json;version=2.1"}]
    return JSONResponse({"version": doc})
