from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from stackling.common.timeutils import utcnow
from stackling.identity.models import ApplicationCredential
from tests.functional.conftest import Cloud

TOKENS = "/identity/v3/auth/tokens"


async def _whoami(cloud: Cloud, token: str) -> dict[str, Any]:
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["token"]
    return body


def _path(user_id: str, suffix: str = "") -> str:
    return f"/identity/v3/users/{user_id}/application_credentials{suffix}"


async def _create(cloud: Cloud, token: str, user_id: str, **spec: Any) -> Any:
    return await cloud.client.post(_path(user_id), headers={"X-Auth-Token": token},
                                   json={"application_credential": spec})


async def _login(cloud: Cloud, cred: dict[str, Any]) -> Any:
    return await cloud.client.post(TOKENS, json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": cred}}})


async def _demo(cloud: Cloud) -> tuple[str, dict[str, Any]]:
    token = await cloud.token("demo", "demo")
    return token, await _whoami(cloud, token)


async def test_create_authenticate_and_secret_shown_once(cloud: Cloud) -> None:
    token, me = await _demo(cloud)
    uid = me["user"]["id"]
    r = await _create(cloud, token, uid, name="ci", description="for CI")
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    assert cred["project_id"] == me["project"]["id"]
    assert cred["unrestricted"] is False and cred["expires_at"] is None
    assert {x["name"] for x in cred["roles"]} == {x["name"] for x in me["roles"]}
    assert len(cred["secret"]) >= 64
    assert cred["links"]["self"].endswith(f"/v3/users/{uid}/application_credentials/"
                                          f"{cred['id']}")
    shown = (await cloud.client.get(_path(uid, f"/{cred['id']}"),
                                    headers={"X-Auth-Token": token})).json()
    assert "secret" not in shown["application_credential"]
    assert shown["application_credential"]["description"] == "for CI"
    # the secret is stored hashed, never in clear
    async with cloud.identity.store.read() as session:
        row = await session.get(ApplicationCredential, cred["id"])
        assert row is not None and cred["secret"] not in row.secret_hash
        assert row.secret_hash.startswith("$2")

    r = await _login(cloud, {"id": cred["id"], "secret": cred["secret"]})
    assert r.status_code == 201, r.text
    body = r.json()["token"]
    assert body["methods"] == ["application_credential"]
    assert body["project"]["id"] == me["project"]["id"]
    assert body["application_credential"] == {"id": cred["id"], "name": "ci",
                                              "restricted": True}
    # by name + user works too, a wrong secret does not
    r = await _login(cloud, {"name": "ci", "secret": cred["secret"],
                             "user": {"name": "demo", "domain": {"id": "default"}}})
    assert r.status_code == 201
    r = await _login(cloud, {"id": cred["id"], "secret": "nope"})
    assert r.status_code == 401 and "nope" not in r.text


async def test_roles_subset_and_implied(cloud: Cloud) -> None:
    token, me = await _demo(cloud)
    uid = me["user"]["id"]
    r = await _create(cloud, token, uid, name="ro", roles=[{"name": "reader"}])
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    assert [x["name"] for x in cred["roles"]] == ["reader"]
    login = await _login(cloud, {"id": cred["id"], "secret": cred["secret"]})
    assert [x["name"] for x in login.json()["token"]["roles"]] == ["reader"]

    # asking for member brings what member implies (reader)
    r = await _create(cloud, token, uid, name="rw", roles=[{"name": "member"}])
    assert sorted(x["name"] for x in r.json()["application_credential"]["roles"]) == [
        "member", "reader"]

    # a role the user does not hold: 400 as Keystone
    r = await _create(cloud, token, uid, name="escalate", roles=[{"name": "admin"}])
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("Invalid application credential")
    r = await _create(cloud, token, uid, name="x", roles=[{"name": "no-such-role"}])
    assert r.status_code == 404


async def test_expiry(cloud: Cloud) -> None:
    token, me = await _demo(cloud)
    uid = me["user"]["id"]
    past = (utcnow() - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    r = await _create(cloud, token, uid, name="old", expires_at=past)
    assert r.status_code == 400
    r = await _create(cloud, token, uid, name="bad-date", expires_at="tomorrow")
    assert r.status_code == 400
    soon = (utcnow() + timedelta(hours=1)).replace(tzinfo=None)
    r = await _create(cloud, token, uid, name="soon", expires_at=soon.isoformat())
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    assert cred["expires_at"] == soon.isoformat()  # echoed as sent (tempest compares)
    login = await _login(cloud, {"id": cred["id"], "secret": cred["secret"]})
    assert login.status_code == 201
    app_token = login.headers["X-Subject-Token"]
    async with cloud.identity.store.write() as session:
        await session.execute(update(ApplicationCredential).where(
            ApplicationCredential.id == cred["id"]).values(
            expires_at=utcnow() - timedelta(seconds=1)))
    assert (await _login(cloud, {"id": cred["id"], "secret": cred["secret"]})
            ).status_code == 401
    admin = await cloud.token()
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": admin,
                                                "X-Subject-Token": app_token})
    assert r.status_code == 404


async def test_delete_revokes_tokens(cloud: Cloud) -> None:
    token, me = await _demo(cloud)
    uid = me["user"]["id"]
    cred = (await _create(cloud, token, uid, name="gone")).json()["application_credential"]
    app_token = (await _login(cloud, {"id": cred["id"], "secret": cred["secret"]})
                 ).headers["X-Subject-Token"]
    admin = await cloud.token()
    headers = {"X-Auth-Token": admin, "X-Subject-Token": app_token}
    assert (await cloud.client.get(TOKENS, headers=headers)).status_code == 200
    r = await cloud.client.delete(_path(uid, f"/{cred['id']}"),
                                  headers={"X-Auth-Token": token})
    assert r.status_code == 204
    assert (await cloud.client.get(TOKENS, headers=headers)).status_code == 404
    assert (await _login(cloud, {"id": cred["id"], "secret": cred["secret"]})
            ).status_code == 401
    r = await cloud.client.get(_path(uid, f"/{cred['id']}"), headers={"X-Auth-Token": token})
    assert r.status_code == 404
    events = await cloud.client.get("/identity/v3/OS-REVOKE/events",
                                    headers={"X-Auth-Token": admin})
    assert events.status_code == 200
    assert any(e.get("application_credential_id") == cred["id"]
               for e in events.json()["events"])
    assert (await cloud.client.get("/identity/v3/OS-REVOKE/events",
                                   headers={"X-Auth-Token": token})).status_code == 403


async def test_restricted_cannot_manage(cloud: Cloud) -> None:
    token, me = await _demo(cloud)
    uid = me["user"]["id"]
    restricted = (await _create(cloud, token, uid, name="r")).json()["application_credential"]
    free = (await _create(cloud, token, uid, name="u", unrestricted=True)
            ).json()["application_credential"]
    assert free["unrestricted"] is True
    r_token = (await _login(cloud, {"id": restricted["id"], "secret": restricted["secret"]})
               ).headers["X-Subject-Token"]
    u_token = (await _login(cloud, {"id": free["id"], "secret": free["secret"]})
               ).headers["X-Subject-Token"]
    r = await _create(cloud, r_token, uid, name="child")
    assert r.status_code == 403
    r = await cloud.client.delete(_path(uid, f"/{free['id']}"),
                                  headers={"X-Auth-Token": r_token})
    assert r.status_code == 403
    # listing is allowed, and an unrestricted one may create more
    assert (await cloud.client.get(_path(uid), headers={"X-Auth-Token": r_token})
            ).status_code == 200
    assert (await _create(cloud, u_token, uid, name="child")).status_code == 201


async def test_ownership_and_listing(cloud: Cloud) -> None:
    token, me = await _demo(cloud)
    uid = me["user"]["id"]
    admin = await cloud.token()
    admin_id = (await _whoami(cloud, admin))["user"]["id"]
    mine = (await _create(cloud, admin, admin_id, name="admin-cred")
            ).json()["application_credential"]
    await _create(cloud, token, uid, name="one")
    await _create(cloud, token, uid, name="two")
    assert (await _create(cloud, token, uid, name="two")).status_code == 409
    # nobody creates for someone else, not even admin (Keystone: rule:owner)
    assert (await _create(cloud, token, admin_id, name="x")).status_code == 403
    assert (await _create(cloud, admin, uid, name="x")).status_code == 403
    demo_h = {"X-Auth-Token": token}
    assert (await cloud.client.get(_path(admin_id), headers=demo_h)).status_code == 403
    # another user's credential through one's own path: still 403 (owner taken from it)
    r = await cloud.client.get(_path(uid, f"/{mine['id']}"), headers=demo_h)
    assert r.status_code == 403
    r = await cloud.client.delete(_path(uid, f"/{mine['id']}"), headers=demo_h)
    assert r.status_code == 403
    assert (await cloud.client.get(_path(uid, "/nope"), headers=demo_h)).status_code == 404
    listed = (await cloud.client.get(_path(uid), headers=demo_h)).json()
    assert sorted(c["name"] for c in listed["application_credentials"]) == ["one", "two"]
    assert "secret" not in listed["application_credentials"][0]
    r = await cloud.client.head(_path(uid), headers=demo_h)
    assert r.status_code == 200 and r.content == b""
    r = await cloud.client.get(_path(uid) + "?name=two", headers=demo_h)
    assert [c["name"] for c in r.json()["application_credentials"]] == ["two"]
    # admin sees and deletes demo's
    r = await cloud.client.get(_path(uid), headers={"X-Auth-Token": admin})
    assert len(r.json()["application_credentials"]) == 2
    victim = r.json()["application_credentials"][0]["id"]
    r = await cloud.client.delete(_path(uid, f"/{victim}"), headers={"X-Auth-Token": admin})
    assert r.status_code == 204


async def test_bad_bodies(cloud: Cloud) -> None:
    token, me = await _demo(cloud)
    uid = me["user"]["id"]
    h = {"X-Auth-Token": token}
    for body in ({}, {"application_credential": {}},
                 {"application_credential": {"name": "x", "bogus": 1}},
                 {"application_credential": {"name": "x", "roles": [{"id": "a", "name": "b"}]}},
                 {"application_credential": {"name": "x", "unrestricted": "yes"}},
                 {"application_credential": {"name": "x", "access_rules": [
                     {"service": "compute", "path": "/x", "method": "FETCH"}]}}):
        r = await cloud.client.post(_path(uid), headers=h, json=body)
        assert r.status_code == 400, (body, r.text)
    assert (await cloud.client.post(_path(uid), json={"application_credential": {
        "name": "x"}})).status_code == 401


async def test_access_rules(cloud: Cloud) -> None:
    token, me = await _demo(cloud)
    uid = me["user"]["id"]
    h = {"X-Auth-Token": token}
    rule = {"service": "compute", "path": "/v2.1/servers/*/ips", "method": "GET"}
    first = (await _create(cloud, token, uid, name="a", access_rules=[rule])
             ).json()["application_credential"]
    rule_id = first["access_rules"][0]["id"]
    assert {k: v for k, v in first["access_rules"][0].items() if k != "id"} == rule
    # the same rule again is the same rule
    second = (await _create(cloud, token, uid, name="b", access_rules=[rule])
              ).json()["application_credential"]
    assert second["access_rules"][0]["id"] == rule_id
    base = f"/identity/v3/users/{uid}/access_rules"
    listed = (await cloud.client.get(base, headers=h)).json()["access_rules"]
    assert [r["id"] for r in listed] == [rule_id]
    assert (await cloud.client.get(f"{base}/{rule_id}", headers=h)).json()[
        "access_rule"]["service"] == "compute"
    assert (await cloud.client.get(f"{base}?service=image", headers=h)).json()[
        "access_rules"] == []
    assert (await cloud.client.delete(f"{base}/{rule_id}", headers=h)).status_code == 403
    for cred in (first, second):
        await cloud.client.delete(_path(uid, f"/{cred['id']}"), headers=h)
    # the rule outlives its credentials until deleted
    assert len((await cloud.client.get(base, headers=h)).json()["access_rules"]) == 1
    assert (await cloud.client.delete(f"{base}/{rule_id}", headers=h)).status_code == 204
    assert (await cloud.client.get(f"{base}/{rule_id}", headers=h)).status_code == 404
    admin = await cloud.token()
    admin_id = (await _whoami(cloud, admin))["user"]["id"]
    assert (await cloud.client.get(f"/identity/v3/users/{admin_id}/access_rules",
                                   headers=h)).status_code == 403
