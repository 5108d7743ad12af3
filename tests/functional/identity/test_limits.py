"""Unified limits: registered limits, project/domain limits, the flat model."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import Cloud

V3 = "/identity/v3"


async def _setup(cloud: Cloud) -> tuple[dict[str, str], str, str]:
    h = {"X-Auth-Token": await cloud.token("admin", "admin")}
    r = await cloud.client.get(f"{V3}/services?type=identity", headers=h)
    service_id = r.json()["services"][0]["id"]
    r = await cloud.client.post(f"{V3}/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "demo", "domain": {"id": "default"}, "password": cloud.passwords["demo"]}}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}})
    return h, service_id, r.json()["token"]["project"]["id"]


async def _register(cloud: Cloud, h: dict[str, str], *items: dict[str, Any]) -> Any:
    return await cloud.client.post(f"{V3}/registered_limits",
                                   json={"registered_limits": list(items)}, headers=h)


async def test_model_is_flat(cloud: Cloud) -> None:
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    r = await cloud.client.get(f"{V3}/limits/model", headers=demo)
    assert r.status_code == 200
    assert r.json()["model"]["name"] == "flat"
    assert set(r.json()["model"]) == {"name", "description"}
    assert (await cloud.client.head(f"{V3}/limits/model", headers=demo)).status_code == 200
    assert (await cloud.client.get(f"{V3}/limits/model")).status_code == 401


async def test_registered_limits(cloud: Cloud) -> None:
    h, service_id, _ = await _setup(cloud)
    one = {"service_id": service_id, "resource_name": "snapshots", "default_limit": 10,
           "region_id": "RegionOne", "description": "snaps"}
    two = {"service_id": service_id, "resource_name": "volumes", "default_limit": 5}
    r = await _register(cloud, h, one, two)
    assert r.status_code == 201, r.text
    created = r.json()["registered_limits"]
    assert set(r.json()) == {"registered_limits"}
    assert [c["resource_name"] for c in created] == ["snapshots", "volumes"]
    assert created[1]["region_id"] is None and created[1]["description"] is None
    assert created[0]["links"]["self"].endswith(f"/v3/registered_limits/{created[0]['id']}")
    assert (await _register(cloud, h, one)).status_code == 409
    for bad in ({**two, "service_id": "nope"}, {**two, "default_limit": "x"},
                {**two, "resource_name": 123}, {**two, "region_id": "nowhere"},
                {**two, "default_limit": True}, {**two, "color": "red"},
                {"service_id": service_id, "resource_name": "r"}):
        assert (await _register(cloud, h, bad)).status_code == 400, bad
    r = await cloud.client.post(f"{V3}/registered_limits", json={"registered_limits": []},
                                headers=h)
    assert r.status_code == 400
    r = await cloud.client.get(f"{V3}/registered_limits?resource_name=volumes", headers=h)
    assert [x["id"] for x in r.json()["registered_limits"]] == [created[1]["id"]]
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    r = await cloud.client.get(f"{V3}/registered_limits/{created[0]['id']}", headers=demo)
    assert r.status_code == 200 and r.json()["registered_limit"]["default_limit"] == 10
    assert (await _register(cloud, demo, {**two, "resource_name": "x"})).status_code == 403
    r = await cloud.client.patch(f"{V3}/registered_limits/{created[1]['id']}",
                                 json={"registered_limit": {"default_limit": 7,
                                                            "region_id": "RegionOne"}},
                                 headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["registered_limit"]["default_limit"] == 7
    # moving onto another registered limit's (service, region, resource) conflicts
    r = await cloud.client.patch(f"{V3}/registered_limits/{created[1]['id']}",
                                 json={"registered_limit": {"resource_name": "snapshots"}},
                                 headers=h)
    assert r.status_code == 409
    r = await cloud.client.patch(f"{V3}/registered_limits/{created[1]['id']}",
                                 json={"registered_limit": {"description": 123}}, headers=h)
    assert r.status_code == 400
    assert (await cloud.client.delete(f"{V3}/registered_limits/{created[1]['id']}",
                                      headers=h)).status_code == 204
    assert (await cloud.client.get(f"{V3}/registered_limits/{created[1]['id']}",
                                   headers=h)).status_code == 404


async def test_limits_need_registered_limit_and_scope_listing(cloud: Cloud) -> None:
    h, service_id, demo_project = await _setup(cloud)
    base = {"service_id": service_id, "resource_name": "cores", "region_id": "RegionOne"}
    limit = {**base, "project_id": demo_project, "resource_limit": 4}
    r = await cloud.client.post(f"{V3}/limits", json={"limits": [limit]}, headers=h)
    assert r.status_code == 403  # no registered limit yet
    r = await _register(cloud, h, {**base, "default_limit": 2})
    reg_id = r.json()["registered_limits"][0]["id"]
    r = await cloud.client.post(f"{V3}/limits", json={"limits": [limit]}, headers=h)
    assert r.status_code == 201, r.text
    made = r.json()["limits"][0]
    assert made["project_id"] == demo_project and made["domain_id"] is None
    assert made["resource_limit"] == 4 and made["links"]["self"].endswith(made["id"])
    r = await cloud.client.post(f"{V3}/limits", json={"limits": [limit]}, headers=h)
    assert r.status_code == 409
    # a domain limit (project_id naming a domain becomes domain_id)
    r = await cloud.client.post(f"{V3}/limits", json={"limits": [
        {**base, "project_id": "default", "resource_limit": 40}]}, headers=h)
    assert r.status_code == 201, r.text
    dom = r.json()["limits"][0]
    assert dom["domain_id"] == "default" and dom["project_id"] is None
    for bad in ({**limit, "resource_limit": "x"}, {**limit, "project_id": "nope"},
                {**limit, "domain_id": "default"}, {k: v for k, v in limit.items()
                                                    if k != "project_id"},
                {**limit, "region_id": "nowhere"}):
        r = await cloud.client.post(f"{V3}/limits", json={"limits": [bad]}, headers=h)
        assert r.status_code == 400, bad
    # the registered limit is now referenced: no update, no delete
    r = await cloud.client.patch(f"{V3}/registered_limits/{reg_id}",
                                 json={"registered_limit": {"default_limit": 3}}, headers=h)
    assert r.status_code == 403
    assert (await cloud.client.delete(f"{V3}/registered_limits/{reg_id}",
                                      headers=h)).status_code == 403
    # listing: admin sees all, demo sees its project's only
    r = await cloud.client.get(f"{V3}/limits", headers=h)
    assert {x["id"] for x in r.json()["limits"]} == {made["id"], dom["id"]}
    r = await cloud.client.get(f"{V3}/limits?domain_id=default", headers=h)
    assert [x["id"] for x in r.json()["limits"]] == [dom["id"]]
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    r = await cloud.client.get(f"{V3}/limits", headers=demo)
    assert [x["id"] for x in r.json()["limits"]] == [made["id"]]
    assert (await cloud.client.get(f"{V3}/limits/{made['id']}", headers=demo)).status_code == 200
    assert (await cloud.client.get(f"{V3}/limits/{dom['id']}", headers=demo)).status_code == 403
    r = await cloud.client.patch(f"{V3}/limits/{made['id']}",
                                 json={"limit": {"resource_limit": 8}}, headers=demo)
    assert r.status_code == 403
    r = await cloud.client.patch(f"{V3}/limits/{made['id']}",
                                 json={"limit": {"resource_limit": 0, "description": "z"}},
                                 headers=h)
    assert r.status_code == 200 and r.json()["limit"]["resource_limit"] == 0
    r = await cloud.client.patch(f"{V3}/limits/{made['id']}",
                                 json={"limit": {"project_id": "x"}}, headers=h)
    assert r.status_code == 400
    for lim in (made, dom):
        assert (await cloud.client.delete(f"{V3}/limits/{lim['id']}",
                                          headers=h)).status_code == 204
    assert (await cloud.client.get(f"{V3}/limits/{made['id']}", headers=h)).status_code == 404
    assert (await cloud.client.delete(f"{V3}/registered_limits/{reg_id}",
                                      headers=h)).status_code == 204
