"""Group types, groups and group snapshots (bookkeeping over ordinary volumes)."""

from __future__ import annotations

from typing import Any

from tests.functional.volume.conftest import VolumeCloud


async def make_group(cloud: VolumeCloud) -> tuple[str, str]:
    r = await cloud.request("POST", "/types", json={"volume_type": {"name": "g-vt"}})
    vtype = r.json()["volume_type"]["id"]
    r = await cloud.request("POST", "/group_types", json={"group_type": {"name": "gt"}})
    assert r.status_code == 202, r.text
    r = await cloud.request("POST", "/groups", json={"group": {
        "name": "g1", "group_type": r.json()["group_type"]["id"], "volume_types": [vtype]}})
    assert r.status_code == 202, r.text
    return r.json()["group"]["id"], vtype


async def test_group_snapshot_and_group_from_it(volume_cloud: VolumeCloud) -> None:
    group, vtype = await make_group(volume_cloud)
    vol = await volume_cloud.create(1, volume_type=vtype, group_id=group)
    assert vol["group_id"] == group
    r = await volume_cloud.request("DELETE", f"/volumes/{vol['id']}")
    assert r.status_code == 400  # it belongs to a group
    r = await volume_cloud.request("POST", "/group_snapshots", json={"group_snapshot": {
        "group_id": group, "name": "gs"}})
    assert r.status_code == 202, r.text
    gsnap = await volume_cloud.wait(r.json()["group_snapshot"]["id"], "available",
                                    path="group_snapshots", key="group_snapshot")
    r = await volume_cloud.request("POST", "/groups/action", json={"create-from-src": {
        "group_snapshot_id": gsnap["id"], "name": "g2"}})
    assert r.status_code == 202, r.text
    g2 = await volume_cloud.wait(r.json()["group"]["id"], "available", path="groups",
                                 key="group")
    r = await volume_cloud.request("GET", "/volumes/detail")
    members: list[dict[str, Any]] = [v for v in r.json()["volumes"] if v["group_id"] == g2["id"]]
    assert len(members) == 1 and members[0]["status"] == "available"
    r = await volume_cloud.request("POST", f"/groups/{group}/action",
                                   json={"delete": {"delete-volumes": True}})
    assert r.status_code == 400  # it has a group snapshot
    r = await volume_cloud.request("DELETE", f"/group_snapshots/{gsnap['id']}")
    assert r.status_code == 202
    await volume_cloud.wait(gsnap["id"], "gone", path="group_snapshots", key="group_snapshot")
    for gid in (group, g2["id"]):
        r = await volume_cloud.request("POST", f"/groups/{gid}/action",
                                       json={"delete": {"delete-volumes": True}})
        assert r.status_code == 202, r.text
    for volume_id in (vol["id"], members[0]["id"]):  # each group deletes its own
        await volume_cloud.wait(volume_id, "gone")
    assert volume_cloud.backend.volumes == {}  # type: ignore[attr-defined]
