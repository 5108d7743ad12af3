"""Quotas: usage, limits and enforcement when creates race."""

from __future__ import annotations

import asyncio

from tests.functional.volume.conftest import VolumeCloud


async def test_quota_enforced_under_concurrency(volume_cloud: VolumeCloud) -> None:
    demo = await volume_cloud.project_id("demo")
    r = await volume_cloud.request("PUT", f"/os-quota-sets/{demo}", json={"quota_set": {
        "volumes": 3, "gigabytes": 100}})
    assert r.status_code == 200 and r.json()["quota_set"]["volumes"] == 3
    results = await asyncio.gather(*[volume_cloud.request(
        "POST", "/volumes", user="demo", json={"volume": {"size": 1}}) for _ in range(8)])
    codes = sorted(r.status_code for r in results)
    assert codes == [202] * 3 + [413] * 5
    over = next(r for r in results if r.status_code == 413).json()
    assert "VolumeLimitExceeded" in over["overLimit"]["message"]
    r = await volume_cloud.request("GET", f"/os-quota-sets/{demo}?usage=true")
    assert r.json()["quota_set"]["volumes"] == {"limit": 3, "in_use": 3, "reserved": 0,
                                                "allocated": 0}
    r = await volume_cloud.request("GET", "/limits", user="demo")
    absolute = r.json()["limits"]["absolute"]
    assert absolute["maxTotalVolumes"] == 3 and absolute["totalVolumesUsed"] == 3
    # lowering a limit below the usage is refused; the gigabytes quota counts sizes
    r = await volume_cloud.request("PUT", f"/os-quota-sets/{demo}", json={"quota_set": {
        "volumes": 2}})
    assert r.status_code == 400
    r = await volume_cloud.request("PUT", f"/os-quota-sets/{demo}", json={"quota_set": {
        "volumes": 10, "gigabytes": 4}})
    r = await volume_cloud.request("POST", "/volumes", user="demo",
                                   json={"volume": {"size": 2}})
    assert r.status_code == 413 and "gigabytes" in r.json()["overLimit"]["message"]
    r = await volume_cloud.request("DELETE", f"/os-quota-sets/{demo}")
    assert r.status_code == 200
    r = await volume_cloud.request("GET", f"/os-quota-sets/{demo}")
    assert r.json()["quota_set"]["volumes"] == 10  # back to the default
