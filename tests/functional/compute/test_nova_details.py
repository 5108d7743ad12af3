"""Details Nova clients and Tempest rely on: X-Compute-Request-Id, min_count without
max_count, block device mapping enums, the admin's tenant filter without all_tenants, and
the injectNetworkInfo admin action."""

from __future__ import annotations

from tests.functional.compute.conftest import IMAGE_ID, ComputeCloud


async def test_compute_request_id_header(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("GET", "/flavors")
    assert r.headers["x-compute-request-id"] == r.headers["x-openstack-request-id"]
    assert r.headers["x-compute-request-id"].startswith("req-")
    r = await compute_cloud.client.get("/compute/v2/flavors", headers={
        "X-Auth-Token": await compute_cloud.token()})  # the legacy v2.0 mount too
    assert r.headers["x-compute-request-id"] == r.headers["x-openstack-request-id"]


async def test_min_count_alone_asks_for_exactly_that_many(compute_cloud: ComputeCloud) -> None:
    image = IMAGE_ID
    r = await compute_cloud.request("POST", "/servers", user="demo", json={"server": {
        "name": "many", "imageRef": image, "flavorRef": "1", "min_count": 3,
        "return_reservation_id": True}})
    assert r.status_code == 202, r.text
    rid = r.json()["reservation_id"]
    r = await compute_cloud.request("GET", "/servers", user="demo",
                                    params={"reservation_id": rid})
    assert len(r.json()["servers"]) == 3
    r = await compute_cloud.request("POST", "/servers", user="demo", json={"server": {
        "name": "bad", "imageRef": image, "flavorRef": "1", "min_count": 3,
        "max_count": 2}})
    assert r.status_code == 400


async def test_block_device_enums(compute_cloud: ComputeCloud) -> None:
    image = IMAGE_ID
    for bad in ({"destination_type": "invalid"}, {"source_type": "disk"}):
        bdm = [{"source_type": "image", "uuid": image, "boot_index": 0,
                "destination_type": "local", "delete_on_termination": True},
               {"source_type": "volume", "uuid": "11111111-2222-3333-4444-555555555555",
                "destination_type": "volume", **bad}]
        r = await compute_cloud.request("POST", "/servers", user="demo", json={"server": {
            "name": "bdm", "imageRef": image, "flavorRef": "1",
            "block_device_mapping_v2": bdm}})
        assert r.status_code == 400, r.text
        assert next(iter(bad)) in r.json()["badRequest"]["message"]


async def test_admin_tenant_filter_needs_all_tenants(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("demo-vm", user="demo"))["id"]
    demo_project = (await compute_cloud.show(sid, user="demo"))["tenant_id"]
    r = await compute_cloud.request("GET", "/servers", params={"tenant_id": demo_project})
    assert sid not in [s["id"] for s in r.json()["servers"]]  # ignored: admin's own project
    r = await compute_cloud.request("GET", "/servers", params={
        "tenant_id": demo_project, "all_tenants": ""})
    assert [s["id"] for s in r.json()["servers"]] == [sid]


async def test_inject_network_info(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("inj", user="demo"))["id"]
    body = {"injectNetworkInfo": None}
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo", json=body)
    assert r.status_code == 403  # an admin action
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", json=body)
    assert r.status_code == 202
    r = await compute_cloud.request("POST", "/servers/0000/action", json=body)
    assert r.status_code == 404
