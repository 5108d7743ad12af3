"""Roles, domain roles and implied-role rules over the API."""

from __future__ import annotations

from typing import Any

from stackling.common.ids import new_id
from stackling.identity.models import ROOT_DOMAIN, Project
from tests.functional.conftest import Cloud

V3 = "/identity/v3"


async def _admin(cloud: Cloud) -> dict[str, str]:
    return {"X-Auth-Token": await cloud.token("admin", "admin")}


async def _demo(cloud: Cloud) -> dict[str, str]:
    return {"X-Auth-Token": await cloud.token("demo", "demo")}


async def _domain(cloud: Cloud, name: str) -> str:
    domain_id = new_id()
    async with cloud.identity.store.write() as session:
        session.add(Project(id=domain_id, name=name, domain_id=ROOT_DOMAIN, is_domain=True,
                            enabled=True, options={}, extra={}))
    return domain_id


async def _create(cloud: Cloud, h: dict[str, str], **role: Any) -> dict[str, Any]:
    r = await cloud.client.post(f"{V3}/roles", json={"role": role}, headers=h)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()["role"]
    return body


async def test_role_crud_and_shape(cloud: Cloud) -> None:
    h = await _admin(cloud)
    role = await _create(cloud, h, name="observer", description="looks", colour="blue")
    assert role["name"] == "observer" and role["domain_id"] is None
    assert role["description"] == "looks" and role["options"] == {}
    assert role["colour"] == "blue"
    assert role["links"]["self"] == f"http://testserver/identity/v3/roles/{role['id']}"
    r = await cloud.client.get(f"{V3}/roles/{role['id']}", headers=h)
    assert r.status_code == 200 and r.json()["role"] == role
    r = await cloud.client.head(f"{V3}/roles/{role['id']}", headers=h)
    assert r.status_code == 200 and r.content == b""
    listed = (await cloud.client.get(f"{V3}/roles", headers=h)).json()
    assert role in listed["roles"]
    assert {"admin", "manager", "member", "reader", "service"} <= {
        x["name"] for x in listed["roles"]}
    assert listed["links"]["self"].endswith("/v3/roles")
    r = await cloud.client.get(f"{V3}/roles?name=observer", headers=h)
    assert [x["id"] for x in r.json()["roles"]] == [role["id"]]
    r = await cloud.client.patch(f"{V3}/roles/{role['id']}",
                                 json={"role": {"name": "watcher"}}, headers=h)
    assert r.status_code == 200 and r.json()["role"]["name"] == "watcher"
    assert r.json()["role"]["description"] == "looks"
    r = await cloud.client.delete(f"{V3}/roles/{role['id']}", headers=h)
    assert r.status_code == 204
    r = await cloud.client.get(f"{V3}/roles/{role['id']}", headers=h)
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"Could not find role: {role['id']}."


async def test_duplicate_and_invalid_roles(cloud: Cloud) -> None:
    h = await _admin(cloud)
    r = await cloud.client.post(f"{V3}/roles", json={"role": {"name": "member"}}, headers=h)
    assert r.status_code == 409
    assert "Duplicate entry found with name member" in r.json()["error"]["message"]
    for bad in ({}, {"name": ""}, {"name": 5}, {"name": "x", "options": {"nope": True}}):
        r = await cloud.client.post(f"{V3}/roles", json={"role": bad}, headers=h)
        assert r.status_code == 400, bad
    r = await cloud.client.post(f"{V3}/roles", json={"nope": {}}, headers=h)
    assert r.status_code == 400
    role = await _create(cloud, h, name="other")
    r = await cloud.client.patch(f"{V3}/roles/{role['id']}",
                                 json={"role": {"name": "member"}}, headers=h)
    assert r.status_code == 409
    r = await cloud.client.patch(f"{V3}/roles/{role['id']}",
                                 json={"role": {"domain_id": "default"}}, headers=h)
    assert r.status_code == 400


async def test_domain_roles(cloud: Cloud) -> None:
    h = await _admin(cloud)
    dom = await _domain(cloud, "d1")
    role = await _create(cloud, h, name="member", domain_id=dom)  # same name, other domain
    assert role["domain_id"] == dom
    r = await cloud.client.get(f"{V3}/roles?domain_id={dom}", headers=h)
    assert r.json()["roles"] == [role]
    r = await cloud.client.get(f"{V3}/roles", headers=h)
    assert role["id"] not in {x["id"] for x in r.json()["roles"]}
    r = await cloud.client.post(f"{V3}/roles", json={"role": {"name": "member",
                                                              "domain_id": dom}}, headers=h)
    assert r.status_code == 409
    assert r.json()["error"]["message"].endswith(f"at domain ID {dom}.")
    r = await cloud.client.post(f"{V3}/roles", json={"role": {"name": "x",
                                                              "domain_id": "nodomain"}},
                                headers=h)
    assert r.status_code == 404
    assert (await cloud.client.delete(f"{V3}/roles/{role['id']}", headers=h)).status_code == 204
    r = await cloud.client.get(f"{V3}/roles?domain_id={dom}", headers=h)
    assert r.json()["roles"] == []


async def test_immutable_role(cloud: Cloud) -> None:
    h = await _admin(cloud)
    role = await _create(cloud, h, name="fixed", options={"immutable": True})
    assert role["options"] == {"immutable": True}
    url = f"{V3}/roles/{role['id']}"
    r = await cloud.client.patch(url, json={"role": {"name": "y"}}, headers=h)
    assert r.status_code == 403
    assert (await cloud.client.delete(url, headers=h)).status_code == 403
    r = await cloud.client.patch(url, json={"role": {"options": {"immutable": False}}},
                                 headers=h)
    assert r.status_code == 200 and r.json()["role"]["options"] == {"immutable": False}
    assert (await cloud.client.delete(url, headers=h)).status_code == 204


async def test_demo_cannot_manage_roles(cloud: Cloud) -> None:
    h = await _demo(cloud)
    assert (await cloud.client.get(f"{V3}/roles", headers=h)).status_code == 403
    r = await cloud.client.post(f"{V3}/roles", json={"role": {"name": "x"}}, headers=h)
    assert r.status_code == 403
    # refused before the lookup: no hint whether the role exists
    assert (await cloud.client.get(f"{V3}/roles/nope", headers=h)).status_code == 403
    assert (await cloud.client.delete(f"{V3}/roles/nope", headers=h)).status_code == 403
    assert (await cloud.client.get(f"{V3}/roles")).status_code == 401
    assert (await cloud.client.get(f"{V3}/role_inferences", headers=h)).status_code == 403


async def test_implied_roles(cloud: Cloud) -> None:
    h = await _admin(cloud)
    a, b, c = [await _create(cloud, h, name=n) for n in ("ra", "rb", "rc")]
    url = f"{V3}/roles/{a['id']}/implies/{b['id']}"
    r = await cloud.client.put(url, headers=h)
    assert r.status_code == 201
    body = r.json()
    assert body["role_inference"]["prior_role"] == {
        "id": a["id"], "name": "ra", "links": {"self": a["links"]["self"]}}
    assert body["role_inference"]["implies"]["id"] == b["id"]
    assert body["links"]["self"].endswith(f"/v3/roles/{a['id']}/implies/{b['id']}")
    assert (await cloud.client.put(url, headers=h)).status_code == 409
    assert (await cloud.client.head(url, headers=h)).status_code == 204
    assert (await cloud.client.get(url, headers=h)).json() == body
    await cloud.client.put(f"{V3}/roles/{a['id']}/implies/{c['id']}", headers=h)
    r = await cloud.client.get(f"{V3}/roles/{a['id']}/implies", headers=h)
    assert {x["id"] for x in r.json()["role_inference"]["implies"]} == {b["id"], c["id"]}
    r = await cloud.client.get(f"{V3}/role_inferences", headers=h)
    rules = {x["prior_role"]["name"]: {i["name"] for i in x["implies"]}
             for x in r.json()["role_inferences"]}
    assert rules["ra"] == {"rb", "rc"}
    assert rules["admin"] == {"manager"} and rules["member"] == {"reader"}
    assert (await cloud.client.delete(url, headers=h)).status_code == 204
    r = await cloud.client.get(url, headers=h)
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"{a['id']} does not imply {b['id']}."
    assert (await cloud.client.delete(url, headers=h)).status_code == 404
    r = await cloud.client.put(f"{V3}/roles/{a['id']}/implies/nope", headers=h)
    assert r.status_code == 404
    assert r.json()["error"]["message"] == "Could not find role: nope."


async def test_implied_role_restrictions(cloud: Cloud) -> None:
    h = await _admin(cloud)
    roles = (await cloud.client.get(f"{V3}/roles", headers=h)).json()["roles"]
    admin = next(x for x in roles if x["name"] == "admin")
    glob = await _create(cloud, h, name="g")
    r = await cloud.client.put(f"{V3}/roles/{glob['id']}/implies/{admin['id']}", headers=h)
    assert r.status_code == 403
    dom = await _domain(cloud, "d2")
    d1 = await _create(cloud, h, name="d1", domain_id=dom)
    d2 = await _create(cloud, h, name="d2", domain_id=dom)
    r = await cloud.client.put(f"{V3}/roles/{glob['id']}/implies/{d1['id']}", headers=h)
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "Global role cannot imply a domain-specific role"
    for prior, implied in ((d1, d2), (d1, glob)):
        r = await cloud.client.put(f"{V3}/roles/{prior['id']}/implies/{implied['id']}",
                                   headers=h)
        assert r.status_code == 201
    # deleting a role drops the rules that name it
    assert (await cloud.client.delete(f"{V3}/roles/{d2['id']}", headers=h)).status_code == 204
    r = await cloud.client.get(f"{V3}/roles/{d1['id']}/implies", headers=h)
    assert [x["id"] for x in r.json()["role_inference"]["implies"]] == [glob["id"]]
