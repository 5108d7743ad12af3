"""Regions, services, endpoints and OS-EP-FILTER over the identity API."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import Cloud

V3 = "/identity/v3"


async def _admin(cloud: Cloud) -> dict[str, str]:
    return {"X-Auth-Token": await cloud.token("admin", "admin")}


async def _demo(cloud: Cloud) -> dict[str, str]:
    return {"X-Auth-Token": await cloud.token("demo", "demo")}


async def _service(cloud: Cloud, h: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"type": "widget", "name": "widgets", "description": "w", **extra}
    r = await cloud.client.post(f"{V3}/services", json={"service": body}, headers=h)
    assert r.status_code == 201, r.text
    return dict(r.json()["service"])


async def _catalog(cloud: Cloud, token: str | None = None) -> list[dict[str, Any]]:
    token = token or await cloud.token("admin", "admin")
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={"X-Auth-Token": token,
                                                              "X-Subject-Token": token})
    return list(r.json()["token"]["catalog"])


async def test_region_crud_tree_and_filters(cloud: Cloud) -> None:
    h = await _admin(cloud)
    r = await cloud.client.post(f"{V3}/regions", json={"region": {"description": "top"}},
                                headers=h)
    assert r.status_code == 201
    top = r.json()["region"]
    assert top["description"] == "top" and top["parent_region_id"] is None
    assert top["links"]["self"].endswith(f"/v3/regions/{top['id']}")
    r = await cloud.client.put(f"{V3}/regions/child-1",
                               json={"region": {"parent_region_id": top["id"]}}, headers=h)
    assert r.status_code == 201
    assert r.json()["region"] == {**r.json()["region"], "id": "child-1", "description": ""}
    # duplicate id, missing parent, mismatched PUT id
    r = await cloud.client.put(f"{V3}/regions/child-1", json={"region": {}}, headers=h)
    assert r.status_code == 409
    r = await cloud.client.post(f"{V3}/regions", json={"region": {"parent_region_id": "nope"}},
                                headers=h)
    assert r.status_code == 404
    r = await cloud.client.put(f"{V3}/regions/a", json={"region": {"id": "b"}}, headers=h)
    assert r.status_code == 400
    # a loop is refused
    r = await cloud.client.patch(f"{V3}/regions/{top['id']}",
                                 json={"region": {"parent_region_id": "child-1"}}, headers=h)
    assert r.status_code == 400
    r = await cloud.client.patch(f"{V3}/regions/child-1",
                                 json={"region": {"parent_region_id": "child-1"}}, headers=h)
    assert r.status_code == 400
    r = await cloud.client.get(f"{V3}/regions?parent_region_id={top['id']}", headers=h)
    assert [x["id"] for x in r.json()["regions"]] == ["child-1"]
    # any authenticated user may read regions, not change them
    d = await _demo(cloud)
    assert (await cloud.client.get(f"{V3}/regions", headers=d)).status_code == 200
    assert (await cloud.client.get(f"{V3}/regions/child-1", headers=d)).status_code == 200
    r = await cloud.client.post(f"{V3}/regions", json={"region": {}}, headers=d)
    assert r.status_code == 403
    assert (await cloud.client.get(f"{V3}/regions")).status_code == 401
    # deleting the parent deletes the child
    assert (await cloud.client.delete(f"{V3}/regions/{top['id']}", headers=h)).status_code == 204
    assert (await cloud.client.get(f"{V3}/regions/child-1", headers=h)).status_code == 404


async def test_service_crud_filters_and_policy(cloud: Cloud) -> None:
    h = await _admin(cloud)
    svc = await _service(cloud, h, color="blue")
    assert svc["enabled"] is True and svc["color"] == "blue" and svc["name"] == "widgets"
    r = await cloud.client.post(f"{V3}/services", json={"service": {"name": "x"}}, headers=h)
    assert r.status_code == 400
    r = await cloud.client.post(f"{V3}/services", json={"service": {"type": "t",
                                                                    "enabled": "yes"}},
                                headers=h)
    assert r.status_code == 400
    r = await cloud.client.patch(f"{V3}/services/{svc['id']}",
                                 json={"service": {"description": "new"}}, headers=h)
    assert r.status_code == 200 and r.json()["service"]["description"] == "new"
    r = await cloud.client.get(f"{V3}/services?type=widget", headers=h)
    assert [s["id"] for s in r.json()["services"]] == [svc["id"]]
    r = await cloud.client.get(f"{V3}/services?name=widgets", headers=h)
    assert [s["id"] for s in r.json()["services"]] == [svc["id"]]
    r = await cloud.client.head(f"{V3}/services/{svc['id']}", headers=h)
    assert r.status_code == 200 and r.content == b""
    d = await _demo(cloud)
    assert (await cloud.client.get(f"{V3}/services", headers=d)).status_code == 403
    r = await cloud.client.delete(f"{V3}/services/{svc['id']}", headers=d)
    assert r.status_code == 403
    assert (await cloud.client.get(f"{V3}/services/nope", headers=h)).status_code == 404


async def test_endpoint_validation_and_catalog_follows_changes(cloud: Cloud) -> None:
    h = await _admin(cloud)
    svc = await _service(cloud, h)
    good = {"service_id": svc["id"], "interface": "public", "url": "http://w.example:1/v1"}
    for bad in ({**good, "interface": "private"}, {**good, "region_id": "nowhere"},
                {**good, "service_id": "nope"}, {**good, "enabled": "True"},
                {**good, "url": "not a url"}, {**good, "url": "http://x/$(bogus)s"}):
        r = await cloud.client.post(f"{V3}/endpoints", json={"endpoint": bad}, headers=h)
        assert r.status_code == 400, bad
    # the legacy "region" creates the region
    r = await cloud.client.post(f"{V3}/endpoints", json={"endpoint": {**good, "region": "R2"}},
                                headers=h)
    assert r.status_code == 201, r.text
    ep = r.json()["endpoint"]
    assert ep["region"] == ep["region_id"] == "R2" and ep["enabled"] is True
    assert (await cloud.client.get(f"{V3}/regions/R2", headers=h)).status_code == 200
    entry = next(s for s in await _catalog(cloud) if s["id"] == svc["id"])
    assert [e["url"] for e in entry["endpoints"]] == [good["url"]]
    # a region with endpoints cannot be deleted
    assert (await cloud.client.delete(f"{V3}/regions/R2", headers=h)).status_code == 403
    # disable: gone from the catalog at once, also when validating an existing token
    earlier = await cloud.token("admin", "admin")
    assert any(s["id"] == svc["id"] for s in await _catalog(cloud, earlier))
    r = await cloud.client.patch(f"{V3}/endpoints/{ep['id']}",
                                 json={"endpoint": {"enabled": False, "interface": "internal"}},
                                 headers=h)
    assert r.status_code == 200 and r.json()["endpoint"]["interface"] == "internal"
    entry = next(s for s in await _catalog(cloud, earlier) if s["id"] == svc["id"])
    assert entry["endpoints"] == []
    r = await cloud.client.get(f"{V3}/endpoints?service_id={svc['id']}&interface=internal",
                               headers=h)
    assert [e["id"] for e in r.json()["endpoints"]] == [ep["id"]]
    r = await cloud.client.get(f"{V3}/endpoints?interface=nope", headers=h)
    assert r.status_code == 400
    d = await _demo(cloud)
    assert (await cloud.client.get(f"{V3}/endpoints", headers=d)).status_code == 403
    # deleting the service deletes its endpoints
    assert (await cloud.client.delete(f"{V3}/services/{svc['id']}", headers=h)).status_code == 204
    assert (await cloud.client.get(f"{V3}/endpoints/{ep['id']}", headers=h)).status_code == 404
    assert all(s["id"] != svc["id"] for s in await _catalog(cloud, earlier))
    assert (await cloud.client.delete(f"{V3}/regions/R2", headers=h)).status_code == 204


async def test_endpoint_filter_associations_and_groups(cloud: Cloud) -> None:
    h = await _admin(cloud)
    svc = await _service(cloud, h)
    r = await cloud.client.post(f"{V3}/endpoints", json={"endpoint": {
        "service_id": svc["id"], "interface": "admin", "url": "http://w/admin",
        "region_id": "RegionOne"}}, headers=h)
    ep = r.json()["endpoint"]
    demo_id = (await cloud.client.post(f"{V3}/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "demo", "domain": {"id": "default"},
            "password": cloud.passwords["demo"]}}},
        "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}})
        ).json()["token"]["project"]["id"]
    base = f"{V3}/OS-EP-FILTER"
    url = f"{base}/projects/{demo_id}/endpoints/{ep['id']}"
    assert (await cloud.client.head(url, headers=h)).status_code == 404
    assert (await cloud.client.put(url, headers=h)).status_code == 204
    assert (await cloud.client.put(url, headers=h)).status_code == 409
    assert (await cloud.client.head(url, headers=h)).status_code == 204
    r = await cloud.client.get(f"{base}/endpoints/{ep['id']}/projects", headers=h)
    assert [p["id"] for p in r.json()["projects"]] == [demo_id]
    r = await cloud.client.get(f"{base}/projects/{demo_id}/endpoints", headers=h)
    assert [e["id"] for e in r.json()["endpoints"]] == [ep["id"]]
    r = await cloud.client.put(f"{base}/projects/nope/endpoints/{ep['id']}", headers=h)
    assert r.status_code == 404
    # endpoint groups
    group = {"name": "g1", "description": "d", "filters": {"service_id": svc["id"]}}
    for bad in ({**group, "filters": {}}, {**group, "filters": {"url": "x"}},
                {"filters": group["filters"]}, {**group, "filters": {"interface": "x"}}):
        r = await cloud.client.post(f"{base}/endpoint_groups", json={"endpoint_group": bad},
                                    headers=h)
        assert r.status_code == 400, bad
    r = await cloud.client.post(f"{base}/endpoint_groups", json={"endpoint_group": group},
                                headers=h)
    assert r.status_code == 201
    g = r.json()["endpoint_group"]
    assert g["links"]["self"].endswith(f"/v3/OS-EP-FILTER/endpoint_groups/{g['id']}")
    r = await cloud.client.get(f"{base}/endpoint_groups", headers=h)
    assert g in r.json()["endpoint_groups"]
    assert (await cloud.client.head(f"{base}/endpoint_groups/{g['id']}",
                                    headers=h)).status_code == 200
    r = await cloud.client.get(f"{base}/endpoint_groups/{g['id']}/endpoints", headers=h)
    assert [e["id"] for e in r.json()["endpoints"]] == [ep["id"]]
    gp = f"{base}/endpoint_groups/{g['id']}/projects/{demo_id}"
    assert (await cloud.client.get(gp, headers=h)).status_code == 404
    assert (await cloud.client.put(gp, headers=h)).status_code == 204
    r = await cloud.client.get(gp, headers=h)
    assert r.json()["project_endpoint_group"]["project_id"] == demo_id
    r = await cloud.client.get(f"{base}/projects/{demo_id}/endpoint_groups", headers=h)
    assert [x["id"] for x in r.json()["endpoint_groups"]] == [g["id"]]
    r = await cloud.client.get(f"{base}/endpoint_groups/{g['id']}/projects", headers=h)
    assert [p["id"] for p in r.json()["projects"]] == [demo_id]
    r = await cloud.client.patch(f"{base}/endpoint_groups/{g['id']}",
                                 json={"endpoint_group": {"name": "g2"}}, headers=h)
    assert r.json()["endpoint_group"]["name"] == "g2"
    d = await _demo(cloud)
    assert (await cloud.client.get(f"{base}/endpoint_groups", headers=d)).status_code == 403
    assert (await cloud.client.delete(gp, headers=h)).status_code == 204
    assert (await cloud.client.delete(f"{base}/endpoint_groups/{g['id']}",
                                      headers=h)).status_code == 204
    # deleting the endpoint drops its associations
    assert (await cloud.client.delete(f"{V3}/endpoints/{ep['id']}", headers=h)).status_code == 204
    r = await cloud.client.get(f"{base}/projects/{demo_id}/endpoints", headers=h)
    assert r.json()["endpoints"] == []
