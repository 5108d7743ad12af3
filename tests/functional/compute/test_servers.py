"""Server create checks, show by microversion, list filters and pagination, update."""

from __future__ import annotations

import asyncio

import pytest

from tests.functional.compute.conftest import (
    BIG_IMAGE_ID,
    IMAGE_ID,
    PRIVATE_IMAGE_ID,
    QUEUED_IMAGE_ID,
    ComputeCloud,
)


@pytest.mark.parametrize(("server", "message"), [
    ({"flavorRef": "nope"}, "Invalid flavorRef provided."),
    ({"imageRef": "not-a-uuid"}, "Invalid imageRef provided."),
    ({"imageRef": "6b1e3b1c-3e7a-4d5e-9f00-0000000000ff"}, "could not be found"),
    ({"imageRef": QUEUED_IMAGE_ID}, "is not active"),
    ({"imageRef": BIG_IMAGE_ID}, "Flavor's memory is too small for requested image."),
    ({"key_name": "missing"}, "Invalid key_name provided."),
    ({"availability_zone": "elsewhere"}, "availability zone is not available"),
    ({"name": ""}, "too short"),
    ({"bogus": 1}, "Additional properties are not allowed"),
    ({"networks": [{"uuid": "6b1e3b1c-3e7a-4d5e-9f00-0000000000ee"}]}, "could not be found"),
])
async def test_create_is_checked(compute_cloud: ComputeCloud, server: dict[str, object],
                                 message: str) -> None:
    body = {"server": {"name": "x", "imageRef": IMAGE_ID, "flavorRef": "1",
                       "networks": "none", **server}}
    r = await compute_cloud.request("POST", "/servers", json=body, version="2.37",
                                    user="demo")
    assert r.status_code == 400, r.text
    assert message in r.json()["badRequest"]["message"]


async def test_image_visibility_uses_the_callers_token(compute_cloud: ComputeCloud) -> None:
    body = {"server": {"name": "x", "imageRef": PRIVATE_IMAGE_ID, "flavorRef": "1"}}
    r = await compute_cloud.request("POST", "/servers", json=body, user="demo")
    assert r.status_code == 400
    r = await compute_cloud.request("POST", "/servers", json=body, user="admin")
    assert r.status_code == 202


async def test_networks_required_from_2_37(compute_cloud: ComputeCloud) -> None:
    body = {"server": {"name": "x", "imageRef": IMAGE_ID, "flavorRef": "1"}}
    r = await compute_cloud.request("POST", "/servers", json=body, version="2.37")
    assert r.status_code == 400
    r = await compute_cloud.request("POST", "/servers", json=body, version="2.36")
    assert r.status_code == 202


async def test_show_shapes_by_microversion(compute_cloud: ComputeCloud) -> None:
    created = await compute_cloud.boot("shape", metadata={"a": "b"}, user="demo",
                                       version="2.52", tags=["t1"], description="d")
    old = await compute_cloud.show(created["id"], user="demo")
    assert old["flavor"] == {"id": "1", "links": [
        {"rel": "bookmark", "href": "http://testserver/compute/flavors/1"}]}
    assert "locked" not in old and "tags" not in old
    assert "OS-EXT-SRV-ATTR:host" not in old  # admin only
    assert old["metadata"] == {"a": "b"}
    assert old["hostId"] and old["addresses"] == {}
    new = await compute_cloud.show(created["id"], user="demo", version="2.96")
    assert new["flavor"]["original_name"] == "m1.tiny" and new["flavor"]["ram"] == 512
    assert new["flavor"]["extra_specs"] == {}
    assert new["tags"] == ["t1"] and new["description"] == "d" and new["locked"] is False
    assert new["locked_reason"] is None and new["pinned_availability_zone"] is None
    assert new["OS-EXT-SRV-ATTR:hostname"] == "shape"
    assert "host_status" not in new
    admin = await compute_cloud.show(created["id"], version="2.16")
    assert admin["host_status"] == "UP"
    pinned = await compute_cloud.boot("pinned", availability_zone="nova", version="2.96")
    r = await compute_cloud.request("GET", "/servers/detail", version="2.96")
    shown = {s["id"]: s["pinned_availability_zone"] for s in r.json()["servers"]}
    assert shown[pinned["id"]] == "nova"
    unpinned = await compute_cloud.boot("unpinned", version="2.96")
    assert (await compute_cloud.show(unpinned["id"], version="2.96"))[
        "pinned_availability_zone"] is None
    assert admin["OS-EXT-SRV-ATTR:instance_name"].startswith("instance-")


async def test_multiple_create_and_reservation_id(compute_cloud: ComputeCloud) -> None:
    body = {"server": {"name": "many", "imageRef": IMAGE_ID, "flavorRef": "1",
                       "min_count": 3, "max_count": 3, "return_reservation_id": True}}
    r = await compute_cloud.request("POST", "/servers", json=body)
    assert r.status_code == 202
    rid = r.json()["reservation_id"]
    r = await compute_cloud.request("GET", "/servers", params={"reservation_id": rid})
    assert sorted(s["name"] for s in r.json()["servers"]) == ["many-1", "many-2", "many-3"]


async def test_list_filters_and_pagination(compute_cloud: ComputeCloud) -> None:
    ids = [(await compute_cloud.boot(f"page-{i}", user="demo"))["id"] for i in range(5)]
    other = await compute_cloud.boot("admins-own")
    r = await compute_cloud.request("GET", "/servers", user="demo")
    assert [s["id"] for s in r.json()["servers"]] == ids[::-1]  # newest first
    r = await compute_cloud.request("GET", "/servers", user="demo", params={"limit": 2})
    page = r.json()
    assert [s["id"] for s in page["servers"]] == ids[:2:-1][:2]
    href = page["servers_links"][0]["href"]
    assert href.startswith("http://testserver/compute/v2.1/servers?")
    seen = [s["id"] for s in page["servers"]]
    while "servers_links" in page:
        r = await compute_cloud.client.get(page["servers_links"][0]["href"], headers={
            "X-Auth-Token": await compute_cloud.token("demo", "demo")})
        page = r.json()
        seen += [s["id"] for s in page["servers"]]
    assert seen == ids[::-1]
    r = await compute_cloud.request("GET", "/servers", user="demo", params={"marker": "x"})
    assert r.status_code == 400
    r = await compute_cloud.request("GET", "/servers", user="demo", params={"name": "page-[34]"})
    assert {s["name"] for s in r.json()["servers"]} == {"page-3", "page-4"}
    r = await compute_cloud.request("GET", "/servers/detail", user="demo",
                                    params={"status": "ACTIVE", "flavor": "1"})
    assert len(r.json()["servers"]) == 5
    r = await compute_cloud.request("GET", "/servers", user="demo",
                                    params={"status": "SHUTOFF"})
    assert r.json()["servers"] == []
    r = await compute_cloud.request("GET", "/servers", user="demo",
                                    params={"status": "BOGUS"}, version="2.38")
    assert r.status_code == 400
    r = await compute_cloud.request("GET", "/servers", user="demo",
                                    params={"all_tenants": "1"})
    assert r.status_code == 403
    r = await compute_cloud.request("GET", "/servers", params={"all_tenants": "1"})
    assert other["id"] in {s["id"] for s in r.json()["servers"]}
    assert len(r.json()["servers"]) == 6
    r = await compute_cloud.request("GET", "/servers", user="demo",
                                    params={"sort_key": "display_name", "sort_dir": "asc"})
    assert [s["name"] for s in r.json()["servers"]] == [f"page-{i}" for i in range(5)]


async def test_changes_since_lists_deleted_servers(compute_cloud: ComputeCloud) -> None:
    created = await compute_cloud.boot("gone")
    r = await compute_cloud.request("GET", "/servers", params={"limit": 1})
    await compute_cloud.request("DELETE", f"/servers/{created['id']}")
    await compute_cloud.wait_gone(created["id"])
    r = await compute_cloud.request("GET", "/servers")
    assert created["id"] not in {s["id"] for s in r.json()["servers"]}
    r = await compute_cloud.request("GET", "/servers/detail",
                                    params={"changes-since": "2000-01-01T00:00:00Z"})
    deleted = next(s for s in r.json()["servers"] if s["id"] == created["id"])
    assert deleted["status"] == "DELETED"
    r = await compute_cloud.request("GET", "/servers",
                                    params={"changes-since": "not a date"})
    assert r.status_code == 400


async def test_update_server(compute_cloud: ComputeCloud) -> None:
    created = await compute_cloud.boot("before", user="demo")
    r = await compute_cloud.request("PUT", f"/servers/{created['id']}", user="demo",
                                    json={"server": {"name": "after", "accessIPv4": "1.2.3.4"}})
    assert r.status_code == 200
    server = r.json()["server"]
    assert server["name"] == "after" and server["accessIPv4"] == "1.2.3.4"
    assert "OS-EXT-STS:vm_state" not in server  # the short 2.1 answer
    r = await compute_cloud.request("PUT", f"/servers/{created['id']}", user="demo",
                                    version="2.19", json={"server": {"description": "x"}})
    assert r.json()["server"]["description"] == "x"
    r = await compute_cloud.request("PUT", f"/servers/{created['id']}", user="demo",
                                    json={"server": {"accessIPv4": "nope"}})
    assert r.status_code == 400


async def test_other_projects_servers_do_not_exist(compute_cloud: ComputeCloud) -> None:
    created = await compute_cloud.boot("admins")
    r = await compute_cloud.request("GET", f"/servers/{created['id']}", user="demo")
    assert r.status_code == 404
    r = await compute_cloud.request("DELETE", f"/servers/{created['id']}", user="demo")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == f"Instance {created['id']} could not be found."
    assert (await compute_cloud.show(created["id"]))["status"] == "ACTIVE"  # untouched
    r = await compute_cloud.request("DELETE", "/servers/" + "0" * 8 + "-0000-4000-8000-" + "0" * 12)
    assert r.status_code == 404


async def test_delete_while_building(compute_cloud: ComputeCloud) -> None:
    compute_cloud.agent.driver.spawn_delay = 0.2
    created = await compute_cloud.boot("slow", wait=False)
    await asyncio.sleep(0.05)
    r = await compute_cloud.request("DELETE", f"/servers/{created['id']}")
    assert r.status_code == 204
    await compute_cloud.wait_gone(created["id"])
    await asyncio.sleep(0.3)
    assert created["id"] not in compute_cloud.agent.driver.vms
    from tests.functional.compute.test_boot import allocations

    assert await allocations(compute_cloud) == 0
