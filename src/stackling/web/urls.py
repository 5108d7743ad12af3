"""The public URL a client used to reach us, for links in responses.

Clients (openstacksdk in particular) follow the links we return, so they must point where the
client can reach, not where we listen. Behind a proxy that is given by the ``X-Forwarded-*``
headers; with the all-in-one server each service is mounted under a prefix (``/identity``,
``/compute``...) that Starlette records in the scope's ``root_path``.

``base_url(request)`` = ``scheme://host[:port]`` + ``X-Forwarded-Prefix`` + ``root_path``,
without a trailing slash:

- scheme: first ``X-Forwarded-Proto`` value (``http``/``https`` only), else the request's;
- host: first ``X-Forwarded-Host`` value, else the ``Host`` header, else the server address;
  a port from ``X-Forwarded-Port`` is added when the host has none (default ports omitted);
- values that do not look like a scheme, host or path are ignored, so a bad header cannot
  inject text into links.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

from starlette.requests import HTTPConnection

__all__ = ["base_url", "origin", "public_url", "route_path"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_HOST_RE: Final = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$")
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~"


def _first(value: str | None) -> str:
    return value.split(",", 1)[0].strip() if value else ""


def _scheme(request: HTTPConnection) -> str:
    forwarded = _first(request.headers.get("x-forwarded-proto")).lower()
    if forwarded in _DEFAULT_PORTS:
        return forwarded
    return str(request.scope.get("scheme", "http"))


def _host(request: HTTPConnection, scheme: str) -> str:
    for candidate in (
        _first(request.headers.get("x-forwarded-host")),
        request.headers.get("host", "").strip(),
    ):
        m = _HOST_RE.match(candidate) if candidate else None
        if m is None:
            continue
        host = candidate
        if m.group(1) is None:
            port = _first(request.headers.get("x-forwarded-port"))
            if port.isdigit() and 0 < int(port) < 65536 and int(port) != _DEFAULT_PORTS[scheme]:
                host = f"{host}:{int(port)}"
        return host
    server = request.scope.get("server")
    if server:
        name, port = server[0], server[1]
        if ":" in str(name):
            name = f"[{name}]"
        if port is None or port == _DEFAULT_PORTS.get(scheme):
            return str(name)
        return f"{name}:{port}"
    return "localhost"


def _forwarded_prefix(request: HTTPConnection) -> str:
    prefix = _first(request.headers.get("x-forwarded-prefix")).strip("/")
    if not prefix or any(c in prefix for c in "?#\\ ") or ".." in prefix.split("/"):
        return ""
    return "/" + quote(prefix, safe=_PATH_SAFE + "%")  # a header value is already encoded


def origin(request: HTTPConnection) -> str:
    """``scheme://host[:port]`` as the client saw it."""
    scheme = _scheme(request)
    return f"{scheme}://{_host(request, scheme)}"


_BASE_KEY: Final = "stackling.base_url"


def base_url(request: HTTPConnection) -> str:
    """The public URL of the (mounted) application root, without a trailing slash.
    Worked out once per request and root (a server listing links every server)."""
    scope = request.scope
    root = str(scope.get("root_path", "")).rstrip("/")
    cached = scope.get(_BASE_KEY)
    if cached is not None and cached[0] == root:
        return str(cached[1])
    value = origin(request) + _forwarded_prefix(request) + quote(root, safe=_PATH_SAFE)
    scope[_BASE_KEY] = (root, value)
    return value


def _full_path(request: HTTPConnection) -> str:
    path = str(request.scope.get("path", "/"))
    root = str(request.scope.get("root_path", "")).rstrip("/")
    # Starlette keeps root_path inside path; some ASGI servers do not.
    if root and not (path == root or path.startswith(root + "/")):
        path = root + path
    return path


def route_path(request: HTTPConnection) -> str:
    """The request path below the application root (``/v3/users`` under ``/identity``)."""
    path = _full_path(request)
    root = str(request.scope.get("root_path", "")).rstrip("/")
    if not root:
        return path
    return path[len(root) :] or "/"


def public_url(request: HTTPConnection) -> str:
    """The public URL of the current request, without its query string."""
    path = quote(_full_path(request), safe=_PATH_SAFE)
    return origin(request) + _forwarded_prefix(request) + path
