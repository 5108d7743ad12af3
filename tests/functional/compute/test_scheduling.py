"""Scheduling under concurrency and failure: claims never overbook; a failed build is
rescheduled on another host, then ERROR with a readable fault; agents reconcile on restart."""

from __future__ import annotations

import asyncio
from collections import Counter

from stackling.common.config import Config
from stackling.compute.agent.manager import ComputeAgent
from stackling.compute.virt.driver import SpawnError
from stackling.compute.virt.fake import FakeDriver
from tests.functional.compute.conftest import IMAGE_ID, ComputeCloud
from tests.functional.compute.test_boot import allocations


async def add_host(cloud: ComputeCloud, name: str, **size: int) -> ComputeAgent:
    first = cloud.agent
    agent = ComputeAgent(name, first.bus, FakeDriver(name, **size), first.images,
                         heartbeat_interval=0.2)
    await agent.start()
    cloud.compute.agents.append(agent)
    return agent


async def boot_many(cloud: ComputeCloud, count: int, flavor: str = "1") -> list[str]:
    async def one(i: int) -> str:
        body = {"server": {"name": f"n{i}", "imageRef": IMAGE_ID, "flavorRef": flavor}}
        r = await cloud.request("POST", "/servers", json=body)
        assert r.status_code == 202, r.text
        return str(r.json()["server"]["id"])
    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def settle(cloud: ComputeCloud, ids: list[str]) -> Counter[str]:
    statuses: Counter[str] = Counter()
    for sid in ids:
        for _ in range(500):
            server = await cloud.show(sid)
            if server["status"] in ("ACTIVE", "ERROR"):
                break
            await asyncio.sleep(0.01)
        statuses[server["status"]] += 1
    return statuses


async def test_parallel_boots_never_overbook(compute_cloud: ComputeCloud,
                                             compute_config: Config) -> None:
    # node-1 is big; make it unusable so only the two small hosts count. It is forced down
    # (os-services, 2.53) rather than left to miss heartbeats against a short down time:
    # a busy test process could then stall long enough for the small hosts to look down
    # too.
    await compute_cloud.request("POST", "/flavors", json={"flavor": {
        "name": "quarter", "ram": 1024, "vcpus": 1, "disk": 1, "id": "q"}})
    compute_cloud.agent.driver.fail_spawn = lambda i: SpawnError("node-1 is broken")
    await compute_cloud.agent.stop()
    r = await compute_cloud.request("GET", "/os-services?host=node-1&binary=nova-compute",
                                    version="2.53")
    (node1,) = r.json()["services"]
    r = await compute_cloud.request("PUT", f"/os-services/{node1['id']}",
                                    json={"forced_down": True}, version="2.53")
    assert r.status_code == 200, r.text
    compute_config.compute.quotas.instances = 100
    a = await add_host(compute_cloud, "small-a", vcpus=64, memory_mb=4096 + 512, local_gb=100)
    b = await add_host(compute_cloud, "small-b", vcpus=64, memory_mb=4096 + 512, local_gb=100)
    ids = await boot_many(compute_cloud, 12, "q")
    statuses = await settle(compute_cloud, ids)
    assert statuses == Counter({"ACTIVE": 8, "ERROR": 4})
    assert len(a.driver.vms) == 4 and len(b.driver.vms) == 4
    assert await allocations(compute_cloud) == 8 * 3
    errored = [sid for sid in ids if (await compute_cloud.show(sid))["status"] == "ERROR"]
    fault = (await compute_cloud.show(errored[0]))["fault"]
    assert fault["message"].startswith("No valid host was found.")
    assert fault["code"] == 500


async def test_failed_build_is_rescheduled(compute_cloud: ComputeCloud) -> None:
    spare = await add_host(compute_cloud, "spare", memory_mb=2048)
    compute_cloud.agent.driver.fail_spawn = lambda i: SpawnError("disk on fire")
    # spread prefers node-1 (more free RAM): the build fails there and lands on spare
    sid = (await compute_cloud.boot("retry"))["id"]
    server = await compute_cloud.show(sid)
    assert server["OS-EXT-SRV-ATTR:host"] == "spare"
    assert sid in spare.driver.vms and sid not in compute_cloud.agent.driver.vms
    assert await allocations(compute_cloud, sid) == 3


async def test_build_fails_everywhere_to_error(compute_cloud: ComputeCloud) -> None:
    compute_cloud.agent.driver.fail_spawn = lambda i: SpawnError("no luck")
    created = await compute_cloud.boot("doomed", user="demo", wait=False)
    server = await compute_cloud.wait_for(created["id"], "ERROR", user="demo")
    assert "Exceeded maximum number of retries" in server["fault"]["message"]
    assert "details" not in server["fault"]  # a 500 fault's details are for admins
    admin_view = await compute_cloud.show(created["id"])
    assert "no luck" in admin_view["fault"]["details"]
    assert await allocations(compute_cloud, created["id"]) == 0
    r = await compute_cloud.request("DELETE", f"/servers/{created['id']}", user="demo")
    assert r.status_code == 204
    await compute_cloud.wait_gone(created["id"], user="demo")


async def test_non_retryable_failure_goes_straight_to_error(
        compute_cloud: ComputeCloud) -> None:
    spare = await add_host(compute_cloud, "spare")
    compute_cloud.agent.driver.fail_spawn = lambda i: SpawnError("bad image",
                                                                  retryable=False)
    spare.driver.fail_spawn = compute_cloud.agent.driver.fail_spawn
    created = await compute_cloud.boot("bad", wait=False)
    server = await compute_cloud.wait_for(created["id"], "ERROR")
    assert "bad image" in server["fault"]["message"]


async def test_agent_restart_reconciles(compute_cloud: ComputeCloud) -> None:
    agent = compute_cloud.agent
    keep = (await compute_cloud.boot("keep"))["id"]
    lost = (await compute_cloud.boot("lost"))["id"]
    await agent.stop()
    del agent.driver.vms[lost]  # the hypervisor lost it
    agent.driver.vms["orphan"] = type(agent.driver.vms[keep])("orphan", "orphan", 1)
    await agent.start()
    assert (await compute_cloud.show(keep))["status"] == "ACTIVE"
    assert (await compute_cloud.show(lost))["status"] == "SHUTOFF"
    assert "orphan" not in agent.driver.vms
    # starting the lost server re-creates its VM
    r = await compute_cloud.request("POST", f"/servers/{lost}/action", json={"os-start": None})
    assert r.status_code == 202
    await compute_cloud.wait_for(lost, "ACTIVE")
    assert lost in agent.driver.vms
