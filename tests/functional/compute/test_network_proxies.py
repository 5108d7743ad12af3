"""Nova's deprecated network proxies (os-security-groups, os-security-group-rules,
os-floating-ips, os-floating-ip-pools, os-networks and the server actions) forwarded to the
in-process network service with the caller's token; gone from microversion 2.36 on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.compute.test_server_networks import Cloud, _cloud, _create


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    async for c in _cloud(tmp_path, agent=True, vif_timeout=30.0):
        yield c


async def _call(cloud: Cloud, method: str, path: str, status: int, user: str = "demo",
                **kwargs: Any) -> Any:
    r = await cloud.request(method, path, user=user, **kwargs)
    assert r.status_code == status, r.text
    return r.json() if r.content else None


async def test_security_groups_and_rules(cloud: Cloud) -> None:
    groups = (await _call(cloud, "GET", "/os-security-groups", 200))["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    default = groups[0]
    body = {"security_group": {"name": "web", "description": "web servers"}}
    web = (await _call(cloud, "POST", "/os-security-groups", 200, json=body))[
        "security_group"]
    assert web["name"] == "web" and web["description"] == "web servers"
    assert web["tenant_id"] == default["tenant_id"] and web["rules"] == []
    # the network service has it, in the demo project
    neutron = await cloud.net("GET", f"/security-groups/{web['id']}")
    assert neutron["security_group"]["name"] == "web"
    # Nova's validation
    for bad in ({"name": "", "description": "x"}, {"name": "x" * 256, "description": "x"},
                {"name": "x"}, {"name": "  ", "description": "x"}):
        await _call(cloud, "POST", "/os-security-groups", 400, json={"security_group": bad})
    # update, show
    body = {"security_group": {"name": "web2", "description": "renamed"}}
    got = (await _call(cloud, "PUT", f"/os-security-groups/{web['id']}", 200, json=body))
    assert got["security_group"]["name"] == "web2"
    await _call(cloud, "PUT", "/os-security-groups/00000000-0000-0000-0000-000000000000",
                404, json=body)
    # rules
    rule = {"parent_group_id": web["id"], "ip_protocol": "tcp", "from_port": 22,
            "to_port": 22, "cidr": "10.0.0.0/8"}
    made = (await _call(cloud, "POST", "/os-security-group-rules", 200,
                        json={"security_group_rule": rule}))["security_group_rule"]
    assert made == {"id": made["id"], "parent_group_id": web["id"], "ip_protocol": "tcp",
                    "from_port": 22, "to_port": 22, "group": {},
                    "ip_range": {"cidr": "10.0.0.0/8"}}
    await _call(cloud, "POST", "/os-security-group-rules", 400,
                json={"security_group_rule": rule})  # duplicate
    for change in ({"from_port": 30, "to_port": 20}, {"ip_protocol": "sctp"},
                   {"from_port": "abc"}, {"to_port": 70000}, {"from_port": 0}):
        r = await cloud.request("POST", "/os-security-group-rules", user="demo",
                                json={"security_group_rule": {**rule, **change}})
        assert r.status_code == 400, (change, r.text)
        assert "badRequest" in r.json()
    missing = {**rule, "parent_group_id": "00000000-0000-0000-0000-000000000000"}
    await _call(cloud, "POST", "/os-security-group-rules", 404,
                json={"security_group_rule": missing})
    by_group = {"parent_group_id": web["id"], "ip_protocol": "icmp", "from_port": -1,
                "to_port": -1, "group_id": default["id"]}
    icmp = (await _call(cloud, "POST", "/os-security-group-rules", 200,
                        json={"security_group_rule": by_group}))["security_group_rule"]
    assert icmp["group"] == {"name": "default", "tenant_id": default["tenant_id"]}
    assert (icmp["from_port"], icmp["to_port"]) == (-1, -1)
    shown = (await _call(cloud, "GET", f"/os-security-groups/{web['id']}", 200))[
        "security_group"]
    assert sorted(r["id"] for r in shown["rules"]) == sorted([made["id"], icmp["id"]])
    # IDs that are not UUIDs: 400, as Nova says before asking the network service
    await _call(cloud, "GET", "/os-security-groups/not-a-uuid", 400)
    await _call(cloud, "POST", "/os-security-group-rules", 400,
                json={"security_group_rule": {**rule, "parent_group_id": "abc"}})
    # a cidr with host bits is kept as given; names keep their spaces
    host_bits = (await _call(cloud, "POST", "/os-security-group-rules", 200, json={
        "security_group_rule": {**rule, "cidr": "10.2.3.124/24"}}))["security_group_rule"]
    assert host_bits["ip_range"] == {"cidr": "10.2.3.124/24"}
    stored = (await cloud.net("GET", f"/security-group-rules/{host_bits['id']}"))[
        "security_group_rule"]
    assert (stored["remote_ip_prefix"], stored["normalized_cidr"]) == (
        "10.2.3.124/24", "10.2.3.0/24")
    await _call(cloud, "POST", "/os-security-group-rules", 400, json={
        "security_group_rule": {**rule, "cidr": "10.2.3.7/24"}})  # the same network
    spaced = (await _call(cloud, "POST", "/os-security-groups", 200, json={
        "security_group": {"name": " a b ", "description": "d"}}))["security_group"]
    assert spaced["name"] == " a b "
    # a peer group's deletion takes the rules that named it along
    peer = {"parent_group_id": web["id"], "ip_protocol": "tcp", "from_port": 80,
            "to_port": 80, "group_id": spaced["id"]}
    await _call(cloud, "POST", "/os-security-group-rules", 200,
                json={"security_group_rule": peer})
    await _call(cloud, "DELETE", f"/os-security-groups/{spaced['id']}", 202)
    shown = (await _call(cloud, "GET", f"/os-security-groups/{web['id']}", 200))[
        "security_group"]
    assert sorted(r["id"] for r in shown["rules"]) == sorted(
        [made["id"], icmp["id"], host_bits["id"]])
    await _call(cloud, "DELETE", f"/os-security-group-rules/{made['id']}", 202)
    await _call(cloud, "DELETE", f"/os-security-group-rules/{made['id']}", 404)
    # the admin project does not list it (the caller's project only)
    admins = (await _call(cloud, "GET", "/os-security-groups", 200, user="admin"))[
        "security_groups"]
    assert web["id"] not in [g["id"] for g in admins]
    # delete: default refused, others go
    await _call(cloud, "DELETE", f"/os-security-groups/{default['id']}", 400)
    await _call(cloud, "DELETE", f"/os-security-groups/{web['id']}", 202)
    await _call(cloud, "GET", f"/os-security-groups/{web['id']}", 404)
    await cloud.net("GET", f"/security-groups/{web['id']}", status=404)
    # gone above 2.35
    await _call(cloud, "GET", "/os-security-groups", 404, version="2.36")
    await _call(cloud, "GET", "/os-security-groups", 200, version="2.35")


async def test_server_security_groups_follow_the_ports(cloud: Cloud) -> None:
    body = {"security_group": {"name": "db", "description": "db"}}
    db = (await _call(cloud, "POST", "/os-security-groups", 200, json=body))[
        "security_group"]
    r = await _create(cloud, "auto")
    sid = r.json()["server"]["id"]
    await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    listed = (await _call(cloud, "GET", f"/servers/{sid}/os-security-groups", 200))[
        "security_groups"]
    assert [g["name"] for g in listed] == ["default"]
    await _call(cloud, "POST", f"/servers/{sid}/action", 202,
                json={"addSecurityGroup": {"name": "db"}})
    port = (await cloud.ports_of(sid))[0]
    assert db["id"] in port["security_groups"]
    listed = (await _call(cloud, "GET", f"/servers/{sid}/os-security-groups", 200))[
        "security_groups"]
    assert sorted(g["name"] for g in listed) == ["db", "default"]
    await _call(cloud, "POST", f"/servers/{sid}/action", 404,
                json={"addSecurityGroup": {"name": "nope"}})
    await _call(cloud, "POST", f"/servers/{sid}/action", 202,
                json={"removeSecurityGroup": {"name": "db"}})
    assert db["id"] not in (await cloud.ports_of(sid))[0]["security_groups"]
    await _call(cloud, "POST", f"/servers/{sid}/action", 400,
                json={"removeSecurityGroup": {"name": "db"}})


async def test_floating_ips(cloud: Cloud) -> None:
    pools = (await _call(cloud, "GET", "/os-floating-ip-pools", 200))["floating_ip_pools"]
    assert pools == [{"name": "public"}]
    await _call(cloud, "POST", "/os-floating-ips", 404, json={"pool": "nope"})
    fip = (await _call(cloud, "POST", "/os-floating-ips", 200, json={"pool": "public"}))[
        "floating_ip"]
    assert fip["pool"] == "public" and fip["instance_id"] is None
    assert fip["fixed_ip"] is None and fip["ip"]
    listed = (await _call(cloud, "GET", "/os-floating-ips", 200))["floating_ips"]
    assert listed == [fip]
    assert (await _call(cloud, "GET", f"/os-floating-ips/{fip['id']}", 200))[
        "floating_ip"] == fip
    await _call(cloud, "GET", "/os-floating-ips/00000000-0000-0000-0000-000000000000", 404)
    r = await _create(cloud, "auto")
    sid = r.json()["server"]["id"]
    await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    fixed = (await cloud.ports_of(sid))[0]["fixed_ips"][0]["ip_address"]
    action = f"/servers/{sid}/action"
    await _call(cloud, "POST", action, 400, json={"addFloatingIp": {}})
    await _call(cloud, "POST", action, 404, json={"addFloatingIp": {"address": "10.9.9.9"}})
    await _call(cloud, "POST", action, 400, json={"removeFloatingIp": {"address": fip["ip"]}})
    await _call(cloud, "POST", action, 202, json={"addFloatingIp": {"address": fip["ip"]}})
    shown = (await _call(cloud, "GET", f"/os-floating-ips/{fip['id']}", 200))["floating_ip"]
    assert shown["instance_id"] == sid and shown["fixed_ip"] == fixed
    neutron = await cloud.net("GET", f"/floatingips/{fip['id']}")
    assert neutron["floatingip"]["fixed_ip_address"] == fixed
    await _call(cloud, "POST", action, 202, json={"removeFloatingIp": {"address": fip["ip"]}})
    shown = (await _call(cloud, "GET", f"/os-floating-ips/{fip['id']}", 200))["floating_ip"]
    assert shown["instance_id"] is None and shown["fixed_ip"] is None
    await _call(cloud, "DELETE", f"/os-floating-ips/{fip['id']}", 202)
    await _call(cloud, "DELETE", f"/os-floating-ips/{fip['id']}", 404)
    assert (await _call(cloud, "GET", "/os-floating-ips", 200))["floating_ips"] == []
    await _call(cloud, "GET", "/os-floating-ips", 404, version="2.36")


async def test_os_networks_come_from_the_network_service(cloud: Cloud) -> None:
    nets = (await _call(cloud, "GET", "/os-networks", 200, user="admin"))["networks"]
    labels = {n["label"]: n for n in nets}
    assert {"public", "private"} <= set(labels)
    private = labels["private"]
    shown = (await _call(cloud, "GET", f"/os-networks/{private['id']}", 200, user="admin"))
    assert shown["network"] == private
    await _call(cloud, "GET", "/os-networks/00000000-0000-0000-0000-000000000000", 404,
                user="admin")
    mine = (await _call(cloud, "GET", "/os-networks", 200))["networks"]
    assert "project_id" not in mine[0]
    await _call(cloud, "GET", "/os-networks", 404, version="2.36")


async def test_os_tenant_networks(cloud: Cloud) -> None:
    nets = (await _call(cloud, "GET", "/os-tenant-networks", 200))["networks"]
    labels = {n["label"]: n for n in nets}
    assert "private" in labels  # the demo project's own network (and what it may share)
    private = labels["private"]
    assert set(private) == {"id", "label", "cidr"}
    shown = await _call(cloud, "GET", f"/os-tenant-networks/{private['id']}", 200)
    assert shown["network"] == private
    await _call(cloud, "GET", "/os-tenant-networks/00000000-0000-0000-0000-000000000000",
                404)
    await _call(cloud, "GET", "/os-tenant-networks", 404, version="2.36")
