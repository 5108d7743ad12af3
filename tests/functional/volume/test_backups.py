"""Backups: create, restore (to a new and to an existing volume), checksum failures,
transfers."""

from __future__ import annotations

import pytest

from stackling.volume.backup.store import MemoryBackupStore
from tests.functional.volume.conftest import VolumeCloud


@pytest.mark.parametrize("volume_backend", ["file"])
async def test_backup_restore_same_data(volume_cloud: VolumeCloud) -> None:
    pool = volume_cloud.config.data_dir / "volumes"
    vol = await volume_cloud.create(1, metadata={"k": "v"})
    with (pool / f"volume-{vol['id']}").open("r+b") as fh:
        fh.write(b"backed-up-bytes")
        fh.seek(600 << 20)
        fh.write(b"in-the-middle")
    r = await volume_cloud.request("POST", "/backups", json={"backup": {
        "volume_id": vol["id"], "name": "b1"}})
    assert r.status_code == 202, r.text
    backup = await volume_cloud.wait(r.json()["backup"]["id"], "available", path="backups",
                                     key="backup")
    assert backup["size"] == 1 and backup["object_count"] == 2  # zero chunks are not stored
    assert (await volume_cloud.show(vol["id"]))["status"] == "available"
    r = await volume_cloud.request("POST", f"/backups/{backup['id']}/restore",
                                   json={"restore": {"name": "restored"}})
    assert r.status_code == 202, r.text
    new_id = r.json()["restore"]["volume_id"]
    restored = await volume_cloud.wait(new_id, "available")
    assert restored["metadata"]["k"] == "v"
    with (pool / f"volume-{new_id}").open("rb") as fh:
        assert fh.read(15) == b"backed-up-bytes"
        fh.seek(600 << 20)
        assert fh.read(13) == b"in-the-middle"
    # corrupt the stored data: the restore fails, the target is marked, nothing is written
    store = volume_cloud.volume.backups
    assert isinstance(store, MemoryBackupStore)
    key = next(k for k in store.chunks if k[0] == backup["id"])
    store.chunks[key] = b"x" * len(store.chunks[key])
    target = await volume_cloud.create(1)
    r = await volume_cloud.request("POST", f"/backups/{backup['id']}/restore",
                                   json={"restore": {"volume_id": target["id"]}})
    assert r.status_code == 202
    await volume_cloud.wait(target["id"], "error_restoring")
    assert (await volume_cloud.wait(backup["id"], "available", path="backups",
                                    key="backup"))["fail_reason"]
    with (pool / f"volume-{target['id']}").open("rb") as fh:
        assert fh.read(15) == bytes(15)
    r = await volume_cloud.request("DELETE", f"/backups/{backup['id']}")
    assert r.status_code == 202
    await volume_cloud.wait(backup["id"], "gone", path="backups", key="backup")
    assert not any(k[0] == backup["id"] for k in store.chunks)


async def test_transfer(volume_cloud: VolumeCloud) -> None:
    vol = await volume_cloud.create(1)
    r = await volume_cloud.request("POST", "/os-volume-transfer", json={"transfer": {
        "volume_id": vol["id"], "name": "t"}})
    assert r.status_code == 202, r.text
    transfer = r.json()["transfer"]
    assert (await volume_cloud.show(vol["id"]))["status"] == "awaiting-transfer"
    r = await volume_cloud.request("POST", f"/os-volume-transfer/{transfer['id']}/accept",
                                   user="demo", json={"accept": {"auth_key": "wrong"}})
    assert r.status_code == 400
    r = await volume_cloud.request("POST", f"/os-volume-transfer/{transfer['id']}/accept",
                                   user="demo", json={"accept": {
                                       "auth_key": transfer["auth_key"]}})
    assert r.status_code == 202, r.text
    mine = await volume_cloud.show(vol["id"], user="demo")
    assert mine["status"] == "available"
    r = await volume_cloud.request("GET", f"/volumes/{vol['id']}?x=1", user="admin")
    assert r.json()["volume"]["os-vol-tenant-attr:tenant_id"] == \
        await volume_cloud.project_id("demo")
