"""Scale-out of compute: a controller split in processes and two compute nodes, on one
PostgreSQL and one RabbitMQ (both started by the test).

``stackling serve identity`` (bootstraps), ``stackling serve image compute`` (its own data
dir; authenticates to identity with the service users' passwords copied from the identity
node, registers its catalog entries), two ``stackling node --roles compute --virt fake``
with different host names. Servers booted through the API land on both nodes; a stopped
node's compute service goes down while the other stays up.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from stackling.cli.cloudsyaml import read_passwords
from tests.integration import databases
from tests.integration.rabbit import CTL, SERVER, RabbitNode

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(SERVER is None or CTL is None or databases.postgres_bin() is None,
                       reason="needs rabbitmq-server and postgresql (tools/test installs them)"),
]

NODES = ("scale-node-a", "scale-node-b")


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    node = RabbitNode(tmp_path_factory.mktemp("rabbitmq"))
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A database URL template with ``{service}``: one database per service, as the README
    deploys it (services' tables share names, e.g. ``quotas``)."""
    with databases.postgres_server() as url:
        asyncio.run(_create_databases(url, SERVICES))
        yield url.rsplit("/", 1)[0] + "/stackling_{service}"


SERVICES = ("identity", "image", "compute")


async def _create_databases(url: str, names: tuple[str, ...]) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for name in names:
            await conn.execute(f"CREATE DATABASE stackling_{name}")
    finally:
        await conn.close()


class Procs:
    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.base = base
        self.env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.base / f"{name}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "stackling.cli.main", *args],
                                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.running[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in self.running)

    def wait_http(self, name: str, url: str, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.running[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log(name)}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{name} did not serve {url}:\n{self.log(name)}")

    def stop(self, name: str) -> int:
        proc = self.running[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=30)


def _poll(what: str, probe: Any, procs: Procs, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{procs.logs()}")
        time.sleep(0.3)


def test_servers_land_on_two_compute_nodes(rabbit: RabbitNode, postgres: str,
                                           tmp_path: Path) -> None:
    env = {**os.environ, "STACKLING_DATABASE__URL": postgres, "STACKLING_BUS__URL": rabbit.url,
           "STACKLING_IDENTITY__PASSWORD_HASH_ROUNDS": "4",
           "STACKLING_IMAGE__BUILD_TINY_IMAGE": "never",
           # no network service in this cloud: servers boot with networks "none"
           "STACKLING_COMPUTE__HEARTBEAT_INTERVAL": "1",
           "STACKLING_COMPUTE__SERVICE_DOWN_TIME": "5"}
    ports = [databases.free_port() for _ in range(2)]
    id_url = f"http://127.0.0.1:{ports[0]}"
    svc_url = f"http://127.0.0.1:{ports[1]}"
    procs = Procs(tmp_path, {**env, "STACKLING_AUTH__IDENTITY_URL": f"{id_url}/identity"})
    dirs = {name: tmp_path / name for name in ("controller", "services", *NODES)}
    try:
        procs.spawn("identity", "serve", "identity", "--data-dir", str(dirs["controller"]),
                    "--port", str(ports[0]))
        procs.wait_http("identity", f"{id_url}/healthz")
        # what a deployer copies from the identity node to every other node
        for name in ("services", *NODES):
            dirs[name].mkdir(mode=0o700)
            shutil.copy2(dirs["controller"] / "service-users.yaml", dirs[name])
        procs.spawn("services", "serve", "image", "compute", "--data-dir",
                    str(dirs["services"]), "--port", str(ports[1]))
        procs.wait_http("services", f"{svc_url}/healthz")
        for name in NODES:
            procs.spawn(name, "node", "--roles", "compute", "--virt", "fake", "--hostname",
                        name, "--data-dir", str(dirs[name]))
        passwords = read_passwords(dirs["controller"] / "clouds.yaml")
        assert passwords is not None

        with httpx.Client(timeout=15) as client:
            r = client.post(f"{id_url}/identity/v3/auth/tokens", json={"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "admin", "domain": {"id": "default"},
                    "password": passwords["admin"]}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
            assert r.status_code == 201, r.text
            token = r.headers["X-Subject-Token"]
            # the split services registered themselves at their own URL
            catalog = {s["type"]: s["endpoints"] for s in r.json()["token"]["catalog"]}
            public = {t: next(e["url"] for e in eps if e["interface"] == "public")
                      for t, eps in catalog.items()}
            assert public["identity"] == f"{id_url}/identity"
            assert public["image"] == f"{svc_url}/image"
            compute = public["compute"]
            assert compute == f"{svc_url}/compute/v2.1"
            headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.37"}

            def services() -> dict[str, dict[str, Any]]:
                r = client.get(f"{compute}/os-services", headers=headers,
                               params={"binary": "nova-compute"})
                assert r.status_code == 200, r.text
                return {s["host"]: s for s in r.json()["services"]}

            _poll("both nodes' compute services up", lambda: all(
                services().get(n, {}).get("state") == "up" for n in NODES), procs)

            r = client.post(f"{public['image']}/v2/images", headers=headers, json={
                "name": "scale-image", "disk_format": "raw", "container_format": "bare"})
            assert r.status_code == 201, r.text
            image = r.json()["id"]
            r = client.put(f"{public['image']}/v2/images/{image}/file", content=b"\0" * 4096,
                           headers={**headers, "Content-Type": "application/octet-stream"})
            assert r.status_code == 204, r.text

            booted = []
            for i in range(4):
                r = client.post(f"{compute}/servers", headers=headers, json={"server": {
                    "name": f"scale-{i}", "imageRef": image, "flavorRef": "1",
                    "networks": "none"}})
                assert r.status_code == 202, r.text
                booted.append(r.json()["server"]["id"])

            def hosts() -> dict[str, str] | None:
                out = {}
                for server_id in booted:
                    r = client.get(f"{compute}/servers/{server_id}", headers=headers)
                    server = r.json()["server"]
                    assert server["status"] != "ERROR", server
                    if server["status"] != "ACTIVE":
                        return None
                    out[server_id] = server["OS-EXT-SRV-ATTR:host"]
                return out

            placed = _poll("servers ACTIVE", hosts, procs)
            assert set(placed.values()) == set(NODES), placed
            r = client.get(f"{compute}/servers/detail", headers={
                **headers, "OpenStack-API-Version": "compute 2.96"})
            assert r.status_code == 200, r.text  # the view's JSON reads run on PostgreSQL
            assert {s["pinned_availability_zone"] for s in r.json()["servers"]} == {None}

            assert procs.stop(NODES[1]) == 0
            _poll(f"{NODES[1]} down", lambda: services()[NODES[1]]["state"] == "down", procs)
            assert services()[NODES[0]]["state"] == "up"
    finally:
        codes = {name: procs.stop(name) for name in list(procs.running)[::-1]}
    assert all(code == 0 for code in codes.values()), (codes, procs.logs())
