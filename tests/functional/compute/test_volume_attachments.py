"""``os-volume_attachments`` against the real block storage service (memory backend) and
the fake hypervisor: attach/detach/list, the errors, delete_on_termination."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from stackling.cli.cloudsyaml import read_passwords
from stackling.cli.component import Runtime
from stackling.cli.compute import ComputeComponent
from stackling.cli.up import build_root_app, prepare_all, start_bus, start_components
from stackling.cli.volume import VolumeComponent
from stackling.common.config import Config, load_config
from stackling.compute.virt.driver import VirtError
from stackling.volume.backends import MemoryBackend
from stackling.volume.backup.store import MemoryBackupStore
from tests.functional.compute.conftest import IMAGE_ID, ComputeCloud, FakeImages, _Late

VOLUME_VERSION = "volume 3.70"


class Cloud(ComputeCloud):
    def __init__(self, *args: Any, backend: MemoryBackend) -> None:
        super().__init__(*args)
        self.backend = backend

    async def volume_request(self, method: str, path: str, *, user: str = "admin",
                             **kwargs: Any) -> httpx.Response:
        headers = {"X-Auth-Token": await self.token(user, user),
                   "OpenStack-API-Version": VOLUME_VERSION}
        return await self.client.request(method, f"/volume/v3{path}", headers=headers,
                                         **kwargs)

    async def volume(self, volume_id: str, user: str = "admin") -> dict[str, Any]:
        r = await self.volume_request("GET", f"/volumes/{volume_id}", user=user)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()["volume"]
        return body

    async def new_volume(self, user: str = "admin", size: int = 1) -> str:
        r = await self.volume_request("POST", "/volumes", user=user,
                                      json={"volume": {"size": size, "name": "data"}})
        assert r.status_code == 202, r.text
        volume_id: str = r.json()["volume"]["id"]
        await self.wait_volume(volume_id, "available", user)
        return volume_id

    async def wait_volume(self, volume_id: str, status: str, user: str = "admin") -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            r = await self.volume_request("GET", f"/volumes/{volume_id}", user=user)
            if status == "gone" and r.status_code == 404:
                return
            if r.status_code == 200 and r.json()["volume"]["status"] == status:
                return
            assert loop.time() < deadline, f"{volume_id}: {r.status_code} {r.text}"
            await asyncio.sleep(0.01)

    async def attach(self, server_id: str, volume_id: str, *, version: str = "2.89",
                     user: str = "admin", **extra: Any) -> httpx.Response:
        return await self.request("POST", f"/servers/{server_id}/os-volume_attachments",
                                  user=user, version=version,
                                  json={"volumeAttachment": {"volumeId": volume_id, **extra}})


class Images(FakeImages):
    """The stand-in image service, also serving image data (volumes made from images)."""

    async def start(self, runtime: Runtime) -> ASGIApp:
        app = await super().start(runtime)

        async def data(request: Request) -> Response:
            if request.path_params["image_id"] not in self.images:
                return Response(status_code=404)
            return Response(b"\0" * 1024, media_type="application/octet-stream")

        assert isinstance(app, Starlette)
        app.router.routes.insert(0, Route("/v2/images/{image_id}/file", data,
                                          methods=["GET"]))
        return app


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 0},
        "compute": {"host": "node-1", "heartbeat_interval": 0.2},
        "volume": {"host": "node-1", "backend": "memory", "heartbeat_interval": 0.2,
                   "backup_store": "memory", "capacity_gb": 100},
    })


@pytest.fixture
async def cloud(config: Config) -> AsyncIterator[Cloud]:
    late = _Late()
    http = httpx.AsyncClient(transport=late, base_url="http://testserver")
    images = Images()
    backend = MemoryBackend("memory", capacity_gb=100)
    volume = VolumeComponent(http=http, backend=backend, backups=MemoryBackupStore())
    compute = ComputeComponent(http=http)
    async with AsyncExitStack() as stack:
        prepared = await prepare_all(config, [images, volume, compute])
        stack.push_async_callback(prepared.identity.close)
        bus = await start_bus(config, prepared.identity, stack)
        mounted = await start_components(prepared, config, bus, stack)
        app = build_root_app(prepared.identity, config, mounted)
        late.app = app
        passwords = read_passwords(config.data_dir / "clouds.yaml")
        assert passwords is not None
        stack.push_async_callback(http.aclose)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver", timeout=60) as client:
            yield Cloud(config, client, dict(passwords), compute, images, backend=backend)


def _vm(cloud: Cloud, server_id: str) -> Any:
    return cloud.agent.driver.vms[server_id]


async def test_attach_list_show_detach(cloud: Cloud) -> None:
    server = await cloud.boot()
    volume_id = await cloud.new_volume()
    r = await cloud.attach(server["id"], volume_id, tag="data", delete_on_termination=False)
    assert r.status_code == 200, r.text
    att = r.json()["volumeAttachment"]
    assert att["volumeId"] == volume_id and att["serverId"] == server["id"]
    assert att["device"] == "/dev/vdb" and att["tag"] == "data"
    assert att["delete_on_termination"] is False and "id" not in att
    assert att["attachment_id"] and att["bdm_uuid"]
    # the volume is in-use, exported to this host, plugged into the guest
    volume = await cloud.volume(volume_id)
    assert volume["status"] == "in-use"
    assert volume["attachments"][0]["server_id"] == server["id"]
    assert volume["attachments"][0]["host_name"] == "node-1"
    assert volume_id in cloud.backend.exports
    assert volume_id in _vm(cloud, server["id"]).volumes

    # old microversion: the id, no tag/delete_on_termination/attachment_id
    r = await cloud.request("GET", f"/servers/{server['id']}/os-volume_attachments",
                            version="2.1")
    assert r.status_code == 200
    assert r.json() == {"volumeAttachments": [{"device": "/dev/vdb", "id": volume_id,
                                               "serverId": server["id"],
                                               "volumeId": volume_id}]}
    r = await cloud.request("GET", f"/servers/{server['id']}/os-volume_attachments/"
                            f"{volume_id}", version="2.79")
    assert r.status_code == 200
    assert r.json()["volumeAttachment"]["delete_on_termination"] is False
    assert "attachment_id" not in r.json()["volumeAttachment"]
    # server show lists the volume
    shown = await cloud.show(server["id"], version="2.3")
    assert shown["os-extended-volumes:volumes_attached"] == [
        {"id": volume_id, "delete_on_termination": False}]

    # update (2.85): delete_on_termination only; a swap is refused; unknown volume 404
    path = f"/servers/{server['id']}/os-volume_attachments/{volume_id}"
    r = await cloud.request("PUT", path, version="2.85", json={"volumeAttachment": {
        "volumeId": volume_id, "delete_on_termination": True}})
    assert r.status_code == 202, r.text
    r = await cloud.request("GET", path, version="2.85")
    assert r.json()["volumeAttachment"]["delete_on_termination"] is True
    r = await cloud.request("PUT", path, version="2.85", json={"volumeAttachment": {
        "volumeId": volume_id, "device": "/dev/vdz"}})
    assert r.status_code == 400
    other = await cloud.new_volume()
    r = await cloud.request("PUT", path, version="2.85", json={"volumeAttachment": {
        "volumeId": other}})
    assert r.status_code == 400 and "not supported" in r.text
    r = await cloud.request("PUT", f"/servers/{server['id']}/os-volume_attachments/"
                            "11111111-2222-3333-4444-555555555555",
                            json={"volumeAttachment": {"volumeId": other}})
    assert r.status_code == 404
    r = await cloud.request("PUT", path, version="2.85", json={"volumeAttachment": {
        "volumeId": volume_id, "bogus": 1}})
    assert r.status_code == 400
    r = await cloud.request("PUT", path, version="2.85", json={"volumeAttachment": {
        "volumeId": volume_id, "delete_on_termination": False}})
    assert r.status_code == 202

    r = await cloud.request("DELETE", f"/servers/{server['id']}/os-volume_attachments/"
                            f"{volume_id}")
    assert r.status_code == 202, r.text
    assert (await cloud.volume(volume_id))["status"] == "available"
    assert volume_id not in cloud.backend.exports
    assert volume_id not in _vm(cloud, server["id"]).volumes
    r = await cloud.request("GET", f"/servers/{server['id']}/os-volume_attachments")
    assert r.json() == {"volumeAttachments": []}
    # and again: the second volume takes the next free device
    second = await cloud.new_volume()
    assert (await cloud.attach(server["id"], volume_id)).json()["volumeAttachment"][
        "device"] == "/dev/vdb"
    assert (await cloud.attach(server["id"], second)).json()["volumeAttachment"][
        "device"] == "/dev/vdc"


async def test_attach_errors(cloud: Cloud) -> None:
    server = await cloud.boot()
    other = await cloud.boot("other")
    volume_id = await cloud.new_volume()
    path = f"/servers/{server['id']}/os-volume_attachments"
    # unknown volume: 404; not a uuid: 400; unknown server: 404
    r = await cloud.attach(server["id"], "8b1e3b1c-3e7a-4d5e-9f00-00000000dead")
    assert r.status_code == 404 and "itemNotFound" in r.json()
    assert (await cloud.attach(server["id"], "nope")).status_code == 400
    r = await cloud.attach("8b1e3b1c-3e7a-4d5e-9f00-00000000beef", volume_id)
    assert r.status_code == 404
    # tag before 2.49, delete_on_termination before 2.79: 400
    assert (await cloud.attach(server["id"], volume_id, version="2.48",
                               tag="x")).status_code == 400
    assert (await cloud.attach(server["id"], volume_id, version="2.78",
                               delete_on_termination=True)).status_code == 400
    assert (await cloud.attach(server["id"], volume_id)).status_code == 200
    # already attached here, or attached elsewhere: 400 (tempest expects BadRequest)
    r = await cloud.attach(server["id"], volume_id)
    assert r.status_code == 400 and "already attached" in r.json()["badRequest"]["message"]
    r = await cloud.attach(other["id"], volume_id)
    assert r.status_code == 400, r.text
    # another project's volume does not exist for a member
    mine = await cloud.boot("mine", user="demo")
    theirs = await cloud.new_volume(user="demo")
    admins = await cloud.new_volume()
    assert (await cloud.attach(mine["id"], admins, user="demo")).status_code == 404
    # a locked server: 409 for its owner
    r = await cloud.request("POST", f"/servers/{mine['id']}/action", user="demo",
                            json={"lock": None})
    assert r.status_code == 202
    r = await cloud.attach(mine["id"], theirs, user="demo")
    assert r.status_code == 409 and "locked" in r.json()["conflictingRequest"]["message"]
    assert (await cloud.volume(theirs, "demo"))["status"] == "available"
    # detaching a volume that is not attached: 404
    r = await cloud.request("DELETE", f"{path}/8b1e3b1c-3e7a-4d5e-9f00-00000000dead")
    assert r.status_code == 404
    # swap is not offered
    r = await cloud.request("PUT", f"{path}/{volume_id}",
                            json={"volumeAttachment": {"volumeId": theirs}})
    assert r.status_code == 400 and "not supported" in r.text


async def test_failed_plug_leaves_nothing(cloud: Cloud) -> None:
    server = await cloud.boot()
    volume_id = await cloud.new_volume()
    cloud.agent.driver.fail_attach = lambda vid: VirtError("QMP said no")
    r = await cloud.attach(server["id"], volume_id)
    assert r.status_code == 500, r.text
    assert "QMP said no" in r.text
    assert (await cloud.volume(volume_id))["status"] == "available"
    assert volume_id not in cloud.backend.exports
    r = await cloud.request("GET", f"/servers/{server['id']}/os-volume_attachments")
    assert r.json() == {"volumeAttachments": []}
    cloud.agent.driver.fail_attach = None
    assert (await cloud.attach(server["id"], volume_id)).status_code == 200


async def test_server_delete_detaches_and_honours_delete_on_termination(cloud: Cloud) -> None:
    server = await cloud.boot()
    kept = await cloud.new_volume()
    doomed = await cloud.new_volume()
    assert (await cloud.attach(server["id"], kept)).status_code == 200
    assert (await cloud.attach(server["id"], doomed,
                               delete_on_termination=True)).status_code == 200
    r = await cloud.request("DELETE", f"/servers/{server['id']}")
    assert r.status_code == 204
    await cloud.wait_gone(server["id"])
    await cloud.wait_volume(kept, "available")
    await cloud.wait_volume(doomed, "gone")
    assert not cloud.backend.exports


# -- boot from volume ---------------------------------------------------------------------
def _bdm(**item: Any) -> dict[str, Any]:
    return {"boot_index": 0, "destination_type": "volume", **item}


async def _boot_bdm(cloud: Cloud, name: str, *devices: dict[str, Any],
                    expect: int = 202) -> httpx.Response:
    body = {"server": {"name": name, "flavorRef": "1", "networks": "none",
                       "block_device_mapping_v2": list(devices)}}
    r = await cloud.request("POST", "/servers", json=body, version="2.89")
    assert r.status_code == expect, r.text
    return r


async def test_boot_from_image_volume_and_delete_on_termination(cloud: Cloud) -> None:
    r = await _boot_bdm(cloud, "bfv", _bdm(source_type="image", uuid=IMAGE_ID,
                                           volume_size=1, delete_on_termination=True))
    sid = r.json()["server"]["id"]
    server = await cloud.wait_for(sid, "ACTIVE")
    assert server["image"] == ""  # Nova shows no image for a volume-backed server
    r = await cloud.request("GET", f"/servers/{sid}/os-volume_attachments", version="2.89")
    (att,) = r.json()["volumeAttachments"]
    assert att["device"] == "/dev/vda" and att["delete_on_termination"] is True
    volume = await cloud.volume(att["volumeId"])
    assert volume["status"] == "in-use" and volume["bootable"] == "true"
    assert volume["attachments"][0]["server_id"] == sid
    vm = _vm(cloud, sid)
    assert vm.root_volume is not None and vm.root_volume["volume_id"] == att["volumeId"]
    assert "booted from volume" in "\n".join(vm.console)
    # the root volume cannot be detached, and the server cannot be rebuilt (its root
    # would become a local disk)
    r = await cloud.request("DELETE", f"/servers/{sid}/os-volume_attachments/"
                            f"{att['volumeId']}")
    assert r.status_code == 400, r.text
    r = await cloud.request("POST", f"/servers/{sid}/action",
                            json={"rebuild": {"imageRef": IMAGE_ID}})
    assert r.status_code == 400 and "volume-backed" in r.text
    assert (await cloud.request("DELETE", f"/servers/{sid}")).status_code == 204
    await cloud.wait_gone(sid)
    await cloud.wait_volume(att["volumeId"], "gone")


async def test_boot_from_existing_volume(cloud: Cloud) -> None:
    volume_id = await cloud.new_volume()
    # not bootable yet: 400
    await _boot_bdm(cloud, "nope", _bdm(source_type="volume", uuid=volume_id), expect=400)
    r = await cloud.volume_request("POST", f"/volumes/{volume_id}/action",
                                   json={"os-set_bootable": {"bootable": True}})
    assert r.status_code == 200, r.text
    # unknown volume, snapshot source, missing volume_size: 400
    await _boot_bdm(cloud, "x", _bdm(source_type="volume",
                                     uuid="8b1e3b1c-3e7a-4d5e-9f00-00000000dead"), expect=400)
    await _boot_bdm(cloud, "x", _bdm(source_type="image", uuid=IMAGE_ID), expect=400)
    r = await _boot_bdm(cloud, "from-vol", _bdm(source_type="volume", uuid=volume_id))
    sid = r.json()["server"]["id"]
    await cloud.wait_for(sid, "ACTIVE")
    assert (await cloud.volume(volume_id))["status"] == "in-use"
    # in use now: another server cannot boot from it
    await _boot_bdm(cloud, "again", _bdm(source_type="volume", uuid=volume_id), expect=400)
    assert (await cloud.request("DELETE", f"/servers/{sid}")).status_code == 204
    await cloud.wait_gone(sid)
    await cloud.wait_volume(volume_id, "available")  # not delete_on_termination


async def test_rebuild_keeps_attached_volumes_plugged(cloud: Cloud) -> None:
    server = await cloud.boot()
    sid = server["id"]
    volume_id = await cloud.new_volume()
    assert (await cloud.attach(sid, volume_id)).status_code == 200
    r = await cloud.request("POST", f"/servers/{sid}/action",
                            json={"rebuild": {"imageRef": IMAGE_ID}})
    assert r.status_code == 202, r.text
    await cloud.wait_for(sid, "ACTIVE")
    assert volume_id in _vm(cloud, sid).volumes  # plugged into the new guest
    assert (await cloud.volume(volume_id))["status"] == "in-use"
    r = await cloud.request("DELETE", f"/servers/{sid}/os-volume_attachments/{volume_id}")
    assert r.status_code == 202, r.text
    assert (await cloud.volume(volume_id))["status"] == "available"


async def test_assisted_volume_snapshot_create_and_delete(cloud: Cloud) -> None:
    """os-assisted-volume-snapshots: Nova's body checks and answers; the agent's driver gets
    the snapshot of the attached volume (the fake driver records it)."""
    server = await cloud.boot()
    volume_id = await cloud.new_volume()
    assert (await cloud.attach(server["id"], volume_id)).status_code == 200
    info = {"snapshot_id": "snap-1", "type": "qcow2", "new_file": "volume.snap-1"}
    r = await cloud.request("POST", "/os-assisted-volume-snapshots",
                            json={"snapshot": {"volume_id": volume_id, "create_info": info}})
    assert r.status_code == 200, r.text
    assert r.json() == {"snapshot": {"id": None, "volumeId": volume_id}}  # as Nova
    r = await cloud.request("POST", "/os-assisted-volume-snapshots", json={"snapshot": {
        "volume_id": volume_id, "create_info": {**info, "snapshot_id": "snap-2", "id": "x"}}})
    assert r.json()["snapshot"]["id"] == "x"
    vm = _vm(cloud, server["id"])
    for _ in range(100):  # a cast
        if len(vm.volume_snapshots) == 2:
            break
        await asyncio.sleep(0.02)
    assert vm.volume_snapshots[(volume_id, "snap-1")]["new_file"] == "volume.snap-1"

    delete_info = json.dumps({"volume_id": volume_id})
    r = await cloud.request("DELETE", "/os-assisted-volume-snapshots/snap-1",
                            params={"delete_info": delete_info})
    assert r.status_code == 204, r.text
    for _ in range(100):
        if (volume_id, "snap-1") not in vm.volume_snapshots:
            break
        await asyncio.sleep(0.02)
    assert (volume_id, "snap-1") not in vm.volume_snapshots

    # refusals: 400 for a bad body, an unattached volume, a bad delete_info; members 403
    for bad in ({"snapshot": {"volume_id": volume_id}},
                {"snapshot": {"volume_id": volume_id, "create_info": {**info, "type": "raw"}}},
                {"snapshot": {"volume_id": volume_id, "create_info": {**info, "x": "y"}}},
                {"snapshot": {"volume_id": "not-attached", "create_info": info}}):
        r = await cloud.request("POST", "/os-assisted-volume-snapshots", json=bad)
        assert r.status_code == 400, (bad, r.text)
    for params in ({}, {"delete_info": "not json"}, {"delete_info": "{}"}):
        r = await cloud.request("DELETE", "/os-assisted-volume-snapshots/snap-2",
                                params=params)
        assert r.status_code == 400, (params, r.text)
    r = await cloud.request("POST", "/os-assisted-volume-snapshots", user="demo",
                            json={"snapshot": {"volume_id": volume_id, "create_info": info}})
    assert r.status_code == 403
