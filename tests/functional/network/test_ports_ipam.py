"""Ports and IPAM: fixed IPs, conflicts, freeing, parallel creates never share an address,
overlapping CIDRs across projects, DHCP ports, quotas under concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.functional.network.conftest import NetCloud


async def _net(cloud: NetCloud, user: str = "admin", cidr: str = "192.168.50.0/24",
               **subnet: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    net = (await cloud.ok("POST", "/v2.0/networks", 201, user=user,
                          json={"network": {"name": "n"}}))["network"]
    sub = (await cloud.ok("POST", "/v2.0/subnets", 201, user=user, json={"subnet": {
        "network_id": net["id"], "cidr": cidr, "ip_version": 4, **subnet}}))["subnet"]
    return net, sub


async def test_port_fixed_ips_conflicts_and_free(net_cloud: NetCloud) -> None:
    net, sub = await _net(net_cloud, enable_dhcp=False)
    port = (await net_cloud.ok("POST", "/v2.0/ports", 201, json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "192.168.50.10"}]}}))["port"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "192.168.50.10"}]
    assert port["mac_address"].startswith("fa:16:3e:")
    assert port["status"] == "DOWN"
    r = await net_cloud.request("POST", "/v2.0/ports", json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "192.168.50.10"}]}})
    assert r.status_code == 409
    assert r.json()["NeutronError"]["type"] == "IpAddressAlreadyAllocated"
    r = await net_cloud.request("POST", "/v2.0/ports", json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "10.9.9.9"}]}})
    assert r.status_code == 400
    auto = (await net_cloud.ok("POST", "/v2.0/ports", 201, json={"port": {
        "network_id": net["id"]}}))["port"]
    assert auto["fixed_ips"][0]["ip_address"] == "192.168.50.2"  # lowest free
    await net_cloud.ok("DELETE", f"/v2.0/ports/{port['id']}", 204)
    again = (await net_cloud.ok("POST", "/v2.0/ports", 201, json={"port": {
        "network_id": net["id"], "fixed_ips": [{"ip_address": "192.168.50.10"}]}}))["port"]
    assert again["fixed_ips"][0]["ip_address"] == "192.168.50.10"  # freed by the delete
    # nothing half-made: a bulk create with one bad port creates none
    before = len((await net_cloud.ok("GET", f"/v2.0/ports?network_id={net['id']}"))["ports"])
    r = await net_cloud.request("POST", "/v2.0/ports", json={"ports": [
        {"network_id": net["id"]}, {"network_id": net["id"],
                                    "fixed_ips": [{"ip_address": "192.168.50.10"}]}]})
    assert r.status_code == 409
    after = len((await net_cloud.ok("GET", f"/v2.0/ports?network_id={net['id']}"))["ports"])
    assert before == after


async def test_parallel_creates_never_share_an_address(net_cloud: NetCloud) -> None:
    net, _ = await _net(net_cloud, cidr="192.168.60.0/27", enable_dhcp=False)

    async def create() -> Any:
        return await net_cloud.request("POST", "/v2.0/ports",
                                       json={"port": {"network_id": net["id"]}})

    responses = await asyncio.gather(*(create() for _ in range(40)))
    ok = [r.json()["port"] for r in responses if r.status_code == 201]
    full = [r for r in responses if r.status_code == 409]
    assert len(ok) == 29  # .2 - .30: the /27 minus network, broadcast and gateway
    assert len(full) == 11
    assert all(r.json()["NeutronError"]["type"] == "IpAddressGenerationFailure" for r in full)
    addresses = [p["fixed_ips"][0]["ip_address"] for p in ok]
    assert len(set(addresses)) == len(addresses)
    avail = (await net_cloud.ok("GET", f"/v2.0/network-ip-availabilities/{net['id']}"))[
        "network_ip_availability"]
    assert avail["used_ips"] == 29 and avail["total_ips"] == 29


async def test_overlapping_cidrs_across_projects_not_within_a_network(
        net_cloud: NetCloud) -> None:
    net, _ = await _net(net_cloud, user="admin", cidr="10.50.0.0/24")
    await _net(net_cloud, user="demo", cidr="10.50.0.0/24")
    r = await net_cloud.request("POST", "/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "10.50.0.128/25", "ip_version": 4}})
    assert r.status_code == 400


async def test_dhcp_port_follows_subnets(net_cloud: NetCloud) -> None:
    net, sub = await _net(net_cloud, cidr="10.70.0.0/24")
    ports = (await net_cloud.ok("GET", f"/v2.0/ports?network_id={net['id']}"))["ports"]
    assert [p["device_owner"] for p in ports] == ["network:dhcp"]
    assert ports[0]["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.70.0.2"}]
    v6 = (await net_cloud.ok("POST", "/v2.0/subnets", 201, json={"subnet": {
        "network_id": net["id"], "cidr": "2001:db8:70::/64", "ip_version": 6}}))["subnet"]
    dhcp = (await net_cloud.ok("GET", f"/v2.0/ports/{ports[0]['id']}"))["port"]
    assert {f["subnet_id"] for f in dhcp["fixed_ips"]} == {sub["id"], v6["id"]}
    await net_cloud.ok("DELETE", f"/v2.0/subnets/{v6['id']}", 204)
    await net_cloud.ok("DELETE", f"/v2.0/subnets/{sub['id']}", 204)
    assert (await net_cloud.ok("GET", f"/v2.0/ports?network_id={net['id']}"))["ports"] == []
    await net_cloud.ok("DELETE", f"/v2.0/networks/{net['id']}", 204)


async def test_in_use_deletes_refused(net_cloud: NetCloud) -> None:
    net, sub = await _net(net_cloud, cidr="10.71.0.0/24")
    port = (await net_cloud.ok("POST", "/v2.0/ports", 201, json={"port": {
        "network_id": net["id"]}}))["port"]
    r = await net_cloud.request("DELETE", f"/v2.0/networks/{net['id']}")
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "NetworkInUse"
    r = await net_cloud.request("DELETE", f"/v2.0/subnets/{sub['id']}")
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "SubnetInUse"
    await net_cloud.ok("DELETE", f"/v2.0/ports/{port['id']}", 204)
    await net_cloud.ok("DELETE", f"/v2.0/networks/{net['id']}", 204)
    r = await net_cloud.request("GET", f"/v2.0/subnets/{sub['id']}")
    assert r.status_code == 404


async def test_quota_holds_under_concurrency(net_cloud: NetCloud) -> None:
    demo = await net_cloud.project_id("demo")
    await net_cloud.ok("PUT", f"/v2.0/quotas/{demo}", json={"quota": {"network": 4}})
    responses = await asyncio.gather(*(net_cloud.request(
        "POST", "/v2.0/networks", user="demo", json={"network": {"name": f"q{i}"}})
        for i in range(8)))
    codes = sorted(r.status_code for r in responses)
    have = len([n for n in (await net_cloud.ok("GET", "/v2.0/networks", user="demo"))[
        "networks"] if n["project_id"] == demo])
    assert have == 4  # "private" from the bootstrap + 3 of the 8
    assert codes.count(201) == 3 and codes.count(409) == 5
    details = (await net_cloud.ok("GET", f"/v2.0/quotas/{demo}/details"))["quota"]
    assert details["network"] == {"limit": 4, "used": 4, "reserved": 0}
    r = await net_cloud.request("PUT", f"/v2.0/quotas/{demo}", user="demo",
                                json={"quota": {"network": 100}})
    assert r.status_code == 403


async def test_list_filters_fields_sorting_pagination(net_cloud: NetCloud) -> None:
    for i in range(5):
        await net_cloud.ok("POST", "/v2.0/networks", 201,
                           json={"network": {"name": f"page-{i}"}})
    r = await net_cloud.ok("GET", "/v2.0/networks?sort_key=name&sort_dir=desc&limit=2"
                                  "&fields=name&fields=id")
    names = [n["name"] for n in r["networks"]]
    assert names == ["public", "private"]
    assert set(r["networks"][0]) == {"name", "id"}
    nxt = r["networks_links"][0]
    assert nxt["rel"] == "next"
    path = nxt["href"].split("/network", 1)[1]
    r2 = await net_cloud.ok("GET", path)
    assert [n["name"] for n in r2["networks"]] == ["page-4", "page-3"]
    r3 = await net_cloud.ok("GET", "/v2.0/networks?name=page-1&router:external=false")
    assert [n["name"] for n in r3["networks"]] == ["page-1"]
    ident = r3["networks"][0]["id"]
    await net_cloud.ok("PUT", f"/v2.0/networks/{ident}/tags", json={"tags": ["a", "b"]})
    await net_cloud.ok("PUT", f"/v2.0/networks/{ident}/tags/c", 201)
    tagged = await net_cloud.ok("GET", "/v2.0/networks?tags=a,c")
    assert [n["id"] for n in tagged["networks"]] == [ident]
    assert (await net_cloud.ok("GET", f"/v2.0/networks/{ident}"))["network"]["tags"] == [
        "a", "b", "c"]


async def test_port_filters_narrow_in_the_database_as_in_the_api(net_cloud: NetCloud) -> None:
    """device_id and friends are applied by the query (compute asks for a server's ports on
    every server view) with the API's meaning: any of several values, "" for unset, and a
    project only sees what it may see."""
    net, _ = await _net(net_cloud, enable_dhcp=False)
    made = {}
    for device in ("vm-a", "vm-b", ""):
        made[device] = (await net_cloud.ok("POST", "/v2.0/ports", 201, json={"port": {
            "network_id": net["id"], "device_id": device, "device_owner":
            "compute:nova" if device else ""}}))["port"]

    async def ids(query: str, user: str = "admin") -> set[str]:
        return {p["id"] for p in (await net_cloud.ok("GET", f"/v2.0/ports?{query}",
                                                    user=user))["ports"]}

    assert await ids("device_id=vm-a") == {made["vm-a"]["id"]}
    assert await ids("device_id=vm-a&device_id=vm-b") == {made["vm-a"]["id"],
                                                         made["vm-b"]["id"]}
    assert await ids(f"device_id=&network_id={net['id']}") == {made[""]["id"]}
    assert await ids("device_id=nothing") == set()
    assert await ids(f"device_owner=compute:nova&network_id={net['id']}") == {
        made["vm-a"]["id"], made["vm-b"]["id"]}
    assert await ids(f"id={made['vm-b']['id']}&device_id=vm-a") == set()
    assert await ids(f"mac_address={made['vm-a']['mac_address']}") == {made["vm-a"]["id"]}
    # the admin's ports on the admin's network: the demo project sees none of them
    assert await ids("device_id=vm-a", user="demo") == set()
