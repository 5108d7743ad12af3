"""Servers with ports: compute-api checks ``networks`` against the network service, the
agent creates or binds ports, waits for network-vif-plugged (the noop data plane's agent
reports them wired at once) and the server shows its addresses; a delete frees the ports.
In-process: fake virt driver, memory bus, noop data plane."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackling.cli.cloudsyaml import read_passwords
from stackling.cli.compute import ComputeComponent
from stackling.cli.network import NetworkComponent
from stackling.cli.up import build_root_app, prepare_all, start_bus, start_components
from stackling.common.config import Config, load_config
from tests.functional.compute.conftest import ComputeCloud, FakeImages, _Late


class Cloud(ComputeCloud):
    network: NetworkComponent

    async def net(self, method: str, path: str, user: str = "demo", status: int = 200,
                  **kwargs: Any) -> Any:
        headers = {"X-Auth-Token": await self.token(user, user)}
        r = await self.client.request(method, f"/network/v2.0{path}", headers=headers,
                                      **kwargs)
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    async def ports_of(self, server_id: str) -> list[dict[str, Any]]:
        body = await self.net("GET", f"/ports?device_id={server_id}", user="admin")
        return list(body["ports"])

    async def network_id(self, name: str) -> str:
        body = await self.net("GET", f"/networks?name={name}", user="admin")
        return str(body["networks"][0]["id"])


async def _cloud(tmp_path: Path, *, agent: bool, vif_timeout: float) -> AsyncIterator[Cloud]:
    config: Config = load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 0},
        "compute": {"host": "node-1", "heartbeat_interval": 0.2,
                    "vif_plugging_timeout": vif_timeout},
        "network": {"notify_delay": 0.0},
        "network_agent": {"host": "node-1", "heartbeat_interval": 0.2,
                          "tap_poll_interval": 0.05},
    })
    late = _Late()
    http = httpx.AsyncClient(transport=late, base_url="http://testserver")
    images = FakeImages()
    compute = ComputeComponent(http=http)
    network = NetworkComponent(http=http, agent=agent)
    async with AsyncExitStack() as stack:
        prepared = await prepare_all(config, [images, network, compute])
        stack.push_async_callback(prepared.identity.close)
        bus = await start_bus(config, prepared.identity, stack)
        mounted = await start_components(prepared, config, bus, stack)
        app = build_root_app(prepared.identity, config, mounted)
        late.app = app
        passwords = read_passwords(config.data_dir / "clouds.yaml")
        assert passwords is not None
        stack.push_async_callback(http.aclose)
        await asyncio.wait_for(network.bootstrapped.wait(), 30)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as client:
            cloud = Cloud(config, client, passwords, compute, images)
            cloud.network = network
            yield cloud


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    async for c in _cloud(tmp_path, agent=True, vif_timeout=30.0):
        yield c


@pytest.fixture
async def agentless(tmp_path: Path) -> AsyncIterator[Cloud]:
    """No network agent on the host: no port is ever wired, no vif-plugged comes."""
    async for c in _cloud(tmp_path, agent=False, vif_timeout=0.3):
        yield c


async def _create(cloud: Cloud, networks: Any, user: str = "demo",
                  **extra: Any) -> httpx.Response:
    body = {"server": {"name": "vm", "imageRef": "6b1e3b1c-3e7a-4d5e-9f00-000000000001",
                       "flavorRef": "1", "networks": networks, **extra}}
    return await cloud.request("POST", "/servers", user=user, json=body, version="2.37")


async def test_auto_picks_the_projects_network_and_shows_addresses(cloud: Cloud) -> None:
    r = await _create(cloud, "auto")
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    server = await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    ports = await cloud.ports_of(sid)
    assert len(ports) == 1
    port = ports[0]
    assert port["device_owner"] == "compute:nova"
    assert port["binding:host_id"] == "node-1"
    assert port["status"] == "ACTIVE"
    ip = port["fixed_ips"][0]["ip_address"]
    assert server["addresses"] == {"private": [{
        "version": 4, "addr": ip, "OS-EXT-IPS:type": "fixed",
        "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]}]}
    # the driver got the port to plug
    vifs = cloud.agent.driver.vms[sid].network.vifs
    assert [v["id"] for v in vifs] == [port["id"]]
    assert vifs[0]["mac_address"] == port["mac_address"]
    assert vifs[0]["fixed_ips"][0]["ip_address"] == ip
    assert vifs[0]["network"]["id"] == port["network_id"]
    # /ips and /ips/{network}: the same, plainer
    r = await cloud.request("GET", f"/servers/{sid}/ips", user="demo")
    assert r.json() == {"addresses": {"private": [{"version": 4, "addr": ip}]}}
    r = await cloud.request("GET", f"/servers/{sid}/ips/private", user="demo")
    assert r.json() == {"private": [{"version": 4, "addr": ip}]}
    r = await cloud.request("GET", f"/servers/{sid}/ips/public", user="demo")
    assert r.status_code == 404
    # detail lists show them too
    r = await cloud.request("GET", "/servers/detail", user="demo")
    assert r.json()["servers"][0]["addresses"] == server["addresses"]
    # delete: the port compute created goes
    r = await cloud.request("DELETE", f"/servers/{sid}", user="demo")
    assert r.status_code == 204
    await cloud.wait_gone(sid, user="demo", timeout=30)
    assert await cloud.ports_of(sid) == []
    await cloud.net("GET", f"/ports/{port['id']}", status=404)


async def test_none_boots_without_ports(cloud: Cloud) -> None:
    r = await _create(cloud, "none")
    sid = r.json()["server"]["id"]
    server = await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    assert server["addresses"] == {}
    assert await cloud.ports_of(sid) == []


async def test_network_uuid_with_fixed_ip(cloud: Cloud) -> None:
    net = await cloud.network_id("private")
    r = await _create(cloud, [{"uuid": net, "fixed_ip": "10.0.0.20"}])
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    server = await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    assert [a["addr"] for a in server["addresses"]["private"]] == ["10.0.0.20"]


async def test_users_port_is_bound_then_given_back(cloud: Cloud) -> None:
    net = await cloud.network_id("private")
    port = (await cloud.net("POST", "/ports", status=201,
                            json={"port": {"network_id": net, "name": "mine"}}))["port"]
    r = await _create(cloud, [{"port": port["id"]}])
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    server = await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    assert server["addresses"]["private"][0]["OS-EXT-IPS-MAC:mac_addr"] == \
        port["mac_address"]
    # in use now: a second server cannot take it
    r = await _create(cloud, [{"port": port["id"]}])
    assert r.status_code == 409, r.text
    assert r.json()["conflictingRequest"]["message"] == f"Port {port['id']} is still in use."
    r = await cloud.request("DELETE", f"/servers/{sid}", user="demo")
    await cloud.wait_gone(sid, user="demo", timeout=30)
    after = (await cloud.net("GET", f"/ports/{port['id']}", user="admin"))["port"]
    assert after["device_id"] == "" and after["device_owner"] == ""
    assert after["binding:host_id"] == ""
    assert after["fixed_ips"] == port["fixed_ips"]


async def test_bad_networks_are_refused_and_leave_nothing(cloud: Cloud) -> None:
    missing = "3f0c2b8e-0000-4000-8000-000000000000"
    r = await _create(cloud, [{"uuid": missing}])
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == f"Network {missing} could not be found."
    r = await _create(cloud, [{"port": missing}])
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"] == f"Port {missing} could not be found."
    # admin's project has no network of its own and public is external: auto has nothing
    r = await _create(cloud, "auto", user="admin")
    assert r.status_code == 400
    assert r.json()["badRequest"]["message"].startswith(
        "Unable to automatically allocate a network for project")
    # another project's network is not found either
    r = await cloud.request("GET", "/servers", user="demo")
    assert r.json()["servers"] == []


async def test_vif_plug_timeout_fails_the_build_and_frees_ports(agentless: Cloud) -> None:
    cloud = agentless
    net = await cloud.network_id("private")
    own = (await cloud.net("POST", "/ports", status=201,
                           json={"port": {"network_id": net}}))["port"]
    r = await _create(cloud, [{"uuid": net}, {"port": own["id"]}])
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    server = await cloud.wait_for(sid, "ERROR", user="admin", timeout=30)
    message = server["fault"]["message"]
    assert "network-vif-plugged" in message and "not rescheduling" in message
    # the port compute made is gone, the user's is free again, no VM is left
    remaining = await cloud.ports_of(sid)
    assert remaining == []
    after = (await cloud.net("GET", f"/ports/{own['id']}", user="admin"))["port"]
    assert after["device_id"] == "" and after["binding:host_id"] == ""
    assert sid not in cloud.agent.driver.vms
    all_ports = (await cloud.net("GET", f"/ports?network_id={net}", user="admin"))["ports"]
    assert {p["device_owner"] for p in all_ports} <= {"network:dhcp",
                                                      "network:router_interface", ""}


async def test_os_interface_attach_list_detach(cloud: Cloud) -> None:
    net = await cloud.network_id("private")
    r = await _create(cloud, "auto")
    sid = r.json()["server"]["id"]
    await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    r = await cloud.request("GET", f"/servers/{sid}/os-interface", user="demo")
    assert r.status_code == 200, r.text
    [first] = r.json()["interfaceAttachments"]
    assert first["net_id"] == net and first["port_state"] == "ACTIVE"
    # a new port on the network, with a chosen address; hot-plugged into the guest
    r = await cloud.request("POST", f"/servers/{sid}/os-interface", user="demo", json={
        "interfaceAttachment": {"net_id": net, "fixed_ips": [{"ip_address": "10.0.0.30"}]}})
    assert r.status_code == 200, r.text
    att = r.json()["interfaceAttachment"]
    assert att["fixed_ips"][0]["ip_address"] == "10.0.0.30"
    assert att["port_state"] == "ACTIVE"  # its vif-plugged came before the answer
    vifs = cloud.agent.driver.vms[sid].network.vifs
    assert [v["id"] for v in vifs] == [first["port_id"], att["port_id"]]
    server = await cloud.show(sid, user="demo")
    assert sorted(a["addr"] for a in server["addresses"]["private"]) == sorted(
        [first["fixed_ips"][0]["ip_address"], "10.0.0.30"])
    r = await cloud.request("GET", f"/servers/{sid}/os-interface/{att['port_id']}",
                            user="demo")
    assert r.json()["interfaceAttachment"]["mac_addr"] == att["mac_addr"]
    # the user's own port
    mine = (await cloud.net("POST", "/ports", status=201,
                            json={"port": {"network_id": net}}))["port"]
    r = await cloud.request("POST", f"/servers/{sid}/os-interface", user="demo",
                            json={"interfaceAttachment": {"port_id": mine["id"]}})
    assert r.status_code == 200, r.text
    assert len(await cloud.ports_of(sid)) == 3
    # detach: compute's port is deleted, the user's given back
    r = await cloud.request("DELETE", f"/servers/{sid}/os-interface/{att['port_id']}",
                            user="demo")
    assert r.status_code == 202, r.text
    await cloud.net("GET", f"/ports/{att['port_id']}", status=404)
    r = await cloud.request("DELETE", f"/servers/{sid}/os-interface/{mine['id']}",
                            user="demo")
    assert r.status_code == 202
    back = (await cloud.net("GET", f"/ports/{mine['id']}"))["port"]
    assert back["device_id"] == ""
    assert [v["id"] for v in cloud.agent.driver.vms[sid].network.vifs] == [first["port_id"]]
    r = await cloud.request("DELETE", f"/servers/{sid}/os-interface/{mine['id']}",
                            user="demo")
    assert r.status_code == 404
    # bad requests
    r = await cloud.request("POST", f"/servers/{sid}/os-interface", user="demo", json={
        "interfaceAttachment": {"net_id": net, "port_id": mine["id"]}})
    assert r.status_code == 400
    r = await cloud.request("POST", f"/servers/{sid}/os-interface", user="demo", json={
        "interfaceAttachment": {"net_id": "3f0c2b8e-0000-4000-8000-000000000000"}})
    assert r.status_code == 400


async def test_os_interface_attach_times_out_and_gives_the_port_back(
        agentless: Cloud) -> None:
    cloud = agentless
    r = await _create(cloud, "none")
    sid = r.json()["server"]["id"]
    await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    net = await cloud.network_id("private")
    r = await cloud.request("POST", f"/servers/{sid}/os-interface", user="demo",
                            json={"interfaceAttachment": {"net_id": net}})
    assert r.status_code == 500, r.text
    assert "Failed to attach network adapter device" in r.text
    assert await cloud.ports_of(sid) == []
    assert cloud.agent.driver.vms[sid].network.vifs == ()
    server = await cloud.show(sid, user="demo")
    assert server["status"] == "ACTIVE"


async def test_ports_follow_a_resize_to_another_host_and_back(cloud: Cloud) -> None:
    from stackling.compute.agent.manager import ComputeAgent
    from stackling.compute.virt.fake import FakeDriver

    first = cloud.agent
    r = await _create(cloud, "auto")
    sid = r.json()["server"]["id"]
    await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    node2 = ComputeAgent("node-2", first.bus, FakeDriver("node-2", memory_mb=8192),
                         first.images, heartbeat_interval=0.2,
                         network=first.ports.client if first.ports else None)
    await node2.start()
    cloud.compute.agents.append(node2)
    first.driver.memory_mb = 1024 + 512  # only node-2 has room for the bigger flavor
    await first.report_resources()
    r = await cloud.request("POST", f"/servers/{sid}/action", user="demo",
                            json={"resize": {"flavorRef": "2"}})
    assert r.status_code == 202, r.text
    await cloud.wait_for(sid, "VERIFY_RESIZE", user="demo", timeout=30)
    [port] = await cloud.ports_of(sid)
    assert port["binding:host_id"] == "node-2"
    r = await cloud.request("POST", f"/servers/{sid}/action", user="demo",
                            json={"revertResize": None})
    assert r.status_code == 202, r.text
    await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    [port] = await cloud.ports_of(sid)
    assert port["binding:host_id"] == "node-1"


async def test_list_filtered_by_ip(cloud: Cloud) -> None:
    net = await cloud.network_id("private")
    sids = []
    for ip in ("10.0.0.40", "10.0.0.51"):
        r = await _create(cloud, [{"uuid": net, "fixed_ip": ip}])
        sids.append(r.json()["server"]["id"])
    for sid in sids:
        await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)

    async def listed(query: str) -> list[str]:
        r = await cloud.request("GET", f"/servers?{query}", user="demo")
        assert r.status_code == 200, r.text
        return sorted(s["id"] for s in r.json()["servers"])

    assert await listed("ip=10.0.0.40") == [sids[0]]
    assert await listed("ip=10.0.0.5") == [sids[1]]
    assert await listed("ip=10.0.0") == sorted(sids)
    assert await listed("ip=10.9.") == []
    assert await listed("ip6=fd00") == []


async def test_security_groups_go_to_the_ports_compute_makes(cloud: Cloud) -> None:
    r = await _create(cloud, "auto", security_groups=[{"name": "nope"}])
    assert r.status_code == 400, r.text
    assert "Security group nope not found" in r.json()["badRequest"]["message"]
    web = (await cloud.net("POST", "/security-groups", status=201,
                           json={"security_group": {"name": "web"}}))["security_group"]
    r = await _create(cloud, "auto", security_groups=[{"name": "web"}])
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    [port] = await cloud.ports_of(sid)
    assert port["security_groups"] == [web["id"]]
    r = await _create(cloud, "auto", security_groups=[{"name": "default"}])
    assert r.status_code == 202, r.text


async def test_floating_ip_shows_among_the_addresses(cloud: Cloud) -> None:
    r = await _create(cloud, "auto")
    sid = r.json()["server"]["id"]
    await cloud.wait_for(sid, "ACTIVE", user="demo", timeout=30)
    [port] = await cloud.ports_of(sid)
    public = await cloud.network_id("public")
    fip = (await cloud.net("POST", "/floatingips", status=201, json={"floatingip": {
        "floating_network_id": public, "port_id": port["id"]}}))["floatingip"]
    server = await cloud.show(sid, user="demo")
    assert server["addresses"]["private"] == [
        {"version": 4, "addr": port["fixed_ips"][0]["ip_address"], "OS-EXT-IPS:type": "fixed",
         "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]},
        {"version": 4, "addr": fip["floating_ip_address"], "OS-EXT-IPS:type": "floating",
         "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]}]
