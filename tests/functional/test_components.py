"""The component plumbing of `stackling up`: catalog entry, service user, mount, health."""

from __future__ import annotations

from contextlib import AsyncExitStack

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from stackling.cli.component import Component, Runtime
from stackling.cli.up import build_root_app, prepare_all, start_bus, start_components
from stackling.common.config import Config


class Widgets(Component):
    name = "widgets"
    prefix = "/widgets"
    service_type = "widget"
    service_name = "widgetry"
    service_user = "widgetry"

    async def start(self, runtime: Runtime) -> ASGIApp:
        self.runtime = runtime

        async def root(request: Request) -> JSONResponse:
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/", root)])

    async def health(self) -> str:
        return "ok"


async def test_component_is_bootstrapped_mounted_and_healthy(cloud_config: Config) -> None:
    async with AsyncExitStack() as stack:
        prepared = await prepare_all(cloud_config, [Widgets()])
        stack.push_async_callback(prepared.identity.close)
        bus = await start_bus(cloud_config, prepared.identity, stack)
        mounted = await start_components(prepared, cloud_config, bus, stack)
        app = build_root_app(prepared.identity, cloud_config, mounted)
        creds = prepared.service_users["widgetry"]
        assert (cloud_config.data_dir / "service-users.yaml").stat().st_mode & 0o777 == 0o600
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            r = await client.post("/identity/v3/auth/tokens", json={"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": creds.username, "domain": {"id": "default"},
                    "password": creds.password}}},
                "scope": {"project": {"name": "service", "domain": {"id": "default"}}}}})
            assert r.status_code == 201, r.text
            token = r.json()["token"]
            assert {"admin", "service"} <= {x["name"] for x in token["roles"]}
            widget = next(s for s in token["catalog"] if s["type"] == "widget")
            assert widget["endpoints"][0]["url"].endswith("/widgets")
            assert (await client.get("/widgets/")).json() == {"ok": True}
            health = (await client.get("/healthz")).json()
            assert health["services"] == {"identity": "ok", "widgets": "ok"}
