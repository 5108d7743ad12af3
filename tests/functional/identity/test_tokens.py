from __future__ import annotations

import asyncio

from tests.functional.conftest import Cloud

TOKENS = "/identity/v3/auth/tokens"


async def test_version_discovery_uses_client_url(cloud: Cloud) -> None:
    r = await cloud.client.get("/identity/", headers={"X-Forwarded-Host": "cloud.example:5000",
                                                      "X-Forwarded-Proto": "https"})
    assert r.status_code == 300
    value = r.json()["versions"]["values"][0]
    assert value["id"].startswith("v3.")
    assert value["links"][0]["href"] == "https://cloud.example:5000/identity/v3/"
    r = await cloud.client.get("/identity/v3")
    assert r.json()["version"]["links"][0]["href"] == "http://testserver/identity/v3/"


async def test_password_token_has_catalog_and_roles(cloud: Cloud) -> None:
    token = await cloud.token()
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": token,
                                                "X-Subject-Token": token})
    assert r.status_code == 200
    assert r.headers["X-Subject-Token"] == token
    assert r.headers["X-Openstack-Request-Id"].startswith("req-")
    body = r.json()["token"]
    assert body["project"]["name"] == "admin"
    assert body["user"]["domain"] == {"id": "default", "name": "Default"}
    assert {r["name"] for r in body["roles"]} >= {"admin", "member", "reader"}
    identity = next(s for s in body["catalog"] if s["type"] == "identity")
    ep = identity["endpoints"][0]
    assert {"id", "interface", "region_id", "region", "url"} <= set(ep)
    assert body["methods"] == ["password"]


async def test_nocatalog_and_head(cloud: Cloud) -> None:
    token = await cloud.token()
    r = await cloud.client.get(TOKENS + "?nocatalog", headers={"X-Auth-Token": token,
                                                               "X-Subject-Token": token})
    assert "catalog" not in r.json()["token"]
    r = await cloud.client.head(TOKENS, headers={"X-Auth-Token": token,
                                                 "X-Subject-Token": token})
    assert r.status_code == 200


async def test_wrong_password_is_401_without_secret(cloud: Cloud) -> None:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": "hunter2-wrong"}}}}}
    r = await cloud.client.post(TOKENS, json=body)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == 401
    assert "hunter2" not in r.text


async def test_unknown_user_is_401(cloud: Cloud) -> None:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "nobody", "domain": {"id": "default"}, "password": "x"}}}}}
    assert (await cloud.client.post(TOKENS, json=body)).status_code == 401


async def test_bad_input(cloud: Cloud) -> None:
    c = cloud.client
    r = await c.post(TOKENS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == 400
    r = await c.post(TOKENS, json={"auth": {}})
    assert r.status_code == 400
    r = await c.post(TOKENS, json={"auth": {"identity": {"methods": ["kerberos-magic"],
                                                         "kerberos-magic": {}}}})
    assert r.status_code == 401
    r = await c.post(TOKENS, json={"auth": {"identity": {"methods": "password"}}})
    assert r.status_code == 400
    r = await c.post(TOKENS, json={"auth": {"identity": {"methods": ["password"],
                                                         "password": {"user": "admin"}}}})
    assert r.status_code == 400
    r = await c.post(TOKENS, content=b"x" * (2 * 1024 * 1024),
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == 413


async def test_tampered_and_missing_tokens(cloud: Cloud) -> None:
    token = await cloud.token()
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": token,
                                                "X-Subject-Token": tampered})
    assert r.status_code == 404
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": tampered,
                                                "X-Subject-Token": token})
    assert r.status_code == 401
    r = await cloud.client.get(TOKENS, headers={"X-Subject-Token": token})
    assert r.status_code == 401


async def test_revoke_token(cloud: Cloud) -> None:
    admin = await cloud.token()
    victim = await cloud.token()
    r = await cloud.client.delete(TOKENS, headers={"X-Auth-Token": admin,
                                                   "X-Subject-Token": victim})
    assert r.status_code == 204
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": admin,
                                                "X-Subject-Token": victim})
    assert r.status_code == 404
    # a token issued after the revocation is fine
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": admin,
                                                "X-Subject-Token": admin})
    assert r.status_code == 200


async def test_rescope_with_token_method(cloud: Cloud) -> None:
    unscoped = await cloud.token(project=None, scope="unscoped")
    r = await cloud.client.post(TOKENS, json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
    assert r.status_code == 201, r.text
    body = r.json()["token"]
    assert body["project"]["name"] == "admin"
    assert "token" in body["methods"] and "password" in body["methods"]
    assert len(body["audit_ids"]) == 2


async def test_demo_cannot_validate_others_tokens(cloud: Cloud) -> None:
    admin = await cloud.token()
    demo = await cloud.token("demo", "demo")
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": demo,
                                                "X-Subject-Token": admin})
    assert r.status_code == 403
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": demo,
                                                "X-Subject-Token": demo})
    assert r.status_code == 200


async def test_demo_has_no_access_to_admin_project(cloud: Cloud) -> None:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"id": "default"}, "password": cloud.passwords["demo"]}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    assert (await cloud.client.post(TOKENS, json=body)).status_code == 401


async def test_lockout(cloud: Cloud) -> None:
    bad = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"id": "default"}, "password": "wrong"}}}}}
    for _ in range(cloud.config.identity.lockout_failure_attempts or 0):
        assert (await cloud.client.post(TOKENS, json=bad)).status_code == 401
    good = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"id": "default"}, "password": cloud.passwords["demo"]}}}}}
    r = await cloud.client.post(TOKENS, json=good)
    # Keystone hides why (AccountLocked becomes a bare Unauthorized)
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "The request you have made requires authentication."


async def test_concurrent_issue(cloud: Cloud) -> None:
    tokens = await asyncio.gather(*(cloud.token() for _ in range(10)))
    assert len(set(tokens)) == 10


async def test_auth_projects_and_catalog(cloud: Cloud) -> None:
    demo = await cloud.token("demo", "demo")
    r = await cloud.client.get("/identity/v3/auth/projects", headers={"X-Auth-Token": demo})
    assert [p["name"] for p in r.json()["projects"]] == ["demo"]
    r = await cloud.client.get("/identity/v3/auth/catalog", headers={"X-Auth-Token": demo})
    assert any(s["type"] == "identity" for s in r.json()["catalog"])
    r = await cloud.client.get("/identity/v3/auth/system", headers={"X-Auth-Token": demo})
    assert r.json()["system"] == []


async def test_unscoped_token_has_no_catalog(cloud: Cloud) -> None:
    token = await cloud.token(project=None, scope="unscoped")
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": token,
                                                "X-Subject-Token": token})
    assert r.status_code == 200
    body = r.json()["token"]
    assert "catalog" not in body and "project" not in body and "roles" not in body


async def test_endpoint_filter_narrows_project_catalog(cloud: Cloud) -> None:
    admin = await cloud.token()
    h = {"X-Auth-Token": admin}
    c = cloud.client
    svc = (await c.post("/identity/v3/services", headers=h, json={
        "service": {"type": "widget", "name": "widgets"}})).json()["service"]
    ep = (await c.post("/identity/v3/endpoints", headers=h, json={"endpoint": {
        "service_id": svc["id"], "interface": "public", "region_id": "RegionOne",
        "url": "http://widgets.example/v1"}})).json()["endpoint"]
    demo_id = (await c.get("/identity/v3/projects?name=demo", headers=h)).json()[
        "projects"][0]["id"]
    before = {s["type"] for s in (await c.get(
        TOKENS, headers={**h, "X-Subject-Token": await cloud.token("demo", "demo")}
    )).json()["token"]["catalog"]}
    assert {"identity", "widget"} <= before
    r = await c.put(f"/identity/v3/OS-EP-FILTER/projects/{demo_id}/endpoints/{ep['id']}",
                    headers=h)
    assert r.status_code == 204
    after = (await c.get(TOKENS, headers={
        **h, "X-Subject-Token": await cloud.token("demo", "demo")})).json()["token"]["catalog"]
    assert [s["type"] for s in after] == ["widget"]
    assert [e["id"] for e in after[0]["endpoints"]] == [ep["id"]]
    # other projects keep the whole catalog
    mine = (await c.get(TOKENS, headers={**h, "X-Subject-Token": admin})).json()
    assert "identity" in {s["type"] for s in mine["token"]["catalog"]}


async def test_bootstrap_roles_are_immutable(cloud: Cloud) -> None:
    admin = await cloud.token()
    h = {"X-Auth-Token": admin}
    roles = (await cloud.client.get("/identity/v3/roles?name=member", headers=h)).json()
    member = roles["roles"][0]
    assert member["options"] == {"immutable": True}
    r = await cloud.client.delete(f"/identity/v3/roles/{member['id']}", headers=h)
    assert r.status_code == 403


async def test_rescope_with_revoked_token_is_404(cloud: Cloud) -> None:
    admin = await cloud.token()
    victim = await cloud.token()
    await cloud.client.delete(TOKENS, headers={"X-Auth-Token": admin, "X-Subject-Token": victim})
    r = await cloud.client.post(TOKENS, json={"auth": {"identity": {
        "methods": ["token"], "token": {"id": victim}}}})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == 404


async def test_fast_path_and_routed_handler_agree(cloud: Cloud) -> None:
    """GET with a plain query is answered by the cache fast path; any other query goes
    through the routed handler: both must give the same answer."""
    admin = await cloud.token()
    demo = await cloud.token("demo", "demo")
    h = {"X-Auth-Token": admin, "X-Subject-Token": demo}
    fast = await cloud.client.get(TOKENS, headers=h)
    routed = await cloud.client.get(TOKENS + "?routed=1", headers=h)
    assert fast.status_code == routed.status_code == 200
    assert fast.json() == routed.json()
    assert fast.headers["X-Subject-Token"] == routed.headers["X-Subject-Token"] == demo
    assert fast.headers["X-Openstack-Request-Id"] != routed.headers["X-Openstack-Request-Id"]
    fast = await cloud.client.get(TOKENS + "?nocatalog", headers=h)
    routed = await cloud.client.get(TOKENS + "?nocatalog&routed=1", headers=h)
    assert fast.json() == routed.json() and "catalog" not in fast.json()["token"]
    # refusals are the routed handler's: demo may not look at admin's token
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": demo, "X-Subject-Token": admin})
    assert r.status_code == 403 and r.json()["error"]["code"] == 403


async def test_rotating_out_a_key_voids_its_tokens(cloud: Cloud) -> None:
    old = await cloud.token()
    keys = cloud.identity.keys
    keys.rotate()  # old primary becomes a secondary: still valid
    new = await cloud.token()
    h = {"X-Auth-Token": new, "X-Subject-Token": old}
    assert (await cloud.client.get(TOKENS, headers=h)).status_code == 200
    keys.rotate()  # max_active_keys=3: the key that made `old` is gone
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": await cloud.token(),
                                                "X-Subject-Token": old})
    assert r.status_code == 404


async def test_rescope_fast_lane_agrees_with_routed_handler(cloud: Cloud) -> None:
    unscoped = await cloud.token(project=None, scope="unscoped")
    body = {"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                     "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    fast = await cloud.client.post(TOKENS, json=body)
    routed = await cloud.client.post(TOKENS + "?routed=1", json=body)
    assert fast.status_code == routed.status_code == 201
    a, b = fast.json()["token"], routed.json()["token"]
    for key in ("expires_at", "issued_at", "audit_ids"):
        a.pop(key), b.pop(key)
    assert a == b
    # failures take the routed way, with its error bodies
    body["auth"]["scope"]["project"]["name"] = "no-such-project"
    r = await cloud.client.post(TOKENS, json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == 401
    r = await cloud.client.post(TOKENS, content=b'{"auth": ', headers={
        "Content-Type": "application/json"})
    assert r.status_code == 400
