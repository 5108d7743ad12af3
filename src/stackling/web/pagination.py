"""``limit``/``marker`` pagination: parsing the parameters and building page links.

The services shape their links differently; these helpers build the URLs and the common list
form, and each API puts them where its clients look:

- compute, volume: ``"servers_links": [{"rel": "next", "href": <absolute url>}]`` when the page
  is full (:func:`page_links`);
- network: the same under ``"networks_links"``, plus ``rel: previous`` with
  ``page_reverse=True`` (:func:`page_links` with ``previous=True``);
- image: ``"next": "/v2/images?marker=..."`` relative to the service root
  (:func:`page_url` with ``relative=True``);
- identity: ``"links": {"self": ..., "next": null, "previous": null}``.

Links keep every other query parameter (repeated ones too, in order) and point at the public
URL the client used (see :mod:`stackling.web.urls`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlencode

from starlette.requests import HTTPConnection

from stackling.common.errors import BadRequest
from stackling.web.urls import public_url, route_path

__all__ = ["page_links", "page_url", "parse_limit"]

_INT_RE: Final = re.compile(r"^\s*[+-]?\d+\s*$")


def parse_limit(value: str | None, max_limit: int) -> int | None:
    """Validate a ``limit`` query parameter and cap it at ``max_limit``.

    Returns None when the parameter is absent or empty (the caller applies its default,
    usually ``max_limit``). ``0`` is returned as ``0``. A value that is not an integer, or is
    negative, raises :class:`BadRequest` (HTTP 400). ``max_limit <= 0`` means no cap.
    """
    if value is None or value == "":
        return None
    if not _INT_RE.match(value):
        raise BadRequest("limit param must be an integer")
    limit = int(value)
    if limit < 0:
        raise BadRequest("limit param must be positive")
    if max_limit > 0:
        limit = min(limit, max_limit)
    return limit


def page_url(
    request: HTTPConnection,
    marker: str | None,
    limit: int | None = None,
    *,
    relative: bool = False,
    **params: str | None,
) -> str:
    """The current request's URL with ``marker``, ``limit`` and ``params`` replaced.

    Other query parameters are kept in order. A None value removes that parameter. With
    ``relative=True`` the result is the path below the service root plus the query
    (``/v2/images?marker=x``), as Glance returns it; otherwise an absolute public URL.
    """
    changes: dict[str, str | None] = {"limit": None if limit is None else str(limit)}
    changes["marker"] = marker
    changes.update(params)
    query: list[tuple[str, str]] = [
        (k, v) for k, v in request.query_params.multi_items() if k not in changes
    ]
    query.extend((k, v) for k, v in changes.items() if v is not None)
    base = route_path(request) if relative else public_url(request)
    return f"{base}?{urlencode(query)}" if query else base


def page_links(
    request: HTTPConnection,
    items: Sequence[Mapping[str, Any]],
    limit: int | None,
    *,
    marker_key: str = "id",
    previous: bool = False,
    has_more: bool | None = None,
) -> list[dict[str, str]]:
    """``[{"rel": "next", "href": ...}]`` for a page of ``items`` (in display order).

    There is a next page when ``has_more`` says so or, if the caller does not know, when the
    page is full (``len(items) >= limit``); its marker is the last item's ``marker_key``.
    ``limit=None`` means the whole collection was returned: no links.

    With ``previous=True`` (Neutron) a ``rel: previous`` link (first item as marker,
    ``page_reverse=True``) is added when the request came with a marker. A request that itself
    has ``page_reverse=True`` walks backwards: then "more" yields the previous link and the
    marker yields the next one, as Neutron does.
    """
    links: list[dict[str, str]] = []
    if not items or limit is None or limit <= 0:
        return links
    more = has_more if has_more is not None else len(items) >= limit
    came_with_marker = bool(request.query_params.get("marker"))
    reverse = previous and request.query_params.get("page_reverse", "").lower() == "true"
    want_next, want_previous = (came_with_marker, more) if reverse else (more, came_with_marker)
    if want_next:
        last = str(items[-1][marker_key])
        links.append({"rel": "next", "href": page_url(request, last, limit, page_reverse=None)})
    if previous and want_previous:
        first = str(items[0][marker_key])
        links.append(
            {"rel": "previous", "href": page_url(request, first, limit, page_reverse="True")}
        )
    return links
