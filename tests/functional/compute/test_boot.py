"""The flow end to end (DESIGN.md §1): create -> scheduler claim -> agent via conductor ->
fake driver -> ACTIVE; delete frees the claim."""

from __future__ import annotations

from sqlalchemy import func, select

from stackling.compute.models import Allocation
from tests.functional.compute.conftest import IMAGE_ID, ComputeCloud


async def allocations(cloud: ComputeCloud, consumer: str | None = None) -> int:
    assert cloud.compute.svc is not None
    async with cloud.compute.svc.store.read() as session:
        query = select(func.count()).select_from(Allocation)
        if consumer:
            query = query.where(Allocation.consumer_id == consumer)
        return int((await session.execute(query)).scalar_one())


async def test_boot_to_active_and_delete(compute_cloud: ComputeCloud) -> None:
    created = await compute_cloud.boot("web-1")
    assert created["adminPass"]
    server = await compute_cloud.show(created["id"], version="2.37")
    assert server["status"] == "ACTIVE"
    assert server["OS-EXT-STS:vm_state"] == "active"
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["OS-EXT-SRV-ATTR:host"] == "node-1"
    assert server["OS-EXT-AZ:availability_zone"] == "nova"
    assert server["image"]["id"] == IMAGE_ID
    assert server["flavor"]["id"] == "1"
    assert server["OS-SRV-USG:launched_at"]
    assert await allocations(compute_cloud, created["id"]) == 3
    assert created["id"] in compute_cloud.agent.driver.vms
    r = await compute_cloud.request("DELETE", f"/servers/{created['id']}")
    assert r.status_code == 204
    await compute_cloud.wait_gone(created["id"])
    assert await allocations(compute_cloud) == 0
    assert created["id"] not in compute_cloud.agent.driver.vms
