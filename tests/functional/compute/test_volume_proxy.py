"""``os-volumes`` / ``os-snapshots``: Nova's proxy to the real block storage service."""

from __future__ import annotations

import asyncio

from tests.functional.compute.test_volume_attachments import Cloud, cloud, config  # noqa: F401


async def test_volume_and_snapshot_through_the_proxy(cloud: Cloud) -> None:  # noqa: F811
    r = await cloud.request("POST", "/os-volumes", version="2.1", json={"volume": {
        "size": 1, "display_name": "v1", "display_description": "d", "metadata": {"a": "b"}}})
    assert r.status_code == 200, r.text
    vol = r.json()["volume"]
    assert set(vol) == {"id", "status", "size", "availabilityZone", "createdAt",
                        "attachments", "displayName", "displayDescription", "volumeType",
                        "snapshotId", "metadata"}
    assert (vol["size"], vol["displayName"], vol["metadata"]) == (1, "v1", {"a": "b"})
    assert vol["attachments"] == [{}]
    await cloud.wait_volume(vol["id"], "available")
    r = await cloud.request("GET", f"/os-volumes/{vol['id']}", version="2.1")
    assert r.status_code == 200 and r.json()["volume"]["status"] == "available"
    for path in ("/os-volumes", "/os-volumes/detail"):
        r = await cloud.request("GET", path, version="2.1")
        assert vol["id"] in [v["id"] for v in r.json()["volumes"]]

    r = await cloud.request("POST", "/os-snapshots", version="2.1", json={"snapshot": {
        "volume_id": vol["id"], "display_name": "s1", "force": False}})
    assert r.status_code == 200, r.text
    snap = r.json()["snapshot"]
    assert (snap["volumeId"], snap["displayName"], snap["size"]) == (vol["id"], "s1", 1)
    for _ in range(500):
        r = await cloud.request("GET", f"/os-snapshots/{snap['id']}", version="2.1")
        if r.json()["snapshot"]["status"] == "available":
            break
        await asyncio.sleep(0.01)
    assert r.json()["snapshot"]["status"] == "available"
    r = await cloud.request("GET", "/os-snapshots/detail", version="2.1")
    assert [s["id"] for s in r.json()["snapshots"]] == [snap["id"]]
    assert (await cloud.request("DELETE", f"/os-snapshots/{snap['id']}",
                                version="2.1")).status_code == 202
    for _ in range(500):
        r = await cloud.request("GET", f"/os-snapshots/{snap['id']}", version="2.1")
        if r.status_code == 404:
            break
        await asyncio.sleep(0.01)
    assert r.status_code == 404 and "itemNotFound" in r.json()
    assert (await cloud.request("DELETE", f"/os-volumes/{vol['id']}",
                                version="2.1")).status_code == 202
    await cloud.wait_volume(vol["id"], "gone")


async def test_bad_sizes_and_missing_volumes(cloud: Cloud) -> None:  # noqa: F811
    for body in ({"size": "#$%"}, {"size": 0}, {"display_name": "no size"}, {"size": True}):
        r = await cloud.request("POST", "/os-volumes", version="2.1", json={"volume": body})
        assert r.status_code == 400 and "badRequest" in r.json(), (body, r.text)
    r = await cloud.request("GET", "/os-volumes/00000000-0000-0000-0000-000000000000",
                            version="2.1")
    assert r.status_code == 404 and "itemNotFound" in r.json()
    r = await cloud.request("GET", "/os-volumes", version="2.36")
    assert r.status_code == 404
