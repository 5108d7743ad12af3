"""Subnet pools: CRUD, subnets carved from a pool by prefix length, pool in use."""

from __future__ import annotations

from tests.functional.network.conftest import NetCloud


async def test_subnet_from_pool(net_cloud: NetCloud) -> None:
    pool = (await net_cloud.ok("POST", "/v2.0/subnetpools", 201, json={"subnetpool": {
        "name": "p", "prefixes": ["10.90.0.0/24", "10.90.1.0/24"],
        "default_prefixlen": 26}}))["subnetpool"]
    assert pool["prefixes"] == ["10.90.0.0/23"]  # merged, as Neutron does
    assert pool["min_prefixlen"] == 8 and pool["default_prefixlen"] == 26
    net = (await net_cloud.ok("POST", "/v2.0/networks", 201, json={"network": {}}))["network"]
    first = (await net_cloud.ok("POST", "/v2.0/subnets", 201, json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "subnetpool_id": pool["id"]}}))["subnet"]
    assert first["cidr"] == "10.90.0.0/26" and first["subnetpool_id"] == pool["id"]
    net2 = (await net_cloud.ok("POST", "/v2.0/networks", 201, json={"network": {}}))["network"]
    second = (await net_cloud.ok("POST", "/v2.0/subnets", 201, json={"subnet": {
        "network_id": net2["id"], "ip_version": 4, "subnetpool_id": pool["id"],
        "prefixlen": 24}}))["subnet"]
    assert second["cidr"] == "10.90.1.0/24"
    r = await net_cloud.request("POST", "/v2.0/subnets", json={"subnet": {
        "network_id": net2["id"], "ip_version": 4, "subnetpool_id": pool["id"],
        "cidr": "10.90.0.0/27"}})
    assert r.status_code == 409  # overlaps an allocation of the pool
    r = await net_cloud.request("DELETE", f"/v2.0/subnetpools/{pool['id']}")
    assert r.status_code == 409
    await net_cloud.ok("DELETE", f"/v2.0/subnets/{first['id']}", 204)
    await net_cloud.ok("DELETE", f"/v2.0/subnets/{second['id']}", 204)
    updated = (await net_cloud.ok("PUT", f"/v2.0/subnetpools/{pool['id']}", json={
        "subnetpool": {"name": "q"}}))["subnetpool"]
    assert updated["name"] == "q" and updated["revision_number"] == 1
    await net_cloud.ok("DELETE", f"/v2.0/subnetpools/{pool['id']}", 204)
