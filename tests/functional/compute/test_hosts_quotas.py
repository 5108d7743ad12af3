"""os-services (heartbeats -> up/down), os-hypervisors, availability zones, limits and
quota sets."""

from __future__ import annotations

import asyncio

from stackling.common.config import Config
from tests.functional.compute.conftest import ComputeCloud
from tests.functional.compute.test_flavors_keypairs import project_id


async def test_services_up_down_and_disable(compute_cloud: ComputeCloud,
                                            compute_config: Config) -> None:
    r = await compute_cloud.request("GET", "/os-services", version="2.11")
    services = {s["binary"]: s for s in r.json()["services"]}
    assert set(services) == {"nova-compute", "nova-scheduler", "nova-conductor"}
    compute = services["nova-compute"]
    assert compute["state"] == "up" and compute["status"] == "enabled"
    assert compute["zone"] == "nova" and compute["forced_down"] is False
    assert services["nova-conductor"]["zone"] == "internal"
    r = await compute_cloud.request("GET", "/os-services", user="demo")
    assert r.status_code == 403
    r = await compute_cloud.request("PUT", "/os-services/disable-log-reason", json={
        "host": "node-1", "binary": "nova-compute", "disabled_reason": "maintenance"})
    assert r.json() == {"service": {"host": "node-1", "binary": "nova-compute",
                                    "status": "disabled", "disabled_reason": "maintenance"}}
    # a disabled host takes no new servers
    created = await compute_cloud.boot("nowhere", wait=False)
    server = await compute_cloud.wait_for(created["id"], "ERROR")
    assert server["fault"]["message"].startswith("No valid host")
    r = await compute_cloud.request("PUT", f"/os-services/{compute['id']}", version="2.53")
    assert r.status_code == 400  # not a uuid: 2.53 wants uuids
    r = await compute_cloud.request("GET", "/os-services", version="2.53",
                                    params={"binary": "nova-compute"})
    (compute,) = r.json()["services"]
    r = await compute_cloud.request("PUT", f"/os-services/{compute['id']}", version="2.53",
                                    json={"status": "enabled", "forced_down": True})
    assert r.json()["service"]["status"] == "enabled"
    assert r.json()["service"]["state"] == "down"  # forced down
    r = await compute_cloud.request("PUT", f"/os-services/{compute['id']}", version="2.53",
                                    json={"forced_down": False})
    assert r.json()["service"]["state"] == "up"
    # the agent stops heartbeating: down after service_down_time
    compute_config.compute.service_down_time = 0.3
    await compute_cloud.agent.stop()
    await asyncio.sleep(0.5)
    r = await compute_cloud.request("GET", "/os-services", params={"binary": "nova-compute"})
    assert r.json()["services"][0]["state"] == "down"


async def test_hypervisors(compute_cloud: ComputeCloud) -> None:
    await compute_cloud.boot("on-node")
    r = await compute_cloud.request("GET", "/os-hypervisors")
    (hyp,) = r.json()["hypervisors"]
    assert hyp == {"id": hyp["id"], "hypervisor_hostname": "node-1", "state": "up",
                   "status": "enabled"}
    r = await compute_cloud.request("GET", "/os-hypervisors/detail")
    (detail,) = r.json()["hypervisors"]
    assert detail["vcpus_used"] == 1 and detail["running_vms"] == 1
    assert detail["memory_mb_used"] == 512 + 512  # the server + reserved host memory
    assert isinstance(detail["cpu_info"], str)
    r = await compute_cloud.request("GET", f"/os-hypervisors/{hyp['id']}", version="2.28")
    assert r.json()["hypervisor"]["cpu_info"]["arch"] == "x86_64"
    r = await compute_cloud.request("GET", "/os-hypervisors/statistics")
    assert r.json()["hypervisor_statistics"]["count"] == 1
    r = await compute_cloud.request("GET", "/os-hypervisors/node/servers")
    assert len(r.json()["hypervisors"][0]["servers"]) == 1
    r = await compute_cloud.request("GET", "/os-hypervisors", version="2.53",
                                    params={"hypervisor_hostname_pattern": "node",
                                            "with_servers": "true"})
    (hyp,) = r.json()["hypervisors"]
    assert len(hyp["id"]) == 36 and len(hyp["servers"]) == 1
    r = await compute_cloud.request("GET", "/os-hypervisors/detail", version="2.88")
    assert "vcpus" not in r.json()["hypervisors"][0]
    r = await compute_cloud.request("GET", "/os-hypervisors/detail", user="demo")
    assert r.status_code == 403


async def test_availability_zones(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("GET", "/os-availability-zone", user="demo")
    assert r.json() == {"availabilityZoneInfo": [
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]}
    r = await compute_cloud.request("GET", "/os-availability-zone/detail")
    zones = {z["zoneName"]: z for z in r.json()["availabilityZoneInfo"]}
    assert set(zones) == {"nova", "internal"}
    assert zones["nova"]["hosts"]["node-1"]["nova-compute"]["available"] is True


async def test_limits_and_quota_sets(compute_cloud: ComputeCloud) -> None:
    await compute_cloud.boot("counted", user="demo")
    r = await compute_cloud.request("GET", "/limits", user="demo")
    absolute = r.json()["limits"]["absolute"]
    assert absolute["maxTotalInstances"] == 10 and absolute["totalInstancesUsed"] == 1
    assert absolute["totalRAMUsed"] == 512 and "maxPersonality" in absolute
    r = await compute_cloud.request("GET", "/limits", user="demo", version="2.57")
    assert "maxPersonality" not in r.json()["limits"]["absolute"]
    demo = await project_id(compute_cloud, "demo")
    r = await compute_cloud.request("GET", f"/os-quota-sets/{demo}", user="demo")
    assert r.json()["quota_set"]["id"] == demo and r.json()["quota_set"]["cores"] == 20
    assert "floating_ips" in r.json()["quota_set"]
    r = await compute_cloud.request("PUT", f"/os-quota-sets/{demo}", user="demo",
                                    json={"quota_set": {"instances": 5}})
    assert r.status_code == 403
    r = await compute_cloud.request("PUT", f"/os-quota-sets/{demo}", version="2.57",
                                    json={"quota_set": {"instances": 1}})
    assert r.json()["quota_set"]["instances"] == 1
    assert "injected_files" not in r.json()["quota_set"]
    r = await compute_cloud.request("PUT", f"/os-quota-sets/{demo}",
                                    json={"quota_set": {"instances": 0}})
    assert r.status_code == 400  # below what is in use
    r = await compute_cloud.request("GET", f"/os-quota-sets/{demo}/detail", user="demo")
    assert r.json()["quota_set"]["instances"] == {"limit": 1, "in_use": 1, "reserved": 0}
    r = await compute_cloud.request("POST", "/servers", user="demo", json={"server": {
        "name": "over", "imageRef": "6b1e3b1c-3e7a-4d5e-9f00-000000000001",
        "flavorRef": "1"}})
    assert r.status_code == 403
    r = await compute_cloud.request("DELETE", f"/os-quota-sets/{demo}")
    assert r.status_code == 202
    r = await compute_cloud.request("GET", f"/os-quota-sets/{demo}/defaults", user="demo")
    assert r.json()["quota_set"]["instances"] == 10
    r = await compute_cloud.request("PUT", "/os-quota-class-sets/default",
                                    json={"quota_class_set": {"cores": 40}})
    assert r.json()["quota_class_set"]["cores"] == 40
    r = await compute_cloud.request("GET", f"/os-quota-sets/{demo}", user="demo")
    assert r.json()["quota_set"]["cores"] == 40
    r = await compute_cloud.request("GET", "/os-quota-class-sets/default")
    assert r.json()["quota_class_set"]["id"] == "default"


async def test_aggregates_define_zones(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("POST", "/os-aggregates", version="2.41",
                                    json={"aggregate": {"name": "rack1",
                                                        "availability_zone": "az1"}})
    assert r.status_code == 200
    agg = r.json()["aggregate"]
    assert agg["availability_zone"] == "az1" and "hosts" not in agg and agg["uuid"]
    r = await compute_cloud.request("POST", "/os-aggregates",
                                    json={"aggregate": {"name": "rack1"}})
    assert r.status_code == 409
    r = await compute_cloud.request("POST", f"/os-aggregates/{agg['id']}/action",
                                    json={"add_host": {"host": "nope"}})
    assert r.status_code == 404
    r = await compute_cloud.request("POST", f"/os-aggregates/{agg['id']}/action",
                                    json={"add_host": {"host": "node-1"}})
    assert r.json()["aggregate"]["hosts"] == ["node-1"]
    r = await compute_cloud.request("GET", "/os-availability-zone")
    assert [z["zoneName"] for z in r.json()["availabilityZoneInfo"]] == ["az1"]
    created = await compute_cloud.boot("zoned", availability_zone="az1")
    assert (await compute_cloud.show(created["id"]))["OS-EXT-AZ:availability_zone"] == "az1"
    body = {"server": {"name": "x", "imageRef": "6b1e3b1c-3e7a-4d5e-9f00-000000000001",
                       "flavorRef": "1", "availability_zone": "nova"}}
    r = await compute_cloud.request("POST", "/servers", json=body)
    assert r.status_code == 400  # no host left in nova
    r = await compute_cloud.request("POST", f"/os-aggregates/{agg['id']}/action",
                                    json={"set_metadata": {"metadata": {"ssd": "true"}}})
    assert r.json()["aggregate"]["metadata"] == {"availability_zone": "az1", "ssd": "true"}
    r = await compute_cloud.request("DELETE", f"/os-aggregates/{agg['id']}")
    assert r.status_code == 400  # it still has a host
    r = await compute_cloud.request("POST", f"/os-aggregates/{agg['id']}/action",
                                    json={"remove_host": {"host": "node-1"}})
    assert r.json()["aggregate"]["hosts"] == []
    r = await compute_cloud.request("DELETE", f"/os-aggregates/{agg['id']}")
    assert r.status_code == 200
    r = await compute_cloud.request("GET", "/os-aggregates", user="demo")
    assert r.status_code == 403
