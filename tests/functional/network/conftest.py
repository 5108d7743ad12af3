"""An in-process cloud with the network service (noop data plane, memory bus, this node's
agent) and a stand-in compute that records external events, driven over ASGI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from stackling.cli.cloudsyaml import read_passwords
from stackling.cli.component import Component, Runtime
from stackling.cli.network import NetworkComponent
from stackling.cli.up import build_root_app, prepare_all, start_bus, start_components
from stackling.common.config import Config, load_config


class FakeCompute(Component):
    """Just ``POST /v2.1/os-server-external-events``; remembers what it got."""

    name = "compute"
    prefix = "/compute"
    service_type = "compute"
    service_name = "nova"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.validator: Any = None

    def catalog_url(self, public_url: str) -> str:
        return f"{public_url}{self.prefix}/v2.1"

    async def start(self, runtime: Runtime) -> ASGIApp:
        self.validator = runtime.validator

        async def events(request: Request) -> JSONResponse:
            ctx = await self.validator.validate_context(
                request.headers.get("x-auth-token", ""), "")
            assert "service" in ctx.roles or ctx.is_admin
            body = await request.json()
            self.events.extend(body["events"])
            return JSONResponse({"events": [{**e, "code": 200} for e in body["events"]]})

        return Starlette(routes=[Route("/v2.1/os-server-external-events", events,
                                       methods=["POST"])])

    async def health(self) -> str:
        return "ok"


class _Late(httpx.AsyncBaseTransport):
    app: ASGIApp | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self.app is not None
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


class NetCloud:
    def __init__(self, config: Config, client: httpx.AsyncClient, passwords: dict[str, str],
                 network: NetworkComponent, compute: FakeCompute) -> None:
        self.config = config
        self.client = client
        self.passwords = passwords
        self.network = network
        self.compute = compute
        self._tokens: dict[tuple[str, str], str] = {}

    async def token(self, user: str = "admin", project: str | None = None) -> str:
        project = project or user
        key = (user, project)
        if key not in self._tokens:
            body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"},
                "password": self.passwords[user]}}},
                "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
            r = await self.client.post("/identity/v3/auth/tokens", json=body)
            assert r.status_code == 201, r.text
            self._tokens[key] = r.headers["X-Subject-Token"]
        return self._tokens[key]

    async def request(self, method: str, path: str, *, user: str = "admin",
                      **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        headers["X-Auth-Token"] = await self.token(user)
        return await self.client.request(method, f"/network{path}", headers=headers,
                                         **kwargs)

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        r = await self.request(method, path, **kwargs)
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    async def project_id(self, user: str) -> str:
        r = await self.client.get("/identity/v3/auth/tokens", headers={
            "X-Auth-Token": await self.token(user),
            "X-Subject-Token": await self.token(user)})
        return str(r.json()["token"]["project"]["id"])


@pytest.fixture
def network_config(tmp_path: Path) -> Config:
    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 0},
        "network": {"notify_delay": 0.0},
        "network_agent": {"host": "node-1", "heartbeat_interval": 0.2,
                          "tap_poll_interval": 0.05},
    })


@pytest.fixture
async def net_cloud(network_config: Config) -> AsyncIterator[NetCloud]:
    late = _Late()
    http = httpx.AsyncClient(transport=late, base_url="http://testserver")
    compute = FakeCompute()
    network = NetworkComponent(http=http)
    async with AsyncExitStack() as stack:
        prepared = await prepare_all(network_config, [network, compute])
        stack.push_async_callback(prepared.identity.close)
        bus = await start_bus(network_config, prepared.identity, stack)
        mounted = await start_components(prepared, network_config, bus, stack)
        app = build_root_app(prepared.identity, network_config, mounted)
        late.app = app
        passwords = read_passwords(network_config.data_dir / "clouds.yaml")
        assert passwords is not None
        stack.push_async_callback(http.aclose)
        await asyncio.wait_for(network.bootstrapped.wait(), 30)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as client:
            yield NetCloud(network_config, client, passwords, network, compute)
