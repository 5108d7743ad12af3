"""Snapshots, clones, actions and the attach flows, with their status transitions."""

from __future__ import annotations

import asyncio

import pytest

from stackling.volume.backends import MemoryBackend
from tests.functional.volume.conftest import VolumeCloud


async def test_snapshot_then_volume_from_snapshot_and_clone(volume_cloud: VolumeCloud) -> None:
    backend = volume_cloud.backend
    assert isinstance(backend, MemoryBackend)
    vol = await volume_cloud.create(1)
    backend.volumes[vol["id"]][1].extend(b"hello")
    r = await volume_cloud.request("POST", "/snapshots", json={"snapshot": {
        "volume_id": vol["id"], "name": "s1", "metadata": {"k": "v"}}})
    assert r.status_code == 202, r.text
    snap = await volume_cloud.wait(r.json()["snapshot"]["id"], "available", path="snapshots",
                                   key="snapshot")
    assert snap["size"] == 1 and snap["metadata"] == {"k": "v"}
    backend.volumes[vol["id"]][1][:] = b"changed"
    from_snap = await volume_cloud.create(2, snapshot_id=snap["id"])
    assert from_snap["snapshot_id"] == snap["id"] and from_snap["size"] == 2
    assert bytes(backend.volumes[from_snap["id"]][1]) == b"hello"
    clone = await volume_cloud.create(None, source_volid=vol["id"])
    assert clone["size"] == 1 and bytes(backend.volumes[clone["id"]][1]) == b"changed"
    # a volume with snapshots cannot be deleted unless cascade
    r = await volume_cloud.request("DELETE", f"/volumes/{vol['id']}")
    assert r.status_code == 400
    r = await volume_cloud.request("DELETE", f"/volumes/{vol['id']}?cascade=true")
    assert r.status_code == 202
    await volume_cloud.wait(vol["id"], "gone")
    assert snap["id"] not in backend.snapshots


async def test_extend_bootable_readonly(volume_cloud: VolumeCloud) -> None:
    vol = await volume_cloud.create(1)
    vid = vol["id"]
    await volume_cloud.action(vid, {"os-extend": {"new_size": 3}})
    assert (await volume_cloud.wait(vid, "available"))["size"] == 3
    await volume_cloud.action(vid, {"os-extend": {"new_size": 2}}, expect=400)
    await volume_cloud.action(vid, {"os-set_bootable": {"bootable": True}}, expect=200)
    assert (await volume_cloud.show(vid))["bootable"] == "true"
    await volume_cloud.action(vid, {"os-update_readonly_flag": {"readonly": True}})
    r = await volume_cloud.action(vid, {"os-nothing": {}}, expect=400)
    assert "badRequest" in r.json()


async def test_old_attach_flow_and_races(volume_cloud: VolumeCloud) -> None:
    vid = (await volume_cloud.create(1))["id"]
    await volume_cloud.action(vid, {"os-reserve": None})
    assert (await volume_cloud.show(vid))["status"] == "attaching"
    await volume_cloud.action(vid, {"os-reserve": None}, expect=400)  # already reserved
    await volume_cloud.action(vid, {"os-unreserve": None})
    assert (await volume_cloud.show(vid))["status"] == "available"
    await volume_cloud.action(vid, {"os-reserve": None})
    r = await volume_cloud.action(vid, {"os-initialize_connection": {"connector": {
        "host": "node-1", "initiator": "x"}}}, expect=200)
    assert r.json()["connection_info"]["driver_volume_type"] == "memory"
    server = "11111111-2222-3333-4444-555555555555"
    await volume_cloud.action(vid, {"os-attach": {"instance_uuid": server,
                                                  "mountpoint": "/dev/vdb"}})
    vol = await volume_cloud.show(vid)
    assert vol["status"] == "in-use" and vol["attachments"][0]["server_id"] == server
    r = await volume_cloud.request("DELETE", f"/volumes/{vid}")
    assert r.status_code == 400  # attached
    await volume_cloud.action(vid, {"os-begin_detaching": None})
    await volume_cloud.action(vid, {"os-roll_detaching": None})
    assert (await volume_cloud.show(vid))["status"] == "in-use"
    await volume_cloud.action(vid, {"os-begin_detaching": None})
    await volume_cloud.action(vid, {"os-terminate_connection": {"connector": {}}})
    await volume_cloud.action(vid, {"os-detach": {}})
    vol = await volume_cloud.show(vid)
    assert vol["status"] == "available" and vol["attachments"] == []
    # as Cinder: detaching again is harmless; an unknown attachment id is 404
    await volume_cloud.action(vid, {"os-detach": {}})
    assert (await volume_cloud.show(vid))["status"] == "available"
    await volume_cloud.action(vid, {"os-detach": {
        "attachment_id": "8b1e3b1c-3e7a-4d5e-9f00-00000000dead"}}, expect=404)
    # two concurrent reserves: exactly one wins
    results = await asyncio.gather(*[volume_cloud.request(
        "POST", f"/volumes/{vid}/action", json={"os-reserve": None}) for _ in range(4)])
    assert sorted(r.status_code for r in results) == [202, 400, 400, 400]


async def test_attachments_api(volume_cloud: VolumeCloud) -> None:
    vid = (await volume_cloud.create(1))["id"]
    server = "11111111-2222-3333-4444-555555555555"
    r = await volume_cloud.request("POST", "/attachments", json={"attachment": {
        "volume_uuid": vid, "instance_uuid": server}})
    assert r.status_code == 200, r.text
    att = r.json()["attachment"]
    assert att["status"] == "reserved"
    assert (await volume_cloud.show(vid))["status"] == "reserved"
    r = await volume_cloud.request("PUT", f"/attachments/{att['id']}", json={"attachment": {
        "connector": {"host": "node-1", "mountpoint": "/dev/vdb"}}})
    assert r.json()["attachment"]["connection_info"]["driver_volume_type"] == "memory"
    assert (await volume_cloud.show(vid))["status"] == "attaching"
    r = await volume_cloud.request("POST", f"/attachments/{att['id']}/action",
                                   json={"os-complete": None})
    assert r.status_code == 204
    vol = await volume_cloud.show(vid)
    assert vol["status"] == "in-use" and vol["attachments"][0]["attachment_id"] == att["id"]
    assert vid in volume_cloud.backend.exports  # type: ignore[attr-defined]
    r = await volume_cloud.request("DELETE", f"/attachments/{att['id']}")
    assert r.status_code == 200
    assert (await volume_cloud.show(vid))["status"] == "available"
    assert vid not in volume_cloud.backend.exports  # type: ignore[attr-defined]
    r = await volume_cloud.request("POST", "/attachments", version="3.26", json={
        "attachment": {"volume_uuid": vid}})
    assert r.status_code == 404


async def test_backend_failure_leaves_error_and_nothing_behind(volume_cloud: VolumeCloud
                                                               ) -> None:
    backend = volume_cloud.backend
    assert isinstance(backend, MemoryBackend)
    backend.fail.add("create")
    vol = await volume_cloud.create(1, wait="error")
    assert not await backend.exists(vol["id"])
    backend.fail.clear()
    r = await volume_cloud.request("DELETE", f"/volumes/{vol['id']}")
    assert r.status_code == 202
    await volume_cloud.wait(vol["id"], "gone")
    good = await volume_cloud.create(1)
    backend.fail.add("delete_volume")
    await volume_cloud.request("DELETE", f"/volumes/{good['id']}")
    await volume_cloud.wait(good["id"], "error_deleting")
    backend.fail.clear()
    await volume_cloud.request("DELETE", f"/volumes/{good['id']}?force=true")
    await volume_cloud.wait(good["id"], "gone")
    backend.fail.add("extend")
    ext = await volume_cloud.create(1)
    await volume_cloud.action(ext["id"], {"os-extend": {"new_size": 2}})
    assert (await volume_cloud.wait(ext["id"], "error_extending"))["size"] == 1


async def test_no_valid_backend(volume_cloud: VolumeCloud) -> None:
    r = await volume_cloud.request("POST", "/types", json={"volume_type": {
        "name": "gold", "extra_specs": {"volume_backend_name": "other"}}})
    assert r.status_code == 200, r.text
    vol = await volume_cloud.create(1, volume_type="gold", wait="error")
    assert vol["volume_type"] == "gold"
    r = await volume_cloud.request("POST", "/types", json={"volume_type": {
        "name": "mem", "extra_specs": {"volume_backend_name": "memory"}}})
    ok = await volume_cloud.create(1, volume_type="mem")
    assert ok["status"] == "available"
    r = await volume_cloud.request("POST", "/volumes", json={"volume": {"size": 101 * 20}})
    assert r.status_code == 413  # over the gigabytes quota before capacity matters


@pytest.mark.parametrize("volume_backend", ["file"])
async def test_file_backend_snapshot_clone_extend(volume_cloud: VolumeCloud) -> None:
    pool = volume_cloud.config.data_dir / "volumes"
    vol = await volume_cloud.create(1)
    path = pool / f"volume-{vol['id']}"
    with path.open("r+b") as fh:
        fh.write(b"stackling-data")
    r = await volume_cloud.request("POST", "/snapshots", json={"snapshot": {
        "volume_id": vol["id"]}})
    snap = await volume_cloud.wait(r.json()["snapshot"]["id"], "available", path="snapshots",
                                   key="snapshot")
    new = await volume_cloud.create(2, snapshot_id=snap["id"])
    new_path = pool / f"volume-{new['id']}"
    assert new_path.stat().st_size == 2 << 30
    assert new_path.read_bytes()[:14] == b"stackling-data"
    await volume_cloud.action(vol["id"], {"os-extend": {"new_size": 2}})
    await volume_cloud.wait(vol["id"], "available")
    assert path.stat().st_size == 2 << 30
    for vid in (new["id"], vol["id"]):
        r = await volume_cloud.request("DELETE", f"/volumes/{vid}?cascade=true")
        assert r.status_code == 202
        await volume_cloud.wait(vid, "gone")
    assert list(pool.iterdir()) == []


@pytest.mark.parametrize("volume_backend", ["nbd"])
async def test_nbd_attachment_exports_and_unexports(volume_cloud: VolumeCloud) -> None:
    vid = (await volume_cloud.create(1))["id"]
    r = await volume_cloud.request("POST", "/attachments", json={"attachment": {
        "volume_uuid": vid, "instance_uuid": "11111111-2222-3333-4444-555555555555",
        "connector": {"host": "node-2"}}})
    assert r.status_code == 200, r.text
    att = r.json()["attachment"]
    info = att["connection_info"]
    assert info["driver_volume_type"] == "nbd" and info["data"]["access_mode"] == "rw"
    url = f"nbd://{info['data']['host']}:{info['data']['port']}/{info['data']['export_name']}"
    proc = await asyncio.create_subprocess_exec(
        "qemu-io", "-f", "raw", "-c", "write -P 0x33 0 4k", "-c", "read -P 0x33 0 4k", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0 and b"verification failed" not in out, out + err
    r = await volume_cloud.request("DELETE", f"/attachments/{att['id']}")
    assert r.status_code == 200
    assert volume_cloud.backend.procs == {}  # type: ignore[attr-defined]
    r = await volume_cloud.request("DELETE", f"/volumes/{vid}")
    await volume_cloud.wait(vid, "gone")
    assert list((volume_cloud.config.data_dir / "volumes").iterdir()) == []


async def test_encryption_specs_are_recorded_and_encrypted_types_refused(
        volume_cloud: VolumeCloud) -> None:
    r = await volume_cloud.request("POST", "/types", json={"volume_type": {"name": "luks"}})
    tid = r.json()["volume_type"]["id"]
    r = await volume_cloud.request("POST", f"/types/{tid}/encryption", json={"encryption": {
        "provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256,
        "control_location": "front-end"}})
    assert r.status_code == 200, r.text
    enc = r.json()["encryption"]
    r = await volume_cloud.request("POST", "/volumes", json={"volume": {
        "size": 1, "volume_type": tid}})
    assert r.status_code == 400 and "encryption" in r.json()["badRequest"]["message"]
    r = await volume_cloud.request("PUT", f"/types/{tid}/encryption/{enc['encryption_id']}",
                                   json={"encryption": {"key_size": 128}})
    assert r.json() == {"encryption": {"key_size": 128}}
    r = await volume_cloud.request("GET", f"/types/{tid}/encryption/key_size")
    assert r.json() == {"key_size": "128"}
    r = await volume_cloud.request("DELETE", f"/types/{tid}/encryption/{enc['encryption_id']}")
    assert r.status_code == 202
    r = await volume_cloud.request("GET", f"/types/{tid}/encryption")
    assert r.json() == {}
    vol = await volume_cloud.create(1, volume_type=tid)
    assert vol["encrypted"] is False
