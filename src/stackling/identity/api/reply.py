"""Response helpers for the catalog, limit, policy-blob, endpoint-filter and domain-config
routes: Keystone's member and collection shapes with ``links``, and HEAD answered like GET
without a body (Keystone serves HEAD on every GET resource)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from stackling.identity.api.common import json_response, list_response, self_link


def linked(request: Request, path: str, ref: dict[str, Any]) -> dict[str, Any]:
    """``ref`` with ``links.self`` pointing at ``/v3/<path>/<id>``."""
    return {**ref, "links": self_link(request, f"{path}/{ref['id']}")}


def reply(request: Request, body: Any, status: int = 200) -> Response:
    if request.method == "HEAD":
        return Response(status_code=status, media_type="application/json")
    return json_response(body, status=status)


def member(request: Request, path: str, key: str, ref: dict[str, Any],
           status: int = 200) -> Response:
    return reply(request, {key: linked(request, path, ref)}, status)


def collection(request: Request, path: str, key: str, refs: list[dict[str, Any]]
               ) -> Response:
    response = list_response(request, key, [linked(request, path, r) for r in refs])
    if request.method == "HEAD":
        return Response(status_code=200, media_type="application/json")
    return response
