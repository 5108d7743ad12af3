"""Version discovery, microversion headers, Nova's error bodies."""

from __future__ import annotations

from tests.functional.compute.conftest import ComputeCloud


async def test_version_documents(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.client.get("/compute/")
    assert r.status_code == 200
    old, v = r.json()["versions"]
    assert old["id"] == "v2.0"  # Nova lists v2.0 first
    assert v["id"] == "v2.1" and v["min_version"] == "2.1"
    assert v["links"][0]["href"] == "http://testserver/compute/v2.1/"
    r = await compute_cloud.client.get("/compute/v2/")
    assert r.json()["version"]["links"][0] == old["links"][0]
    r = await compute_cloud.client.get("/compute/v2/flavors", headers={
        "X-Auth-Token": await compute_cloud.token(), "OpenStack-API-Version": "compute 2.55"})
    assert r.status_code == 200 and "openstack-api-version" not in r.headers
    assert "description" not in r.json()["flavors"][0]  # v2.0: no microversions
    r = await compute_cloud.client.get("/compute/v2.1/")
    assert r.json()["version"]["id"] == "v2.1"
    assert r.headers["openstack-api-version"] == "compute 2.1"


async def test_microversion_negotiation(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("GET", "/flavors", version="2.55")
    assert r.headers["openstack-api-version"] == "compute 2.55"
    assert r.headers["x-openstack-nova-api-version"] == "2.55"
    assert "OpenStack-API-Version" in r.headers["vary"]
    assert "description" in r.json()["flavors"][0]
    r = await compute_cloud.request("GET", "/flavors",
                                    headers={"X-OpenStack-Nova-API-Version": "2.3"})
    assert r.headers["x-openstack-nova-api-version"] == "2.3"
    assert "description" not in r.json()["flavors"][0]
    r = await compute_cloud.request("GET", "/flavors", version="latest")
    latest = r.headers["x-openstack-nova-api-version"]
    assert latest.startswith("2.") and int(latest.split(".")[1]) >= 90
    r = await compute_cloud.request("GET", "/flavors", version="2.999")
    assert r.status_code == 406
    assert "computeFault" in r.json()
    r = await compute_cloud.request("GET", "/flavors", version="two")
    assert r.status_code == 400
    assert r.json()["badRequest"]["code"] == 400


async def test_errors_have_nova_shape(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("GET", "/servers/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404
    assert r.json() == {"itemNotFound": {
        "code": 404, "message": "Instance 00000000-0000-0000-0000-000000000000 could not be "
                                "found."}}
    r = await compute_cloud.request("GET", "/flavors/nope")
    assert r.json()["itemNotFound"]["message"] == "Flavor nope could not be found."
    r = await compute_cloud.client.get("/compute/v2.1/servers")
    assert r.status_code == 401
    r = await compute_cloud.request("POST", "/flavors", user="demo",
                                    json={"flavor": {"name": "x", "ram": 1, "vcpus": 1,
                                                     "disk": 0}})
    assert r.status_code == 403
    assert r.json()["forbidden"]["message"] == (
        "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed.")


async def test_project_id_in_url_is_accepted(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("GET", "/flavors")
    project = "0" * 32
    r2 = await compute_cloud.request("GET", f"/{project}/flavors")
    assert r2.status_code == 200
    assert r2.json()["flavors"] == r.json()["flavors"]
