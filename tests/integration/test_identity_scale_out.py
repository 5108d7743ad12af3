"""Scale-out: two identity processes on one PostgreSQL and one RabbitMQ.

Node A runs ``stackling up`` (bootstraps), node B ``stackling serve identity`` on the same
database, bus and Fernet keys. A token issued on A validates on B; a revocation on A reaches
B and a service-side validation cache (here, in the test process) through the bus at once,
not after the cache's 300 s TTL.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stackling.bus import RabbitTransport
from stackling.cli.cloudsyaml import read_passwords
from stackling.clients.identity import (
    RemoteTokenValidator,
    ServiceCredentials,
    follow_revocations,
)
from stackling.common.errors import NotFound, Unauthorized
from stackling.web.auth import CachingValidator
from tests.integration import databases
from tests.integration.rabbit import CTL, SERVER, RabbitNode
from tests.integration.test_compute_scale_out import _create_databases

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(SERVER is None or CTL is None or databases.postgres_bin() is None,
                       reason="needs rabbitmq-server and postgresql (tools/test installs them)"),
]


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
    """One database per service (``stackling up`` runs them all; their tables share names)."""
    with databases.postgres_server() as url:
        asyncio.run(_create_databases(url, ("identity", "image", "network", "compute",
                                            "volume")))
        yield url.rsplit("/", 1)[0] + "/stackling_{service}"


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "stackling.cli.main", *args], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text())
        try:
            if httpx.get(url, timeout=1).status_code in (200, 300):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(log.read_text())


async def test_two_identity_nodes_share_tokens_and_revocations(
        rabbit: RabbitNode, postgres: str, tmp_path: Path) -> None:
    env = {**os.environ, "STACKLING_DATABASE__URL": postgres, "STACKLING_BUS__URL": rabbit.url,
           "STACKLING_IDENTITY__PASSWORD_HASH_ROUNDS": "4",
           # not about images: keep node A's first start free of the tiny-guest build
           "STACKLING_IMAGE__BUILD_TINY_IMAGE": "never"}
    data = tmp_path / "data"
    port_a, port_b = databases.free_port(), databases.free_port()
    a = _spawn(["up", "--data-dir", str(data), "--port", str(port_a), "--virt", "fake",
                "--dataplane", "noop"], env, tmp_path / "a.log")
    procs = [a]
    try:
        _wait(f"http://127.0.0.1:{port_a}/healthz", a, tmp_path / "a.log")
        b = _spawn(["serve", "identity", "--data-dir", str(data), "--port", str(port_b)], env,
                   tmp_path / "b.log")
        procs.append(b)
        _wait(f"http://127.0.0.1:{port_b}/identity/v3", b, tmp_path / "b.log")
        passwords = read_passwords(data / "clouds.yaml")
        assert passwords is not None
        url_a = f"http://127.0.0.1:{port_a}/identity"
        url_b = f"http://127.0.0.1:{port_b}/identity"

        async with httpx.AsyncClient(timeout=10) as client:
            async def token(url: str, user: str) -> str:
                r = await client.post(f"{url}/v3/auth/tokens", json={"auth": {
                    "identity": {"methods": ["password"], "password": {"user": {
                        "name": user, "domain": {"id": "default"},
                        "password": passwords[user]}}},
                    "scope": {"project": {"name": user, "domain": {"id": "default"}}}}})
                assert r.status_code == 201, r.text
                return r.headers["X-Subject-Token"]

            admin = await token(url_a, "admin")
            demo = await token(url_a, "demo")
            # a token from A is valid on B (shared keys and database)
            r = await client.get(f"{url_b}/v3/auth/tokens", headers={
                "X-Auth-Token": admin, "X-Subject-Token": demo})
            assert r.status_code == 200 and r.json()["token"]["user"]["name"] == "demo"

            bus = RabbitTransport(rabbit.url, call_timeout=5)
            await bus.start()
            try:
                remote = RemoteTokenValidator(url_b, ServiceCredentials(
                    "admin", passwords["admin"], project_name="admin"))
                cache = CachingValidator(remote, ttl=300, size=100)
                await follow_revocations(bus, cache.forget_all)
                assert (await cache.validate_context(demo, "r")).user_name == "demo"
                r = await client.delete(f"{url_a}/v3/auth/tokens", headers={
                    "X-Auth-Token": admin, "X-Subject-Token": demo})
                assert r.status_code == 204
                # far under the cache's 300 s TTL: only the bus fanout can clear it this fast.
                # Node B may hear of it after this cache does and still say "valid" for a
                # moment; the cache asks again when its 3 s settle window ends.
                deadline = time.monotonic() + 10.0
                while True:
                    try:
                        await cache.validate_context(demo, "r")
                    except (NotFound, Unauthorized):
                        break
                    assert time.monotonic() < deadline, "revocation did not propagate"
                    await asyncio.sleep(0.05)
                r = await client.get(f"{url_b}/v3/auth/tokens", headers={
                    "X-Auth-Token": admin, "X-Subject-Token": demo})
                assert r.status_code == 404
                await remote.close()
            finally:
                await bus.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            assert proc.wait(timeout=30) == 0
