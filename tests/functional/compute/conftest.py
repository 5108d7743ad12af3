"""An in-process cloud with compute (fake driver, memory bus) and a stand-in image service,
driven over ASGI: the whole boot flow runs in the test's event loop, in milliseconds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
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
from stackling.cli.compute import ComputeComponent
from stackling.cli.up import build_root_app, prepare_all, start_bus, start_components
from stackling.common.config import Config, load_config

IMAGE_ID = "6b1e3b1c-3e7a-4d5e-9f00-000000000001"
PRIVATE_IMAGE_ID = "6b1e3b1c-3e7a-4d5e-9f00-000000000002"
QUEUED_IMAGE_ID = "6b1e3b1c-3e7a-4d5e-9f00-000000000003"
BIG_IMAGE_ID = "6b1e3b1c-3e7a-4d5e-9f00-000000000004"


class FakeImages(Component):
    """Just enough of the image API for compute: GET /v2/images/{id}."""

    name = "image"
    prefix = "/image"
    service_type = "image"
    service_name = "glance"

    def __init__(self) -> None:
        self.images: dict[str, dict[str, Any]] = {
            IMAGE_ID: {"id": IMAGE_ID, "name": "cirros", "status": "active",
                       "visibility": "public", "disk_format": "qcow2",
                       "container_format": "bare", "size": 1024, "min_ram": 0,
                       "min_disk": 0, "os_distro": "cirros"},
            PRIVATE_IMAGE_ID: {"id": PRIVATE_IMAGE_ID, "name": "secret", "status": "active",
                               "visibility": "private", "size": 1, "min_ram": 0,
                               "min_disk": 0},
            QUEUED_IMAGE_ID: {"id": QUEUED_IMAGE_ID, "name": "empty", "status": "queued",
                              "visibility": "public", "min_ram": 0, "min_disk": 0},
            BIG_IMAGE_ID: {"id": BIG_IMAGE_ID, "name": "big", "status": "active",
                           "visibility": "public", "size": 1, "min_ram": 100000,
                           "min_disk": 0},
        }
        self.validator: Any = None
        self.calls: list[str] = []

    async def start(self, runtime: Runtime) -> ASGIApp:
        self.validator = runtime.validator

        async def show(request: Request) -> JSONResponse:
            token = request.headers.get("x-auth-token", "")
            try:
                ctx = await self.validator.validate_context(token, "")
            except Exception:
                return JSONResponse({"message": "unauthorized"}, status_code=401)
            image = self.images.get(request.path_params["image_id"])
            self.calls.append(f"{ctx.user_name}:{request.path_params['image_id']}")
            if image is None or (image["visibility"] == "private" and not ctx.is_admin):
                return JSONResponse({"message": "not found"}, status_code=404)
            return JSONResponse(image)

        async def listing(request: Request) -> JSONResponse:
            ctx = await self.validator.validate_context(
                request.headers.get("x-auth-token", ""), "")
            if request.method == "POST":
                body = await request.json()
                image = {"id": str(uuid.uuid4()), "status": "queued", "min_ram": 0,
                         "created_at": datetime.now(UTC).isoformat(),
                         "min_disk": 0, "visibility": "private", "owner": ctx.project_id,
                         **body}
                self.images[image["id"]] = image
                return JSONResponse(image, status_code=201)
            found = [i for i in self.images.values()
                     if (i["visibility"] != "private" or ctx.is_admin) and all(
                         str(i.get(k)) == v for k, v in request.query_params.items()
                         if k not in ("limit", "marker"))]
            return JSONResponse({"images": found})

        async def upload(request: Request) -> JSONResponse:
            image = self.images[request.path_params["image_id"]]
            image["size"] = len(await request.body())
            image["status"] = "active"
            return JSONResponse(None, status_code=204)

        async def change(request: Request) -> JSONResponse:
            image = self.images.get(request.path_params["image_id"])
            if image is None:
                return JSONResponse({"message": "not found"}, status_code=404)
            if request.method == "DELETE":
                del self.images[image["id"]]
                return JSONResponse(None, status_code=204)
            for op in await request.json():
                key = op["path"].lstrip("/")
                if op["op"] == "remove":
                    image.pop(key, None)
                else:
                    image[key] = op["value"]
            return JSONResponse(image)

        return Starlette(routes=[
            Route("/v2/images", listing, methods=["GET", "POST"]),
            Route("/v2/images/{image_id}/file", upload, methods=["PUT"]),
            Route("/v2/images/{image_id}", show, methods=["GET"]),
            Route("/v2/images/{image_id}", change, methods=["PATCH", "DELETE"])])

    async def health(self) -> str:
        return "ok"


class _Late(httpx.AsyncBaseTransport):
    """Routes to the root app, which only exists after the components started."""

    app: ASGIApp | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self.app is not None
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


class ComputeCloud:
    def __init__(self, config: Config, client: httpx.AsyncClient, passwords: dict[str, str],
                 compute: ComputeComponent, images: FakeImages) -> None:
        self.config = config
        self.client = client
        self.passwords = passwords
        self.compute = compute
        self.images = images
        self._tokens: dict[tuple[str, str], str] = {}

    @property
    def agent(self) -> Any:
        return self.compute.agents[0]

    async def token(self, user: str = "admin", project: str = "admin",
                    password: str | None = None) -> str:
        key = (user, project)
        if key not in self._tokens:
            body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"},
                "password": password or self.passwords[user]}}},
                "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
            r = await self.client.post("/identity/v3/auth/tokens", json=body)
            assert r.status_code == 201, r.text
            self._tokens[key] = r.headers["X-Subject-Token"]
        return self._tokens[key]

    async def request(self, method: str, path: str, *, user: str = "admin",
                      project: str | None = None, version: str | None = None,
                      **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        headers["X-Auth-Token"] = await self.token(user, project or user)
        if version:
            headers["OpenStack-API-Version"] = f"compute {version}"
        return await self.client.request(method, f"/compute/v2.1{path}", headers=headers,
                                         **kwargs)

    async def boot(self, name: str = "vm", *, user: str = "admin", wait: bool = True,
                   version: str = "2.37", **server: Any) -> dict[str, Any]:
        body = {"server": {"name": name, "imageRef": IMAGE_ID, "flavorRef": "1",
                           "networks": "none", **server}}
        r = await self.request("POST", "/servers", user=user, json=body, version=version)
        assert r.status_code == 202, r.text
        created: dict[str, Any] = r.json()["server"]
        if wait:
            await self.wait_for(created["id"], "ACTIVE", user=user)
        return created

    async def show(self, server_id: str, user: str = "admin",
                   version: str | None = None) -> dict[str, Any]:
        r = await self.request("GET", f"/servers/{server_id}", user=user, version=version)
        assert r.status_code == 200, r.text
        server: dict[str, Any] = r.json()["server"]
        return server

    async def wait_for(self, server_id: str, status: str, *, user: str = "admin",
                       timeout: float = 5.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            server = await self.show(server_id, user)
            if server["status"] == status and server.get("OS-EXT-STS:task_state") is None:
                return server
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{server_id} is {server['status']} "
                                     f"({server.get('OS-EXT-STS:task_state')}), not {status}: "
                                     f"{server.get('fault')}")
            await asyncio.sleep(0.01)

    async def wait_gone(self, server_id: str, user: str = "admin",
                        timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            r = await self.request("GET", f"/servers/{server_id}", user=user)
            if r.status_code == 404:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{server_id} still there: {r.json()}")
            await asyncio.sleep(0.01)


@pytest.fixture
def compute_config(tmp_path: Path) -> Config:
    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 0},
        "compute": {"host": "node-1", "heartbeat_interval": 0.2},
    })


@pytest.fixture
def extra_components() -> list[Callable[[], Component]]:
    return []


@pytest.fixture
async def compute_cloud(compute_config: Config) -> AsyncIterator[ComputeCloud]:
    late = _Late()
    http = httpx.AsyncClient(transport=late, base_url="http://testserver")
    images = FakeImages()
    compute = ComputeComponent(http=http)
    async with AsyncExitStack() as stack:
        prepared = await prepare_all(compute_config, [images, compute])
        stack.push_async_callback(prepared.identity.close)
        bus = await start_bus(compute_config, prepared.identity, stack)
        mounted = await start_components(prepared, compute_config, bus, stack)
        app = build_root_app(prepared.identity, compute_config, mounted)
        late.app = app
        passwords = read_passwords(compute_config.data_dir / "clouds.yaml")
        assert passwords is not None
        stack.push_async_callback(http.aclose)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as client:
            yield ComputeCloud(compute_config, client, passwords, compute, images)
