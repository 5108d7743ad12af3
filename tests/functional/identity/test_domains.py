from __future__ import annotations

from typing import Any

from tests.functional.conftest import Cloud

DOMAINS = "/identity/v3/domains"


async def _admin(cloud: Cloud) -> dict[str, str]:
    return {"X-Auth-Token": await cloud.token()}


async def _create(cloud: Cloud, h: dict[str, str], **attrs: Any) -> dict[str, Any]:
    r = await cloud.client.post(DOMAINS, headers=h, json={"domain": attrs})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()["domain"]
    return body


async def _validate(cloud: Cloud, token: str) -> int:
    h = await _admin(cloud)
    r = await cloud.client.get("/identity/v3/auth/tokens",
                               headers={**h, "X-Subject-Token": token})
    return r.status_code


async def test_default_domain_listed_and_shown(cloud: Cloud) -> None:
    h = await _admin(cloud)
    r = await cloud.client.get(DOMAINS, headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["links"]["self"].endswith("/v3/domains")
    default = next(d for d in body["domains"] if d["id"] == "default")
    assert default["name"] == "Default" and default["enabled"] is True
    assert "domain_id" not in default and "parent_id" not in default
    r = await cloud.client.get(f"{DOMAINS}/default", headers=h)
    assert r.json()["domain"] == default
    assert (await cloud.client.head(f"{DOMAINS}/default", headers=h)).status_code == 200


async def test_create_update_delete(cloud: Cloud) -> None:
    h = await _admin(cloud)
    d = await _create(cloud, h, name="dom1")
    assert d["description"] == "" and d["enabled"] is True
    assert d["links"]["self"].endswith(f"/v3/domains/{d['id']}")
    assert d["tags"] == [] and d["options"] == {}
    r = await cloud.client.get(DOMAINS, headers=h)
    assert d in r.json()["domains"]  # create and list render alike

    r = await cloud.client.patch(f"{DOMAINS}/{d['id']}", headers=h, json={"domain": {
        "name": "dom1-renamed", "description": "desc", "enabled": False}})
    assert r.status_code == 200
    updated = r.json()["domain"]
    assert (updated["name"], updated["description"], updated["enabled"]) == (
        "dom1-renamed", "desc", False)
    r = await cloud.client.delete(f"{DOMAINS}/{d['id']}", headers=h)
    assert r.status_code == 204
    assert (await cloud.client.get(f"{DOMAINS}/{d['id']}", headers=h)).status_code == 404
    assert (await cloud.client.delete(f"{DOMAINS}/{d['id']}", headers=h)).status_code == 404


async def test_enabled_domain_cannot_be_deleted(cloud: Cloud) -> None:
    h = await _admin(cloud)
    d = await _create(cloud, h, name="dom-active")
    r = await cloud.client.delete(f"{DOMAINS}/{d['id']}", headers=h)
    assert r.status_code == 403
    assert "disable" in r.json()["error"]["message"]


async def test_filters(cloud: Cloud) -> None:
    h = await _admin(cloud)
    on = await _create(cloud, h, name="dom-on")
    off = await _create(cloud, h, name="dom-off", enabled=False)
    r = await cloud.client.get(DOMAINS, headers=h, params={"name": "dom-on"})
    assert [d["id"] for d in r.json()["domains"]] == [on["id"]]
    r = await cloud.client.get(DOMAINS, headers=h, params={"enabled": "false"})
    ids = [d["id"] for d in r.json()["domains"]]
    assert off["id"] in ids and on["id"] not in ids
    r = await cloud.client.get(DOMAINS, headers=h, params={"enabled": "True"})
    assert all(d["enabled"] for d in r.json()["domains"])
    r = await cloud.client.get(DOMAINS, headers=h, params={"name__startswith": "dom-o"})
    assert {d["id"] for d in r.json()["domains"]} == {on["id"], off["id"]}


async def test_bad_input_and_conflict(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    assert (await c.post(DOMAINS, headers=h, json={"domain": {"name": ""}})).status_code == 400
    r = await c.post(DOMAINS, headers=h, json={"domain": {"name": "a" * 65}})
    assert r.status_code == 400
    assert (await c.post(DOMAINS, headers=h, json={"domain": {}})).status_code == 400
    r = await c.post(DOMAINS, headers=h, json={"domain": {"name": "x", "enabled": "maybe"}})
    assert r.status_code == 400
    await _create(cloud, h, name="dup")
    r = await c.post(DOMAINS, headers=h, json={"domain": {"name": "dup"}})
    assert r.status_code == 409 and r.json()["error"]["code"] == 409
    r = await c.patch(f"{DOMAINS}/default", headers=h, json={"domain": {"name": "dup"}})
    assert r.status_code == 409


async def test_explicit_domain_id(cloud: Cloud) -> None:
    h = await _admin(cloud)
    d = await _create(cloud, h, name="explicit", explicit_domain_id="0" * 32)
    assert d["id"] == "0" * 32
    r = await cloud.client.post(DOMAINS, headers=h, json={"domain": {
        "name": "bad-id", "explicit_domain_id": "not-a-uuid"}})
    assert r.status_code == 400


async def test_immutable_domain(cloud: Cloud) -> None:
    h = await _admin(cloud)
    d = await _create(cloud, h, name="frozen", options={"immutable": True})
    url = f"{DOMAINS}/{d['id']}"
    r = await cloud.client.patch(url, headers=h, json={"domain": {"description": "x"}})
    assert r.status_code == 403
    r = await cloud.client.patch(url, headers=h, json={"domain": {
        "options": {"immutable": False}, "enabled": False}})
    assert r.status_code == 403  # first make it mutable, then change the rest
    r = await cloud.client.patch(url, headers=h, json={"domain": {
        "options": {"immutable": False}}})
    assert r.status_code == 200 and r.json()["domain"]["options"] == {"immutable": False}
    r = await cloud.client.patch(url, headers=h, json={"domain": {"enabled": False}})
    assert r.status_code == 200
    assert (await cloud.client.delete(url, headers=h)).status_code == 204


async def test_delete_removes_contents(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    d = await _create(cloud, h, name="doomed")
    p = (await c.post("/identity/v3/projects", headers=h, json={"project": {
        "name": "p", "domain_id": d["id"]}})).json()["project"]
    child = (await c.post("/identity/v3/projects", headers=h, json={"project": {
        "name": "child", "parent_id": p["id"], "domain_id": d["id"]}})).json()["project"]
    u = (await c.post("/identity/v3/users", headers=h, json={"user": {
        "name": "u", "domain_id": d["id"]}})).json()["user"]
    g = (await c.post("/identity/v3/groups", headers=h, json={"group": {
        "name": "g", "domain_id": d["id"]}})).json()["group"]
    assert (await c.put(f"/identity/v3/groups/{g['id']}/users/{u['id']}",
                        headers=h)).status_code == 204
    await c.patch(f"{DOMAINS}/{d['id']}", headers=h, json={"domain": {"enabled": False}})
    assert (await c.delete(f"{DOMAINS}/{d['id']}", headers=h)).status_code == 204
    for url in (f"/identity/v3/projects/{p['id']}", f"/identity/v3/projects/{child['id']}",
                f"/identity/v3/users/{u['id']}", f"/identity/v3/groups/{g['id']}"):
        assert (await c.get(url, headers=h)).status_code == 404, url


async def test_disabling_domain_revokes_its_tokens(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    d = await _create(cloud, h, name="revoked-dom")
    r = await c.post("/identity/v3/users", headers=h, json={"user": {
        "name": "dom-user", "domain_id": d["id"], "password": "secret-pass-1"}})
    assert r.status_code == 201
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "dom-user", "domain": {"id": d["id"]}, "password": "secret-pass-1"}}}}}
    r = await c.post("/identity/v3/auth/tokens", json=body)
    assert r.status_code == 201
    token = r.headers["X-Subject-Token"]
    assert await _validate(cloud, token) == 200
    await c.patch(f"{DOMAINS}/{d['id']}", headers=h, json={"domain": {"enabled": False}})
    assert await _validate(cloud, token) == 404
    await c.patch(f"{DOMAINS}/{d['id']}", headers=h, json={"domain": {"enabled": True}})
    assert await _validate(cloud, token) == 404  # revoked for good, not just while disabled
    assert (await c.post("/identity/v3/auth/tokens", json=body)).status_code == 201


async def test_member_is_refused_changes_but_sees_own_domain(cloud: Cloud) -> None:
    h = await _admin(cloud)
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    c = cloud.client
    assert (await c.get(f"{DOMAINS}/default", headers=demo)).status_code == 200
    assert (await c.get(DOMAINS, headers=demo)).status_code == 403
    assert (await c.post(DOMAINS, headers=demo, json={"domain": {"name": "x"}})).status_code \
        == 403
    assert (await c.patch(f"{DOMAINS}/default", headers=demo, json={"domain": {
        "description": "x"}})).status_code == 403
    assert (await c.delete(f"{DOMAINS}/default", headers=demo)).status_code == 403
    other = await _create(cloud, h, name="someone-elses")
    assert (await c.get(f"{DOMAINS}/{other['id']}", headers=demo)).status_code == 403
    assert (await c.get(DOMAINS)).status_code == 401
