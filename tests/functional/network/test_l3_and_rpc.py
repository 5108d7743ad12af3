"""Routers, floating IPs, security group rules, and the agents' side: GetHostState from the
database, PortsWired -> ACTIVE + network-vif-plugged to compute, heartbeats -> /v2.0/agents."""

from __future__ import annotations

import asyncio
from typing import Any

from stackling.network.rpcapi import (
    SERVER_TOPIC,
    GetHostState,
    HostStateReply,
    PortsWired,
)
from tests.functional.network.conftest import NetCloud


async def _demo_private(cloud: NetCloud) -> dict[str, Any]:
    nets = (await cloud.ok("GET", "/v2.0/networks?name=private", user="demo"))["networks"]
    return dict(nets[0])


async def _public(cloud: NetCloud) -> dict[str, Any]:
    return dict((await cloud.ok("GET", "/v2.0/networks?name=public"))["networks"][0])


async def test_floating_ip_associate_disassociate(net_cloud: NetCloud) -> None:
    private = await _demo_private(net_cloud)
    public = await _public(net_cloud)
    port = (await net_cloud.ok("POST", "/v2.0/ports", 201, user="demo", json={"port": {
        "network_id": private["id"]}}))["port"]
    fip = (await net_cloud.ok("POST", "/v2.0/floatingips", 201, user="demo", json={
        "floatingip": {"floating_network_id": public["id"]}}))["floatingip"]
    assert fip["floating_ip_address"].startswith("172.24.4.") and fip["port_id"] is None
    fip = (await net_cloud.ok("PUT", f"/v2.0/floatingips/{fip['id']}", user="demo", json={
        "floatingip": {"port_id": port["id"]}}))["floatingip"]
    assert fip["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    router = (await net_cloud.ok("GET", "/v2.0/routers?name=router1", user="demo"))[
        "routers"][0]
    assert fip["router_id"] == router["id"]
    assert fip["port_details"]["network_id"] == private["id"]
    # the router interface is needed by the floating IP now
    sub = private["subnets"][0]
    r = await net_cloud.request("PUT", f"/v2.0/routers/{router['id']}/remove_router_interface",
                                user="demo", json={"subnet_id": sub})
    assert r.status_code == 409
    fip = (await net_cloud.ok("PUT", f"/v2.0/floatingips/{fip['id']}", user="demo", json={
        "floatingip": {"port_id": None}}))["floatingip"]
    assert fip["port_id"] is None and fip["router_id"] is None
    # a network the router does not reach cannot get a floating IP
    net = (await net_cloud.ok("POST", "/v2.0/networks", 201, user="demo",
                              json={"network": {}}))["network"]
    await net_cloud.ok("POST", "/v2.0/subnets", 201, user="demo", json={"subnet": {
        "network_id": net["id"], "cidr": "10.99.0.0/24", "ip_version": 4}})
    lone = (await net_cloud.ok("POST", "/v2.0/ports", 201, user="demo", json={"port": {
        "network_id": net["id"]}}))["port"]
    r = await net_cloud.request("PUT", f"/v2.0/floatingips/{fip['id']}", user="demo",
                                json={"floatingip": {"port_id": lone["id"]}})
    assert r.status_code == 404
    assert r.json()["NeutronError"]["type"] == "ExternalGatewayForFloatingIPNotFound"
    await net_cloud.ok("DELETE", f"/v2.0/floatingips/{fip['id']}", 204, user="demo")


async def test_router_interfaces_and_routes(net_cloud: NetCloud) -> None:
    net = (await net_cloud.ok("POST", "/v2.0/networks", 201, json={"network": {}}))["network"]
    sub = (await net_cloud.ok("POST", "/v2.0/subnets", 201, json={"subnet": {
        "network_id": net["id"], "cidr": "10.80.0.0/24", "ip_version": 4}}))["subnet"]
    router = (await net_cloud.ok("POST", "/v2.0/routers", 201,
                                 json={"router": {"name": "r"}}))["router"]
    info = await net_cloud.ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                              json={"subnet_id": sub["id"]})
    assert info["subnet_id"] == sub["id"]
    port = (await net_cloud.ok("GET", f"/v2.0/ports/{info['port_id']}"))["port"]
    assert port["fixed_ips"][0]["ip_address"] == "10.80.0.1"
    assert port["device_owner"] == "network:router_interface"
    r = await net_cloud.request("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                                json={"subnet_id": sub["id"]})
    assert r.status_code == 400
    r = await net_cloud.request("DELETE", f"/v2.0/ports/{info['port_id']}")
    assert r.status_code == 409
    r = await net_cloud.request("PUT", f"/v2.0/routers/{router['id']}", json={"router": {
        "routes": [{"destination": "10.200.0.0/16", "nexthop": "10.81.0.5"}]}})
    assert r.status_code == 400
    routed = (await net_cloud.ok("PUT", f"/v2.0/routers/{router['id']}", json={"router": {
        "routes": [{"destination": "10.200.0.0/16", "nexthop": "10.80.0.5"}]}}))["router"]
    assert routed["routes"] == [{"destination": "10.200.0.0/16", "nexthop": "10.80.0.5"}]
    r = await net_cloud.request("DELETE", f"/v2.0/routers/{router['id']}")
    assert r.status_code == 409
    await net_cloud.ok("PUT", f"/v2.0/routers/{router['id']}", json={"router": {
        "routes": []}})
    await net_cloud.ok("PUT", f"/v2.0/routers/{router['id']}/remove_router_interface",
                       json={"subnet_id": sub["id"]})
    await net_cloud.ok("DELETE", f"/v2.0/routers/{router['id']}", 204)
    r = await net_cloud.request("GET", f"/v2.0/ports/{info['port_id']}")
    assert r.status_code == 404


async def test_security_group_rules(net_cloud: NetCloud) -> None:
    sg = (await net_cloud.ok("POST", "/v2.0/security-groups", 201, user="demo",
                             json={"security_group": {"name": "web"}}))["security_group"]
    assert len(sg["security_group_rules"]) == 2  # egress v4 + v6
    rule = {"security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp",
            "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}
    made = (await net_cloud.ok("POST", "/v2.0/security-group-rules", 201, user="demo",
                               json={"security_group_rule": rule}))["security_group_rule"]
    assert made["ethertype"] == "IPv4" and made["port_range_max"] == 80
    r = await net_cloud.request("POST", "/v2.0/security-group-rules", user="demo",
                                json={"security_group_rule": rule})
    assert r.status_code == 409
    assert r.json()["NeutronError"]["type"] == "SecurityGroupRuleExists"
    for bad in ({"port_range_min": 90, "port_range_max": 80},
                {"protocol": None}, {"remote_ip_prefix": "::/0"},
                {"direction": "sideways"}, {"protocol": "bogus"}):
        r = await net_cloud.request("POST", "/v2.0/security-group-rules", user="demo",
                                    json={"security_group_rule": {**rule, **bad}})
        assert r.status_code == 400, (bad, r.text)
    r = await net_cloud.request("POST", "/v2.0/security-groups", user="demo",
                                json={"security_group": {"name": "default"}})
    assert r.status_code == 409
    private = await _demo_private(net_cloud)
    port = (await net_cloud.ok("POST", "/v2.0/ports", 201, user="demo", json={"port": {
        "network_id": private["id"], "security_groups": [sg["id"]]}}))["port"]
    r = await net_cloud.request("DELETE", f"/v2.0/security-groups/{sg['id']}", user="demo")
    assert r.status_code == 409
    await net_cloud.ok("DELETE", f"/v2.0/ports/{port['id']}", 204, user="demo")
    await net_cloud.ok("DELETE", f"/v2.0/security-groups/{sg['id']}", 204, user="demo")


async def test_host_state_wiring_and_vif_plugged(net_cloud: NetCloud) -> None:
    bus = net_cloud.network.server.bus  # type: ignore[union-attr]
    private = await _demo_private(net_cloud)
    port = (await net_cloud.ok("POST", "/v2.0/ports", 201, json={"port": {
        "network_id": private["id"], "binding:host_id": "node-2",
        "device_owner": "compute:nova", "device_id": "3f7d1c0e-0000-4000-8000-000000000001"}}
                              ))["port"]
    assert port["binding:vif_type"] == "bridge"
    assert port["binding:vif_details"]["bridge_name"] == ("brq" + private["id"])[:14]
    reply = await bus.call(SERVER_TOPIC, GetHostState(host="node-2", roles=["l2"]),
                           returns=HostStateReply)
    state = reply.state
    assert [p.id for p in state.ports] == [port["id"]]
    assert [n.id for n in state.networks] == [private["id"]]
    assert state.networks[0].network_type == "vxlan" and state.networks[0].segmentation_id
    groups = {g.id: g for g in state.security_groups}
    assert port["security_groups"][0] in groups
    assert port["fixed_ips"][0]["ip_address"] in groups[port["security_groups"][0]].member_ips
    assert state.routers == []
    # node-1 runs the all-in-one agent (l2, dhcp, l3): it serves DHCP and router1
    node1 = (await bus.call(SERVER_TOPIC, GetHostState(host="node-1"),
                            returns=HostStateReply)).state
    assert [r.gateway is not None for r in node1.routers] == [True]
    assert port["id"] in {p.id for p in node1.ports}  # dnsmasq needs every port
    await bus.cast(SERVER_TOPIC, PortsWired(host="node-2", port_ids=[port["id"]]))
    for _ in range(200):
        if net_cloud.compute.events:
            break
        await asyncio.sleep(0.01)
    assert net_cloud.compute.events == [{
        "name": "network-vif-plugged", "server_uuid": "3f7d1c0e-0000-4000-8000-000000000001",
        "tag": port["id"], "status": "completed"}]
    shown = (await net_cloud.ok("GET", f"/v2.0/ports/{port['id']}"))["port"]
    assert shown["status"] == "ACTIVE"


async def test_agents_from_heartbeats(net_cloud: NetCloud) -> None:
    for _ in range(200):
        agents = (await net_cloud.ok("GET", "/v2.0/agents"))["agents"]
        if agents:
            break
        await asyncio.sleep(0.02)
    assert {a["agent_type"] for a in agents} >= {"Linux bridge agent", "DHCP agent",
                                                  "L3 agent"}
    assert all(a["alive"] and a["host"] == "node-1" for a in agents)
    assert (await net_cloud.ok("GET", "/v2.0/agents", user="demo"))["agents"] == []


async def test_served_ports_turn_active(net_cloud: NetCloud) -> None:
    """The all-in-one agent (l2, dhcp, l3 on node-1) serves router1 and the DHCP ports."""
    private = await _demo_private(net_cloud)
    for _ in range(300):
        ports = (await net_cloud.ok("GET", f"/v2.0/ports?network_id={private['id']}"))[
            "ports"]
        if ports and all(p["status"] == "ACTIVE" for p in ports):
            break
        await asyncio.sleep(0.02)
    assert sorted(p["device_owner"] for p in ports) == ["network:dhcp",
                                                       "network:router_interface"]
    assert all(p["status"] == "ACTIVE" for p in ports)
    assert {p["binding:host_id"] for p in ports if p["device_owner"] == "network:dhcp"} == {
        "node-1"}
