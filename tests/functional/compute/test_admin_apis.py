"""Smaller admin APIs: external events, diagnostics, usage, audit log, os-hosts,
migrations, extensions."""

from __future__ import annotations

from tests.functional.compute.conftest import ComputeCloud
from tests.functional.compute.test_flavors_keypairs import project_id


async def test_external_events(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("ev"))["id"]
    agent = compute_cloud.agent
    waiter = agent.expect_event(sid, "network-vif-plugged", "port-1")
    r = await compute_cloud.request("POST", "/os-server-external-events", json={"events": [
        {"name": "network-vif-plugged", "server_uuid": sid, "tag": "port-1"},
        {"name": "network-changed", "server_uuid": "00000000-0000-0000-0000-000000000000"}]})
    assert r.status_code == 207
    codes = [e["code"] for e in r.json()["events"]]
    assert codes == [200, 404]
    assert await waiter == "completed"
    r = await compute_cloud.request("POST", "/os-server-external-events", json={"events": [
        {"name": "network-changed", "server_uuid": "00000000-0000-0000-0000-000000000000"}]})
    assert r.status_code == 404
    r = await compute_cloud.request("POST", "/os-server-external-events", user="demo",
                                    json={"events": [{"name": "network-changed",
                                                      "server_uuid": sid}]})
    assert r.status_code == 403
    r = await compute_cloud.request("POST", "/os-server-external-events", json={"events": [
        {"name": "bogus", "server_uuid": sid}]})
    assert r.status_code == 400


async def test_diagnostics(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("diag"))["id"]
    r = await compute_cloud.request("GET", f"/servers/{sid}/diagnostics")
    assert r.json()["cpu0_time"] and r.json()["memory"] == 512 * 1024
    r = await compute_cloud.request("GET", f"/servers/{sid}/diagnostics", version="2.48")
    assert r.json()["state"] == "running" and r.json()["driver"] == "libvirt"
    r = await compute_cloud.request("GET", f"/servers/{sid}/diagnostics", user="demo")
    assert r.status_code == 404  # not the demo project's server


async def test_simple_tenant_usage(compute_cloud: ComputeCloud) -> None:
    await compute_cloud.boot("used", user="demo")
    demo = await project_id(compute_cloud, "demo")
    r = await compute_cloud.request("GET", f"/os-simple-tenant-usage/{demo}", user="demo",
                                    params={"start": "2000-01-01T00:00:00",
                                            "end": "2100-01-01T00:00:00"})
    usage = r.json()["tenant_usage"]
    assert usage["tenant_id"] == demo and len(usage["server_usages"]) == 1
    assert usage["server_usages"][0]["flavor"] == "m1.tiny"
    r = await compute_cloud.request("GET", "/os-simple-tenant-usage",
                                    params={"start": "2000-01-01T00:00:00", "detailed": "1"})
    assert [u["tenant_id"] for u in r.json()["tenant_usages"]] == [demo]
    r = await compute_cloud.request("GET", "/os-simple-tenant-usage",
                                    params={"start": "2100-01-01T00:00:00",
                                            "end": "2000-01-01T00:00:00"})
    assert r.status_code == 400
    r = await compute_cloud.request("GET", "/os-simple-tenant-usage", user="demo")
    assert r.status_code == 403


async def test_misc_admin(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("GET", "/os-instance_usage_audit_log")
    assert r.json()["instance_usage_audit_logs"]["num_hosts"] == 1
    r = await compute_cloud.request("GET", "/os-migrations")
    assert r.json() == {"migrations": []}
    r = await compute_cloud.request("GET", "/os-hosts")
    assert {h["service"] for h in r.json()["hosts"]} == {"compute", "scheduler", "conductor"}
    r = await compute_cloud.request("GET", "/os-hosts/node-1")
    assert r.json()["host"][0]["resource"]["project"] == "(total)"
    r = await compute_cloud.request("GET", "/os-hosts/nope")
    assert r.status_code == 404
    r = await compute_cloud.request("GET", "/os-hosts", version="2.43")
    assert r.status_code == 404
    r = await compute_cloud.request("GET", "/extensions/os-consoles", user="demo")
    assert r.json()["extension"]["alias"] == "os-consoles"


async def test_image_proxy(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("GET", "/images/detail", user="demo")
    images = {i["name"]: i for i in r.json()["images"]}
    assert "secret" not in images  # private to another project
    assert images["cirros"]["status"] == "ACTIVE" and images["cirros"]["progress"] == 100
    assert images["empty"]["status"] == "SAVING"
    assert images["cirros"]["metadata"] == {"os_distro": "cirros"}
    image_id = images["cirros"]["id"]
    r = await compute_cloud.request("GET", "/images", user="demo", params={"limit": 1})
    assert len(r.json()["images"]) == 1 and "images_links" in r.json()
    r = await compute_cloud.request("POST", f"/images/{image_id}/metadata",
                                    json={"metadata": {"k": "v"}})
    assert r.json()["metadata"] == {"os_distro": "cirros", "k": "v"}
    r = await compute_cloud.request("GET", f"/images/{image_id}/metadata/k")
    assert r.json() == {"meta": {"k": "v"}}
    r = await compute_cloud.request("DELETE", f"/images/{image_id}/metadata/k")
    assert r.status_code == 204
    r = await compute_cloud.request("GET", f"/images/{image_id}", version="2.36")
    assert r.status_code == 404
    r = await compute_cloud.request("GET", f"/images/{image_id}")
    assert r.json()["image"]["id"] == image_id
