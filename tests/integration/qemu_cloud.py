"""An in-process cloud with the real image service and the QEMU driver (TCG), driven over
ASGI, for the QEMU integration tests and bench/boot.py. The tiny guest is built (cached)
and registered by the image component itself. Every QEMU started under the data dir is
killed when the cloud closes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx

from stackling.cli.cloudsyaml import read_passwords
from stackling.cli.component import Component
from stackling.cli.compute import ComputeComponent
from stackling.cli.console import ConsoleComponent
from stackling.cli.image import ImageComponent
from stackling.cli.metadata import MetadataComponent
from stackling.cli.up import build_root_app, prepare_all, start_bus, start_components
from stackling.cli.volume import VolumeComponent
from stackling.common.config import Config, load_config
from stackling.volume.backends import FileBackend
from stackling.volume.backup.store import MemoryBackupStore

MARK = "stackling-tiny:"
METADATA_SECRET = "integration-metadata-secret"


class _Late(httpx.AsyncBaseTransport):
    app: Any = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await httpx.ASGITransport(app=self.app).handle_async_request(request)


class QemuCloud:
    def __init__(self, config: Config, client: httpx.AsyncClient, token: str,
                 compute: ComputeComponent) -> None:
        self.config = config
        self.client = client
        self.token = token
        self.compute = compute

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": self.token, "OpenStack-API-Version": "compute 2.37",
                   **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def image_id(self, name: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            r = await self.api("GET", f"/image/v2/images?name={name}")
            active = [i for i in r.json().get("images", []) if i["status"] == "active"]
            if active:
                return str(active[0]["id"])
            if time.monotonic() > deadline:
                raise AssertionError(f"image {name} never became active")
            await asyncio.sleep(0.5)

    async def flavor(self, name: str, ram: int, disk: int, vcpus: int = 1) -> str:
        r = await self.api("POST", "/compute/v2.1/flavors", json={"flavor": {
            "name": name, "ram": ram, "vcpus": vcpus, "disk": disk}})
        assert r.status_code == 200, r.text
        return str(r.json()["flavor"]["id"])

    async def boot(self, name: str, image: str, flavor: str,
                   user_data: bytes | None = None) -> str:
        server: dict[str, Any] = {"name": name, "imageRef": image, "flavorRef": flavor,
                                  "networks": "none"}
        if user_data is not None:
            server["user_data"] = base64.b64encode(user_data).decode()
        r = await self.api("POST", "/compute/v2.1/servers", json={"server": server})
        assert r.status_code == 202, r.text
        return str(r.json()["server"]["id"])

    async def show(self, server_id: str) -> dict[str, Any]:
        r = await self.api("GET", f"/compute/v2.1/servers/{server_id}")
        assert r.status_code == 200, r.text
        server: dict[str, Any] = r.json()["server"]
        return server

    async def wait_status(self, server_id: str, status: str,
                          timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            server = await self.show(server_id)
            if server["status"] == status and server.get("OS-EXT-STS:task_state") is None:
                return server
            if server["status"] == "ERROR" and status != "ERROR":
                raise AssertionError(f"{server_id} went to ERROR: {server.get('fault')}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{server_id} is {server['status']} "
                                     f"({server.get('OS-EXT-STS:task_state')}), not {status}")
            await asyncio.sleep(0.1)

    async def action(self, server_id: str, body: dict[str, Any]) -> httpx.Response:
        r = await self.api("POST", f"/compute/v2.1/servers/{server_id}/action", json=body)
        assert r.status_code in (200, 202, 204), r.text
        return r

    async def console(self, server_id: str) -> str:
        r = await self.api("POST", f"/compute/v2.1/servers/{server_id}/action",
                           json={"os-getConsoleOutput": {}})
        assert r.status_code == 200, r.text
        return str(r.json()["output"])

    async def markers(self, server_id: str) -> list[str]:
        return [line.split(MARK, 1)[1].strip()
                for line in (await self.console(server_id)).splitlines() if MARK in line]

    async def wait_marker(self, server_id: str, marker: str, count: int = 1,
                          timeout: float = 120.0) -> list[str]:
        """Wait until ``marker`` appeared ``count`` times on the guest's console."""
        deadline = time.monotonic() + timeout
        while True:
            markers = await self.markers(server_id)
            if sum(1 for m in markers if m == marker or m.startswith(marker + " ")) >= count:
                return markers
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count}x {marker!r} on the console of {server_id}: "
                                     f"{(await self.console(server_id))[-2000:]}")
            await asyncio.sleep(0.2)

    async def delete(self, server_id: str, timeout: float = 60.0) -> None:
        await self.api("DELETE", f"/compute/v2.1/servers/{server_id}")
        deadline = time.monotonic() + timeout
        while (await self.api("GET", f"/compute/v2.1/servers/{server_id}")).status_code != 404:
            if time.monotonic() > deadline:
                raise AssertionError(f"{server_id} was not deleted")
            await asyncio.sleep(0.1)

    def instance_dir(self, server_id: str) -> Path:
        return Path(self.config.data_dir) / "instances" / server_id

    def qemu_pid(self, server_id: str) -> int | None:
        try:
            pid = int((self.instance_dir(server_id) / "pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if qemu_alive(pid, server_id) else None


def qemu_alive(pid: int, uuid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return uuid.encode() in fh.read().split(b"\0")
    except (OSError, IndexError):
        return False


def kill_all_qemu(data_dir: Path) -> None:
    """Kill every QEMU whose pidfile lies under ``data_dir`` (test teardown)."""
    for pidfile in (data_dir / "instances").glob("*/pid"):
        uuid = pidfile.parent.name.removesuffix("_resize")
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text())
            if qemu_alive(pid, uuid):
                os.kill(pid, signal.SIGKILL)


def qemu_config(data_dir: Path, **qemu: Any) -> Config:
    return load_config(env={}, overrides={
        "data_dir": str(data_dir), "virt": "qemu",
        "identity": {"password_hash_rounds": 4},
        "compute": {"host": "qemu-node", "heartbeat_interval": 1.0},
        "qemu": {"accel": "tcg", "boot_timeout": 20.0, "powerdown_timeout": 10.0, **qemu},
        "metadata": {"shared_secret": METADATA_SECRET},
    })


@contextlib.asynccontextmanager
async def _in_process(config: Config, timeout: float,
                      components: Callable[[httpx.AsyncClient, ComputeComponent],
                                           list[Component]]) -> AsyncIterator[QemuCloud]:
    """Identity plus ``components(http, compute)`` in this process, an admin client; the
    compute agents are stopped (a test may have replaced one) and every QEMU killed at the
    end."""
    late = _Late()
    http = httpx.AsyncClient(transport=late, base_url="http://testserver", timeout=timeout)
    compute = ComputeComponent(http=http)
    try:
        async with AsyncExitStack() as stack:
            prepared = await prepare_all(config, components(http, compute))
            stack.push_async_callback(prepared.identity.close)
            bus = await start_bus(config, prepared.identity, stack)
            mounted = await start_components(prepared, config, bus, stack)
            late.app = build_root_app(prepared.identity, config, mounted)
            stack.push_async_callback(http.aclose)
            passwords = read_passwords(config.data_dir / "clouds.yaml")
            assert passwords is not None
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=late.app),
                                         base_url="http://testserver",
                                         timeout=timeout) as client:
                r = await client.post("/identity/v3/auth/tokens", json={"auth": {
                    "identity": {"methods": ["password"], "password": {"user": {
                        "name": "admin", "domain": {"id": "default"},
                        "password": passwords["admin"]}}},
                    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
                assert r.status_code == 201, r.text
                try:
                    yield QemuCloud(config, client, r.headers["X-Subject-Token"], compute)
                finally:
                    for agent in compute.agents:
                        await agent.stop()
    finally:
        kill_all_qemu(config.data_dir)


def qemu_cloud(config: Config) -> contextlib.AbstractAsyncContextManager[QemuCloud]:
    """Image, compute (QEMU), metadata and console in this process."""
    return _in_process(config, 120, lambda http, compute: [
        ImageComponent(), compute, MetadataComponent(), ConsoleComponent()])


def volume_cloud(root: Path) -> contextlib.AbstractAsyncContextManager[QemuCloud]:
    """Image, volume (file backend) and compute (QEMU, TCG) in this process."""
    data_dir = root / "data"
    config = load_config(env={}, overrides={
        "data_dir": str(data_dir), "virt": "qemu",
        "identity": {"password_hash_rounds": 4},
        "compute": {"host": "qemu-node", "heartbeat_interval": 1.0},
        "qemu": {"accel": "tcg", "boot_timeout": 30.0, "powerdown_timeout": 10.0,
                 "force_config_drive": True},
        "volume": {"host": "qemu-node", "backend": "file", "backup_store": "memory"},
    })
    return _in_process(config, 180, lambda http, compute: [
        ImageComponent(),
        VolumeComponent(http=http, backend=FileBackend("file", data_dir / "volumes", "raw"),
                        backups=MemoryBackupStore()),
        compute])
