"""``stackling up``'s network topology and the basics of the API."""

from __future__ import annotations

from tests.functional.network.conftest import NetCloud


async def test_version_discovery_and_extensions(net_cloud: NetCloud) -> None:
    r = await net_cloud.client.get("/network/")
    assert r.status_code == 200
    assert r.json()["versions"][0]["id"] == "v2.0"
    assert r.json()["versions"][0]["links"][0]["href"].endswith("/network/v2.0/")
    aliases = {e["alias"] for e in (await net_cloud.ok("GET", "/v2.0/extensions"))[
        "extensions"]}
    assert {"router", "security-group", "external-net", "quotas"} <= aliases
    assert "dvr" not in aliases and "l3-ha" not in aliases and "subnet_allocation" in aliases
    r = await net_cloud.request("GET", "/v2.0/extensions/dvr")
    assert r.status_code == 404


async def test_bootstrap_topology(net_cloud: NetCloud) -> None:
    nets = (await net_cloud.ok("GET", "/v2.0/networks"))["networks"]
    by_name = {n["name"]: n for n in nets}
    public = by_name["public"]
    assert public["router:external"] is True
    assert public["provider:network_type"] == "flat"
    demo_nets = (await net_cloud.ok("GET", "/v2.0/networks", user="demo"))["networks"]
    assert {n["name"] for n in demo_nets} == {"public", "private"}
    assert all("provider:network_type" not in n for n in demo_nets)
    routers = (await net_cloud.ok("GET", "/v2.0/routers", user="demo"))["routers"]
    assert [r["name"] for r in routers] == ["router1"]
    gw = routers[0]["external_gateway_info"]
    assert gw["network_id"] == public["id"] and gw["enable_snat"] is True
    assert gw["external_fixed_ips"][0]["ip_address"].startswith("172.24.4.")
    groups = (await net_cloud.ok("GET", "/v2.0/security-groups", user="demo"))[
        "security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    rules = groups[0]["security_group_rules"]
    assert len(rules) == 4
    assert {(r["direction"], r["ethertype"], r["remote_group_id"]) for r in rules} == {
        ("egress", "IPv4", None), ("egress", "IPv6", None),
        ("ingress", "IPv4", groups[0]["id"]), ("ingress", "IPv6", groups[0]["id"])}


async def test_errors_have_neutrons_shape(net_cloud: NetCloud) -> None:
    r = await net_cloud.request("GET", "/v2.0/networks/6b1e3b1c-0000-0000-0000-000000000000")
    assert r.status_code == 404
    err = r.json()["NeutronError"]
    assert err["type"] == "NetworkNotFound"
    assert "could not be found" in err["message"] and err["detail"] == ""
    r = await net_cloud.request("POST", "/v2.0/networks", json={"network": {"bogus": 1}})
    assert r.status_code == 400 and "NeutronError" in r.json()
    r = await net_cloud.client.get("/network/v2.0/networks")
    assert r.status_code == 401


async def test_bootstrap_is_idempotent(net_cloud: NetCloud) -> None:
    from stackling.cli.network import bootstrap

    svc = net_cloud.network.svc
    assert svc is not None
    admin, demo = await net_cloud.project_id("admin"), await net_cloud.project_id("demo")
    before = {k: len((await net_cloud.ok("GET", f"/v2.0/{k}"))[k.replace("-", "_")])
              for k in ("networks", "subnets", "routers", "ports", "security-groups")}
    await bootstrap(svc, admin, demo)  # a second `stackling up` on the same data dir
    after = {k: len((await net_cloud.ok("GET", f"/v2.0/{k}"))[k.replace("-", "_")])
             for k in ("networks", "subnets", "routers", "ports", "security-groups")}
    assert before == after
    assert before["networks"] == 2 and before["routers"] == 1
