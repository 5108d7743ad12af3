"""An in-process cloud with identity, the image service and block storage (memory backend
by default, the file backend with ``volume_backend = "file"``), driven over ASGI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from stackling.cli.cloudsyaml import read_passwords
from stackling.cli.image import ImageComponent
from stackling.cli.up import build_root_app, prepare_all, start_bus, start_components
from stackling.cli.volume import VolumeComponent
from stackling.common.config import Config, load_config
from stackling.volume.backends import Backend, FileBackend, MemoryBackend, NbdBackend
from stackling.volume.backup.store import MemoryBackupStore

V = "3.70"


class _Late(httpx.AsyncBaseTransport):
    app: ASGIApp | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert self.app is not None
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


class VolumeCloud:
    def __init__(self, config: Config, client: httpx.AsyncClient, passwords: dict[str, str],
                 volume: VolumeComponent) -> None:
        self.config = config
        self.client = client
        self.passwords = passwords
        self.volume = volume
        self._tokens: dict[tuple[str, str], str] = {}

    @property
    def backend(self) -> Backend:
        assert self.volume.backend is not None
        return self.volume.backend

    async def token(self, user: str = "admin", project: str = "admin") -> str:
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

    async def project_id(self, user: str = "admin") -> str:
        h = {"X-Auth-Token": await self.token(user, user)}
        r = await self.client.get("/identity/v3/auth/tokens",
                                  headers={**h, "X-Subject-Token": h["X-Auth-Token"]})
        return str(r.json()["token"]["project"]["id"])

    async def request(self, method: str, path: str, *, user: str = "admin",
                      version: str | None = V, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        headers["X-Auth-Token"] = await self.token(user, user)
        if version:
            headers["OpenStack-API-Version"] = f"volume {version}"
        return await self.client.request(method, f"/volume/v3{path}", headers=headers,
                                         **kwargs)

    async def create(self, size: int | None = 1, *, user: str = "admin", wait: str | None =
                     "available", **volume: Any) -> dict[str, Any]:
        r = await self.request("POST", "/volumes", user=user,
                               json={"volume": {"size": size, **volume}})
        assert r.status_code == 202, r.text
        created: dict[str, Any] = r.json()["volume"]
        if wait:
            return await self.wait(created["id"], wait, user=user)
        return created

    async def show(self, volume_id: str, user: str = "admin") -> dict[str, Any]:
        r = await self.request("GET", f"/volumes/{volume_id}", user=user)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()["volume"]
        return out

    async def wait(self, volume_id: str, status: str, *, user: str = "admin",
                   path: str = "volumes", key: str = "volume",
                   timeout: float = 30.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            r = await self.request("GET", f"/{path}/{volume_id}", user=user)
            if status == "gone" and r.status_code == 404:
                return {}
            assert r.status_code == 200, r.text
            item: dict[str, Any] = r.json()[key]
            if item["status"] == status:
                return item
            if loop.time() > deadline:
                raise AssertionError(f"{volume_id} is {item['status']}, not {status}")
            await asyncio.sleep(0.01)

    async def action(self, volume_id: str, body: dict[str, Any], *, user: str = "admin",
                     expect: int = 202) -> httpx.Response:
        r = await self.request("POST", f"/volumes/{volume_id}/action", user=user, json=body)
        assert r.status_code == expect, r.text
        return r


@pytest.fixture
def volume_backend() -> str:
    return "memory"


@pytest.fixture
def volume_config(tmp_path: Path, volume_backend: str) -> Config:
    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 0},
        "image": {"build_tiny_image": "never"},
        "volume": {"host": "node-1", "backend": volume_backend, "heartbeat_interval": 0.2,
                   "backup_store": "memory", "capacity_gb": 100},
    })


@pytest.fixture
async def volume_cloud(volume_config: Config, volume_backend: str
                       ) -> AsyncIterator[VolumeCloud]:
    late = _Late()
    http = httpx.AsyncClient(transport=late, base_url="http://testserver")
    backend: Backend
    if volume_backend == "memory":
        backend = MemoryBackend("memory", capacity_gb=100)
    elif volume_backend == "nbd":
        backend = NbdBackend("nbd", volume_config.data_dir / "volumes", "qcow2",
                             port_min=18540, port_max=18549)
    else:
        backend = FileBackend("file", volume_config.data_dir / "volumes", "raw")
    volume = VolumeComponent(http=http, backend=backend, backups=MemoryBackupStore())
    async with AsyncExitStack() as stack:
        prepared = await prepare_all(volume_config, [ImageComponent(), volume])
        stack.push_async_callback(prepared.identity.close)
        bus = await start_bus(volume_config, prepared.identity, stack)
        mounted = await start_components(prepared, volume_config, bus, stack)
        app = build_root_app(prepared.identity, volume_config, mounted)
        late.app = app
        passwords = read_passwords(volume_config.data_dir / "clouds.yaml")
        assert passwords is not None
        stack.push_async_callback(http.aclose)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver", timeout=60) as client:
            yield VolumeCloud(volume_config, client, dict(passwords), volume)
