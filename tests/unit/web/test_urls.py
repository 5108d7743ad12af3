"""Tests for stackling.web.urls: public base URLs behind proxies and mounts."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from stackling.web.urls import base_url, origin, public_url, route_path


def make_request(
    path: str = "/v3/users",
    *,
    root_path: str = "",
    headers: dict[str, str] | None = None,
    scheme: str = "http",
    server: tuple[str, int | None] | None = ("10.0.0.5", 8780),
    query: str = "",
) -> Request:
    hdrs = {"host": "cloud.example.com:8780", **(headers or {})}
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": scheme,
        "path": path,
        "root_path": root_path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in hdrs.items() if v is not None],
        "server": server,
    }
    return Request(scope)


def test_plain_host_header() -> None:
    assert base_url(make_request()) == "http://cloud.example.com:8780"
    assert origin(make_request()) == "http://cloud.example.com:8780"


def test_root_path_is_included_without_trailing_slash() -> None:
    req = make_request("/identity/v3/users", root_path="/identity")
    assert base_url(req) == "http://cloud.example.com:8780/identity"
    req = make_request("/identity/v3", root_path="/identity/")
    assert base_url(req) == "http://cloud.example.com:8780/identity"


def test_forwarded_proto_host_port_prefix() -> None:
    req = make_request(
        "/identity/v3",
        root_path="/identity",
        headers={
            "x-forwarded-proto": "https",
            "x-forwarded-host": "api.example.org, internal-proxy",
            "x-forwarded-prefix": "/openstack/",
        },
    )
    assert base_url(req) == "https://api.example.org/openstack/identity"
    assert public_url(req) == "https://api.example.org/openstack/identity/v3"


def test_forwarded_port() -> None:
    hdrs = {"x-forwarded-proto": "https", "x-forwarded-host": "api.example.org"}
    req = make_request(headers={**hdrs, "x-forwarded-port": "8443"})
    assert base_url(req) == "https://api.example.org:8443"
    # Default port for the scheme is omitted.
    req = make_request(headers={**hdrs, "x-forwarded-port": "443"})
    assert base_url(req) == "https://api.example.org"
    # A host that carries its own port keeps it.
    req = make_request(
        headers={**hdrs, "x-forwarded-host": "api.example.org:9000", "x-forwarded-port": "8443"}
    )
    assert base_url(req) == "https://api.example.org:9000"
    # Garbage port ignored.
    req = make_request(headers={**hdrs, "x-forwarded-port": "http"})
    assert base_url(req) == "https://api.example.org"


def test_forwarded_port_applies_to_host_header() -> None:
    req = make_request(headers={"host": "cloud.example.com", "x-forwarded-port": "8080"})
    assert base_url(req) == "http://cloud.example.com:8080"


def test_first_value_of_multi_valued_proto() -> None:
    req = make_request(headers={"x-forwarded-proto": "https, http"})
    assert base_url(req) == "https://cloud.example.com:8780"


def test_request_scheme_used_without_forwarded_proto() -> None:
    assert base_url(make_request(scheme="https")) == "https://cloud.example.com:8780"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-forwarded-proto", "javascript"),
        ("x-forwarded-host", "evil.com/path"),
        ("x-forwarded-host", "user@evil.com"),
        ("x-forwarded-host", "a b"),
        ("x-forwarded-prefix", "/a/../b"),
        ("x-forwarded-prefix", "/a?x=1"),
    ],
)
def test_bad_forwarded_values_ignored(header: str, value: str) -> None:
    req = make_request(headers={header: value})
    assert base_url(req) == "http://cloud.example.com:8780"


def test_ipv6_hosts() -> None:
    assert base_url(make_request(headers={"host": "[::1]:8780"})) == "http://[::1]:8780"
    req = make_request(headers={"host": "[fd00::1]", "x-forwarded-port": "5000"})
    assert base_url(req) == "http://[fd00::1]:5000"


def test_no_host_header_uses_server() -> None:
    req = make_request(headers={"host": ""})
    assert base_url(req) == "http://10.0.0.5:8780"
    req = make_request(headers={"host": ""}, server=("10.0.0.5", 80))
    assert base_url(req) == "http://10.0.0.5"
    req = make_request(headers={"host": ""}, server=("fd00::5", 8780))
    assert base_url(req) == "http://[fd00::5]:8780"
    req = make_request(headers={"host": ""}, server=None)
    assert base_url(req) == "http://localhost"


def test_public_url_quotes_path() -> None:
    req = make_request("/v3/users/a b%c")
    assert public_url(req) == "http://cloud.example.com:8780/v3/users/a%20b%25c"


def test_root_path_outside_path() -> None:
    # Servers that strip root_path from path (older ASGI convention).
    req = make_request("/v3", root_path="/identity")
    assert public_url(req) == "http://cloud.example.com:8780/identity/v3"
    assert route_path(req) == "/v3"


def test_route_path() -> None:
    assert route_path(make_request("/identity/v3/users", root_path="/identity")) == "/v3/users"
    assert route_path(make_request("/identity", root_path="/identity")) == "/"
    assert route_path(make_request("/v3/users")) == "/v3/users"


def test_with_starlette_mount() -> None:
    async def where(request: Request) -> JSONResponse:
        return JSONResponse(
            {"base": base_url(request), "url": public_url(request), "route": route_path(request)}
        )

    identity = Starlette(routes=[Route("/v3/{rest:path}", where)])
    app = Starlette(routes=[Mount("/identity", app=identity)])
    client = TestClient(app, base_url="http://cloud:5000")
    body = client.get("/identity/v3/auth/tokens").json()
    assert body == {
        "base": "http://cloud:5000/identity",
        "url": "http://cloud:5000/identity/v3/auth/tokens",
        "route": "/v3/auth/tokens",
    }
    body = client.get(
        "/identity/v3/x",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "keystone.example.org"},
    ).json()
    assert body["base"] == "https://keystone.example.org/identity"
