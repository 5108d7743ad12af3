"""Server groups: API shapes by microversion, quota, and the scheduler honouring them."""

from __future__ import annotations

from tests.functional.compute.conftest import ComputeCloud
from tests.functional.compute.test_scheduling import add_host


async def group(cloud: ComputeCloud, policy: str, **extra: object) -> dict[str, object]:
    r = await cloud.request("POST", "/os-server-groups", version="2.64",
                            json={"server_group": {"name": f"g-{policy}", "policy": policy,
                                                   **extra}})
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()["server_group"]
    return body


async def test_server_group_api(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("POST", "/os-server-groups", user="demo", json={
        "server_group": {"name": "old", "policies": ["anti-affinity"]}})
    old = r.json()["server_group"]
    assert old == {"id": old["id"], "name": "old", "policies": ["anti-affinity"],
                   "members": [], "metadata": {}}
    r = await compute_cloud.request("POST", "/os-server-groups", user="demo", json={
        "server_group": {"name": "soft", "policies": ["soft-affinity"]}})
    assert r.status_code == 400  # soft policies need 2.15
    r = await compute_cloud.request("POST", "/os-server-groups", user="demo", version="2.64",
                                    json={"server_group": {"name": "new",
                                                           "policy": "anti-affinity",
                                                           "rules": {
                                                               "max_server_per_host": 2}}})
    new = r.json()["server_group"]
    assert new["policy"] == "anti-affinity" and new["rules"] == {"max_server_per_host": 2}
    assert "policies" not in new and new["project_id"]
    r = await compute_cloud.request("POST", "/os-server-groups", user="demo", version="2.64",
                                    json={"server_group": {"name": "bad", "policy": "affinity",
                                                           "rules": {
                                                               "max_server_per_host": 2}}})
    assert r.status_code == 400
    r = await compute_cloud.request("GET", "/os-server-groups", user="demo")
    assert {g["name"] for g in r.json()["server_groups"]} == {"old", "new"}
    r = await compute_cloud.request("GET", f"/os-server-groups/{old['id']}", user="admin")
    assert r.status_code == 200  # admins see every project's groups
    r = await compute_cloud.request("GET", "/os-server-groups", user="admin")
    assert r.json()["server_groups"] == []
    r = await compute_cloud.request("GET", "/os-server-groups", user="admin",
                                    params={"all_projects": "True"})
    assert len(r.json()["server_groups"]) == 2
    r = await compute_cloud.request("DELETE", f"/os-server-groups/{old['id']}", user="demo")
    assert r.status_code == 204
    r = await compute_cloud.request("GET", f"/os-server-groups/{old['id']}", user="demo")
    assert r.status_code == 404


async def test_anti_affinity_spreads_and_affinity_packs(compute_cloud: ComputeCloud) -> None:
    await add_host(compute_cloud, "node-2")
    await add_host(compute_cloud, "node-3")
    anti = await group(compute_cloud, "anti-affinity")
    hosts = []
    for i in range(3):
        body = {"server": {"name": f"anti{i}", "imageRef": "6b1e3b1c-3e7a-4d5e-9f00-"
                                                           "000000000001", "flavorRef": "1"},
                "os:scheduler_hints": {"group": anti["id"]}}
        r = await compute_cloud.request("POST", "/servers", json=body)
        server = await compute_cloud.wait_for(r.json()["server"]["id"], "ACTIVE")
        hosts.append(server["OS-EXT-SRV-ATTR:host"])
    assert sorted(hosts) == ["node-1", "node-2", "node-3"]
    body = {"server": {"name": "anti4", "imageRef": "6b1e3b1c-3e7a-4d5e-9f00-000000000001",
                       "flavorRef": "1"}, "os:scheduler_hints": {"group": anti["id"]}}
    r = await compute_cloud.request("POST", "/servers", json=body)
    server = await compute_cloud.wait_for(r.json()["server"]["id"], "ERROR")
    assert server["fault"]["message"].startswith("No valid host")
    shown = (await compute_cloud.request("GET", f"/os-server-groups/{anti['id']}")).json()
    assert len(shown["server_group"]["members"]) == 4
    same = await group(compute_cloud, "affinity")
    placed = set()
    for i in range(3):
        body = {"server": {"name": f"aff{i}", "imageRef": "6b1e3b1c-3e7a-4d5e-9f00-"
                                                          "000000000001", "flavorRef": "1"},
                "os:scheduler_hints": {"group": same["id"]}}
        r = await compute_cloud.request("POST", "/servers", json=body)
        server = await compute_cloud.wait_for(r.json()["server"]["id"], "ACTIVE")
        placed.add(server["OS-EXT-SRV-ATTR:host"])
        shown = await compute_cloud.show(server["id"], version="2.71")
        assert shown["server_groups"] == [same["id"]]
    assert len(placed) == 1
