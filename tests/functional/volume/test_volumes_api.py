"""Volumes through the API: discovery, create/list/show/update/delete, metadata, errors."""

from __future__ import annotations

import pytest

from tests.functional.volume.conftest import VolumeCloud


async def test_version_discovery(volume_cloud: VolumeCloud) -> None:
    r = await volume_cloud.client.get("/volume/")
    assert r.status_code == 300
    v3 = r.json()["versions"][0]
    assert v3["id"] == "v3.0" and v3["min_version"] == "3.0" and v3["version"] == "3.70"
    assert v3["links"][-1]["href"].endswith("/volume/v3/")
    r = await volume_cloud.request("GET", "/volumes", version="3.59")
    assert r.headers["OpenStack-API-Version"] == "volume 3.59"
    r = await volume_cloud.request("GET", "/volumes", version="3.99")
    assert r.status_code == 406
    assert "3.70" in r.json()["computeFault"]["message"]  # Cinder has no name for 406


async def test_create_show_list_update_delete(volume_cloud: VolumeCloud) -> None:
    vol = await volume_cloud.create(2, name="v1", description="d", metadata={"a": "b"})
    assert vol["size"] == 2 and vol["status"] == "available" and vol["bootable"] == "false"
    assert vol["volume_type"] == "__DEFAULT__" and vol["metadata"] == {"a": "b"}
    assert vol["os-vol-host-attr:host"] == "node-1@memory#memory"
    r = await volume_cloud.request("GET", "/volumes")
    assert [v["id"] for v in r.json()["volumes"]] == [vol["id"]]
    r = await volume_cloud.request("GET", "/volumes/detail?name=nope")
    assert r.json()["volumes"] == []
    r = await volume_cloud.request("PUT", f"/volumes/{vol['id']}",
                                   json={"volume": {"name": "v2"}})
    assert r.status_code == 200 and r.json()["volume"]["name"] == "v2"
    r = await volume_cloud.request("DELETE", f"/volumes/{vol['id']}")
    assert r.status_code == 202
    await volume_cloud.wait(vol["id"], "gone")
    assert not await volume_cloud.backend.exists(vol["id"])


async def test_project_path_segment_and_errors(volume_cloud: VolumeCloud) -> None:
    pid = await volume_cloud.project_id()
    r = await volume_cloud.client.get(
        f"/volume/v3/{pid}/volumes/00000000-0000-0000-0000-000000000000",
        headers={"X-Auth-Token": await volume_cloud.token()})
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["code"] == 404
    r = await volume_cloud.request("POST", "/volumes", json={"volume": {"size": 0}})
    assert r.status_code == 400 and "badRequest" in r.json()
    r = await volume_cloud.request("POST", "/volumes", json={"volume": {"size": "x"}})
    assert r.status_code == 400


async def test_pagination_and_sort(volume_cloud: VolumeCloud) -> None:
    ids = [(await volume_cloud.create(1, name=f"v{i}"))["id"] for i in range(3)]
    r = await volume_cloud.request("GET", "/volumes?limit=2&sort=name:asc")
    body = r.json()
    assert [v["name"] for v in body["volumes"]] == ["v0", "v1"]
    nxt = body["volumes_links"][0]["href"]
    assert "marker=" in nxt
    r = await volume_cloud.request("GET", f"/volumes?limit=2&sort=name:asc&marker={ids[1]}")
    assert [v["name"] for v in r.json()["volumes"]] == ["v2"]


async def test_metadata(volume_cloud: VolumeCloud) -> None:
    vol = await volume_cloud.create(1)
    vid = vol["id"]
    r = await volume_cloud.request("POST", f"/volumes/{vid}/metadata",
                                   json={"metadata": {"k1": "v1", "k2": "v2"}})
    assert r.json()["metadata"] == {"k1": "v1", "k2": "v2"}
    r = await volume_cloud.request("PUT", f"/volumes/{vid}/metadata/k1",
                                   json={"meta": {"k1": "x"}})
    assert r.json() == {"meta": {"k1": "x"}}
    r = await volume_cloud.request("DELETE", f"/volumes/{vid}/metadata/k2")
    assert r.status_code == 200
    r = await volume_cloud.request("GET", f"/volumes/{vid}/metadata")
    assert r.json()["metadata"] == {"k1": "x"}
    r = await volume_cloud.request("GET", f"/volumes/{vid}/metadata/k2")
    assert r.status_code == 404


async def test_other_projects_volumes_are_invisible(volume_cloud: VolumeCloud) -> None:
    vol = await volume_cloud.create(1)
    r = await volume_cloud.request("GET", f"/volumes/{vol['id']}", user="demo")
    assert r.status_code == 404
    r = await volume_cloud.request("GET", "/volumes", user="demo")
    assert r.json()["volumes"] == []
    r = await volume_cloud.request("GET", "/volumes?all_tenants=1")
    assert len(r.json()["volumes"]) == 1


@pytest.mark.parametrize("volume_backend", ["file"])
async def test_file_backend_roundtrip(volume_cloud: VolumeCloud) -> None:
    vol = await volume_cloud.create(1)
    pool = volume_cloud.config.data_dir / "volumes"
    assert (pool / f"volume-{vol['id']}").stat().st_size == 1 << 30
    await volume_cloud.request("DELETE", f"/volumes/{vol['id']}")
    await volume_cloud.wait(vol["id"], "gone")
    assert list(pool.iterdir()) == []
