"""Resize with confirm and revert: the flavor, the host, the allocations and the quota."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, update

from stackling.common.config import Config
from stackling.compute.models import Allocation, Migration
from stackling.compute.rpcapi import ConfirmResize
from stackling.compute.virt.driver import VirtError
from tests.functional.compute.conftest import ComputeCloud
from tests.functional.compute.test_scheduling import add_host


async def usage(cloud: ComputeCloud) -> dict[str, dict[str, int]]:
    assert cloud.compute.svc is not None
    out: dict[str, dict[str, int]] = {}
    async with cloud.compute.svc.store.read() as session:
        for a in (await session.execute(select(Allocation))).scalars():
            out.setdefault(a.consumer_id, {})[a.resource_class] = a.used
    return out


async def act(cloud: ComputeCloud, sid: str, body: dict[str, Any], **kw: Any) -> int:
    r = await cloud.request("POST", f"/servers/{sid}/action", json=body, user="demo", **kw)
    return r.status_code


async def test_resize_confirm_on_the_same_host(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("grow", user="demo"))["id"]  # m1.tiny
    assert await act(compute_cloud, sid, {"resize": {"flavorRef": "1"}}) == 400  # same
    assert await act(compute_cloud, sid, {"resize": {"flavorRef": "nope"}}) == 400
    assert await act(compute_cloud, sid, {"resize": {"flavorRef": "2"}}) == 202
    server = await compute_cloud.wait_for(sid, "VERIFY_RESIZE", user="demo")
    assert server["flavor"]["id"] == "2"
    held = await usage(compute_cloud)
    assert held[sid]["MEMORY_MB"] == 2048
    (migration,) = [c for c in held if c != sid]
    assert held[migration]["MEMORY_MB"] == 512  # the old flavor, kept for a revert
    assert await act(compute_cloud, sid, {"confirmResize": None}) == 204
    server = await compute_cloud.wait_for(sid, "ACTIVE", user="demo")
    assert list(await usage(compute_cloud)) == [sid]
    assert await act(compute_cloud, sid, {"confirmResize": None}) == 409
    r = await compute_cloud.request("GET", "/os-migrations", version="2.59")
    (m,) = r.json()["migrations"]
    assert m["status"] == "confirmed" and m["migration_type"] == "resize"
    # the source's agent dropped the old disks before the server left VERIFY_RESIZE
    assert sid not in compute_cloud.agent.driver.kept


async def _resized(cloud: ComputeCloud, name: str) -> str:
    sid = str((await cloud.boot(name, user="demo"))["id"])
    assert await act(cloud, sid, {"resize": {"flavorRef": "2"}}) == 202
    await cloud.wait_for(sid, "VERIFY_RESIZE", user="demo")
    return sid


async def _migration_status(cloud: ComputeCloud, sid: str) -> str:
    r = await cloud.request("GET", f"/os-migrations?instance_uuid={sid}", version="2.59")
    (m,) = r.json()["migrations"]
    return str(m["status"])


async def test_a_confirm_ends_when_the_source_has_cleaned_up(
        compute_cloud: ComputeCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nova's order: the server stays in VERIFY_RESIZE (migration ``confirming``) until the
    source's agent has dropped the old disks; meanwhile a second confirm or a revert gets
    409."""
    sid = await _resized(compute_cloud, "confirming")
    driver = compute_cloud.agent.driver
    gate = asyncio.Event()
    real = driver.confirm_migration

    async def slow(instance: Any) -> None:
        await gate.wait()
        await real(instance)

    monkeypatch.setattr(driver, "confirm_migration", slow)
    assert await act(compute_cloud, sid, {"confirmResize": None}) == 204
    await asyncio.sleep(0.05)
    assert (await compute_cloud.show(sid, user="demo"))["status"] == "VERIFY_RESIZE"
    assert await _migration_status(compute_cloud, sid) == "confirming"
    assert await act(compute_cloud, sid, {"confirmResize": None}) == 409
    assert await act(compute_cloud, sid, {"revertResize": None}) == 409
    assert sid in driver.kept and len(await usage(compute_cloud)) == 2
    gate.set()
    server = await compute_cloud.wait_for(sid, "ACTIVE", user="demo")
    assert server["flavor"]["id"] == "2"
    assert sid not in driver.kept and list(await usage(compute_cloud)) == [sid]
    assert await _migration_status(compute_cloud, sid) == "confirmed"


async def test_a_failed_cleanup_still_ends_the_confirm(
        compute_cloud: ComputeCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = await _resized(compute_cloud, "stuck-disks")

    async def failing(instance: Any) -> None:
        raise VirtError("the old disk is busy")

    monkeypatch.setattr(compute_cloud.agent.driver, "confirm_migration", failing)
    assert await act(compute_cloud, sid, {"confirmResize": None}) == 204
    await compute_cloud.wait_for(sid, "ACTIVE", user="demo")
    assert await _migration_status(compute_cloud, sid) == "confirmed"
    assert list(await usage(compute_cloud)) == [sid]
    r = await compute_cloud.request("GET", f"/servers/{sid}/os-instance-actions",
                                    version="2.51")
    confirm = next(a for a in r.json()["instanceActions"] if a["action"] == "confirmResize")
    r = await compute_cloud.request(
        "GET", f"/servers/{sid}/os-instance-actions/{confirm['request_id']}", version="2.51")
    (event,) = r.json()["instanceAction"]["events"]
    assert event["event"] == "compute_confirm_resize" and event["result"] == "Error"


async def test_a_confirm_the_source_cannot_hear_ends_at_once(
        compute_cloud: ComputeCloud) -> None:
    """No agent serves the source host any more (retired): the API ends the confirm itself
    and the old disks stay for that host's reconcile."""
    sid = await _resized(compute_cloud, "orphan")
    assert compute_cloud.compute.svc is not None
    async with compute_cloud.compute.svc.store.write() as session:
        await session.execute(update(Migration).where(Migration.instance_uuid == sid)
                              .values(source_compute="retired-host"))
    assert await act(compute_cloud, sid, {"confirmResize": None}) == 204
    server = await compute_cloud.show(sid, user="demo")
    assert server["status"] == "ACTIVE" and server["flavor"]["id"] == "2"
    assert list(await usage(compute_cloud)) == [sid]
    assert await _migration_status(compute_cloud, sid) == "confirmed"


async def test_resize_revert_across_hosts(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("move", user="demo"))["id"]
    # node-1 fills up; only node-2 can take the bigger flavor
    node2 = await add_host(compute_cloud, "node-2", memory_mb=8192)
    compute_cloud.agent.driver.memory_mb = 1024 + 512
    await compute_cloud.agent.report_resources()
    assert await act(compute_cloud, sid, {"resize": {"flavorRef": "2"}}) == 202
    server = await compute_cloud.wait_for(sid, "VERIFY_RESIZE", user="demo")
    admin = await compute_cloud.show(sid)
    assert admin["OS-EXT-SRV-ATTR:host"] == "node-2" and sid in node2.driver.vms
    assert sid in compute_cloud.agent.driver.kept and server["flavor"]["id"] == "2"
    assert await act(compute_cloud, sid, {"revertResize": None}) == 202
    server = await compute_cloud.wait_for(sid, "ACTIVE", user="demo")
    admin = await compute_cloud.show(sid)
    assert admin["OS-EXT-SRV-ATTR:host"] == "node-1" and server["flavor"]["id"] == "1"
    assert sid in compute_cloud.agent.driver.vms and sid not in node2.driver.vms
    assert (await usage(compute_cloud)) == {sid: {"VCPU": 1, "MEMORY_MB": 512,
                                                  "DISK_GB": 1}}


async def test_resize_stopped_server_and_quota(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("stopped", user="demo"))["id"]
    assert await act(compute_cloud, sid, {"os-stop": None}) == 202
    await compute_cloud.wait_for(sid, "SHUTOFF", user="demo")
    assert await act(compute_cloud, sid, {"resize": {"flavorRef": "2"}}) == 202
    server = await compute_cloud.wait_for(sid, "VERIFY_RESIZE", user="demo")
    assert server["OS-EXT-STS:power_state"] == 4
    assert await act(compute_cloud, sid, {"confirmResize": None}) == 204
    await compute_cloud.wait_for(sid, "SHUTOFF", user="demo")
    # growing past the cores quota is refused
    assert await act(compute_cloud, sid, {"resize": {"flavorRef": "5"}}) == 202  # 8 cores
    await compute_cloud.wait_for(sid, "VERIFY_RESIZE", user="demo")
    assert await act(compute_cloud, sid, {"confirmResize": None}) == 204
    await compute_cloud.wait_for(sid, "SHUTOFF", user="demo")
    r = await compute_cloud.request("POST", "/flavors", json={"flavor": {
        "name": "huge", "ram": 1024, "vcpus": 30, "disk": 200, "id": "huge"}})
    assert r.status_code == 200
    assert await act(compute_cloud, sid, {"resize": {"flavorRef": "huge"}}) == 403
    # and resizing the disk down is refused
    assert await act(compute_cloud, sid, {"resize": {"flavorRef": "2"}}) == 400


async def test_resize_without_room_keeps_the_server(compute_cloud: ComputeCloud,
                                                    compute_config: Config) -> None:
    compute_config.compute.quotas.ram = -1
    sid = (await compute_cloud.boot("stuck", user="demo"))["id"]
    r = await compute_cloud.request("POST", "/flavors", json={"flavor": {
        "name": "giant", "ram": 10 ** 6, "vcpus": 1, "disk": 1, "id": "giant"}})
    assert r.status_code == 200
    assert await act(compute_cloud, sid, {"resize": {"flavorRef": "giant"}}) == 202
    server = await compute_cloud.wait_for(sid, "ACTIVE", user="demo")
    assert server["flavor"]["id"] == "1"
    assert list(await usage(compute_cloud)) == [sid]
    actions = (await compute_cloud.request("GET", f"/servers/{sid}/os-instance-actions/"
                                           f"{await last_request(compute_cloud, sid)}",
                                           version="2.84")).json()["instanceAction"]
    assert actions["action"] == "resize"
    assert actions["events"][0]["result"] == "Error"


async def last_request(cloud: ComputeCloud, sid: str) -> str:
    r = await cloud.request("GET", f"/servers/{sid}/os-instance-actions")
    return str(r.json()["instanceActions"][0]["request_id"])


async def test_a_restarted_source_finishes_a_confirm_it_lost(
        compute_cloud: ComputeCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cast leaves the queue when its handler starts: an agent stopped in the middle of
    a confirm finishes it when it reconciles on restart."""
    sid = await _resized(compute_cloud, "lost-confirm")
    agent = compute_cloud.agent
    real = agent.migration_step

    async def dropped(m: Any) -> None:
        if not isinstance(m, ConfirmResize):
            await real(m)

    monkeypatch.setattr(agent, "migration_step", dropped)
    assert await act(compute_cloud, sid, {"confirmResize": None}) == 204
    await asyncio.sleep(0.1)
    assert (await compute_cloud.show(sid, user="demo"))["status"] == "VERIFY_RESIZE"
    assert await _migration_status(compute_cloud, sid) == "confirming"
    monkeypatch.setattr(agent, "migration_step", real)
    await agent.reconcile()
    server = await compute_cloud.wait_for(sid, "ACTIVE", user="demo")
    assert server["flavor"]["id"] == "2" and sid not in agent.driver.kept
    assert list(await usage(compute_cloud)) == [sid]
    assert await _migration_status(compute_cloud, sid) == "confirmed"
