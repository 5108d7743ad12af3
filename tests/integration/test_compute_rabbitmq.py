"""The compute flow over a real RabbitMQ (private node started by the test): api ->
scheduler -> a compute agent on its own broker connection (as on another node) -> ACTIVE,
then actions and delete."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from stackling.bus import RabbitTransport
from stackling.common.config import Config, load_config
from stackling.compute.agent.manager import ComputeAgent
from stackling.compute.virt.fake import FakeDriver
from tests.integration.rabbit import CTL, SERVER, RabbitNode

try:
    from tests.functional.compute.conftest import ComputeCloud, compute_cloud
except ModuleNotFoundError:  # this file run on its own: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.functional.compute.conftest import ComputeCloud, compute_cloud

__all__ = ["compute_cloud"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(SERVER is None or CTL is None,
                       reason="rabbitmq-server is not installed"),
]


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    node = RabbitNode(tmp_path_factory.mktemp("rabbitmq"))
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture
def compute_config(tmp_path: Path, rabbit: RabbitNode) -> Config:
    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 0},
        "bus": {"url": rabbit.url, "call_timeout": 10},
        "compute": {"host": "node-1", "heartbeat_interval": 0.2},
    })


@pytest.fixture
async def remote_agent(compute_cloud: ComputeCloud,
                       rabbit: RabbitNode) -> AsyncIterator[ComputeAgent]:
    bus = RabbitTransport(rabbit.url, call_timeout=10)
    await bus.start()
    agent = ComputeAgent("node-2", bus, FakeDriver("node-2"), compute_cloud.agent.images,
                         heartbeat_interval=0.2)
    await agent.start()
    yield agent
    await agent.stop()
    await bus.close()


async def test_boot_act_delete_over_rabbitmq(compute_cloud: ComputeCloud,
                                             remote_agent: ComputeAgent) -> None:
    # take node-1 out of scheduling: the build must travel to node-2's own connection
    r = await compute_cloud.request("PUT", "/os-services/disable", json={
        "host": "node-1", "binary": "nova-compute"})
    assert r.status_code == 200
    created = await compute_cloud.boot("over-amqp")
    server = await compute_cloud.show(created["id"])
    assert server["OS-EXT-SRV-ATTR:host"] == "node-2"
    assert created["id"] in remote_agent.driver.vms
    r = await compute_cloud.request("POST", f"/servers/{created['id']}/action",
                                    json={"os-stop": None})
    assert r.status_code == 202
    await compute_cloud.wait_for(created["id"], "SHUTOFF", timeout=15)
    r = await compute_cloud.request("POST", f"/servers/{created['id']}/action",
                                    json={"os-getConsoleOutput": {}})
    assert "booted from image" in r.json()["output"]
    r = await compute_cloud.request("DELETE", f"/servers/{created['id']}")
    assert r.status_code == 204
    await compute_cloud.wait_gone(created["id"], timeout=15)
    assert created["id"] not in remote_agent.driver.vms
