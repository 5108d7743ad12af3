"""OS-TRUST: trusts and trust-scoped tokens, checked against what real Keystone answers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from stackling.common.timeutils import isotime, utcnow
from stackling.identity.models import Trust
from tests.functional.conftest import Cloud

V3 = "/identity/v3"
TOKENS = f"{V3}/auth/tokens"
TRUSTS = f"{V3}/OS-TRUST/trusts"


@dataclass
class Party:
    id: str
    password: str

    async def token(self, cloud: Cloud, scope: Any = None, project_id: str | None = None
                    ) -> str:
        body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"id": self.id, "password": self.password}}}}}
        if scope is not None:
            body["auth"]["scope"] = scope
        elif project_id is not None:
            body["auth"]["scope"] = {"project": {"id": project_id}}
        r = await cloud.client.post(TOKENS, json=body)
        assert r.status_code == 201, r.text
        return str(r.headers["X-Subject-Token"])


@dataclass
class World:
    admin: dict[str, str]
    project_id: str
    trustor: Party
    trustee: Party
    other: Party
    delegated: dict[str, Any]   # held by the trustor; implies `implied`
    implied: dict[str, Any]
    kept: dict[str, Any]        # held by the trustor, never delegated
    foreign: dict[str, Any]     # not held by the trustor
    trustor_token: str


def _h(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


async def _post(cloud: Cloud, token: str, path: str, body: dict[str, Any]) -> Any:
    r = await cloud.client.post(path, headers=_h(token), json=body)
    assert r.status_code == 201, r.text
    return next(iter(r.json().values()))


@pytest.fixture
async def world(cloud: Cloud) -> World:
    admin = _h(await cloud.token("admin", "admin"))
    tok = admin["X-Auth-Token"]
    project = await _post(cloud, tok, f"{V3}/projects",
                          {"project": {"name": "trusted", "domain_id": "default"}})
    users = {}
    for name in ("trustor", "trustee", "other"):
        user = await _post(cloud, tok, f"{V3}/users", {"user": {
            "name": name, "password": f"{name}-pw", "domain_id": "default"}})
        users[name] = Party(user["id"], f"{name}-pw")
    roles = {}
    for name in ("delegated", "implied", "kept", "foreign"):
        roles[name] = await _post(cloud, tok, f"{V3}/roles", {"role": {"name": f"t-{name}"}})
    r = await cloud.client.put(
        f"{V3}/roles/{roles['delegated']['id']}/implies/{roles['implied']['id']}", headers=admin)
    assert r.status_code == 201, r.text
    for name in ("delegated", "kept"):
        r = await cloud.client.put(f"{V3}/projects/{project['id']}/users/"
                                   f"{users['trustor'].id}/roles/{roles[name]['id']}",
                                   headers=admin)
        assert r.status_code == 204, r.text
    trustor_token = await users["trustor"].token(cloud, project_id=project["id"])
    return World(admin, project["id"], users["trustor"], users["trustee"], users["other"],
                 roles["delegated"], roles["implied"], roles["kept"], roles["foreign"],
                 trustor_token)


async def _create(cloud: Cloud, w: World, token: str | None = None, **spec: Any) -> Any:
    body = {"trustor_user_id": w.trustor.id, "trustee_user_id": w.trustee.id,
            "project_id": w.project_id, "impersonation": False,
            "roles": [{"name": w.delegated["name"]}]}
    body.update(spec)
    return await cloud.client.post(TRUSTS, headers=_h(token or w.trustor_token),
                                   json={"trust": body})


async def _trust(cloud: Cloud, w: World, **spec: Any) -> dict[str, Any]:
    r = await _create(cloud, w, **spec)
    assert r.status_code == 201, r.text
    trust: dict[str, Any] = r.json()["trust"]
    return trust


def _trust_scope(trust_id: str) -> dict[str, Any]:
    return {"OS-TRUST:trust": {"id": trust_id}}


async def _trust_login(cloud: Cloud, party: Party, trust_id: str) -> Any:
    return await cloud.client.post(TOKENS, json={"auth": {
        "identity": {"methods": ["password"], "password": {
            "user": {"id": party.id, "password": party.password}}},
        "scope": _trust_scope(trust_id)}})


async def _validate(cloud: Cloud, w: World, token: str) -> Any:
    return await cloud.client.get(TOKENS, headers={**w.admin, "X-Subject-Token": token})


# -- the trust API -----------------------------------------------------------------------------

async def test_create_show_list_delete(cloud: Cloud, world: World) -> None:
    w = world
    trust = await _trust(cloud, w, impersonation=True, remaining_uses=5, note="kept as extra")
    assert trust["trustor_user_id"] == w.trustor.id
    assert trust["trustee_user_id"] == w.trustee.id
    assert trust["project_id"] == w.project_id
    assert trust["impersonation"] is True and trust["expires_at"] is None
    assert trust["remaining_uses"] == 5 and trust["redelegation_count"] == 0
    assert trust["redelegated_trust_id"] is None and trust["deleted_at"] is None
    assert trust["note"] == "kept as extra"  # unknown attributes are kept, as Keystone
    assert [r["id"] for r in trust["roles"]] == [w.delegated["id"]]
    assert trust["roles"][0]["links"]["self"].endswith(f"/v3/roles/{w.delegated['id']}")
    assert trust["links"]["self"].endswith(f"/v3/OS-TRUST/trusts/{trust['id']}")
    tid = trust["id"]

    trustee = _h(await w.trustee.token(cloud))
    other = _h(await w.other.token(cloud))
    for headers in (_h(w.trustor_token), trustee, w.admin):
        r = await cloud.client.get(f"{TRUSTS}/{tid}", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["trust"]["roles"][0]["name"] == w.delegated["name"]
    assert (await cloud.client.get(f"{TRUSTS}/{tid}", headers=other)).status_code == 403
    assert (await cloud.client.head(f"{TRUSTS}/{tid}", headers=trustee)).status_code == 200

    # listing: unfiltered only for admins; filtered for the party named in the filter
    assert (await cloud.client.get(TRUSTS, headers=_h(w.trustor_token))).status_code == 403
    r = await cloud.client.get(TRUSTS, headers=w.admin)
    assert [t["id"] for t in r.json()["trusts"]] == [tid]
    assert "roles" not in r.json()["trusts"][0]
    r = await cloud.client.get(f"{TRUSTS}?trustor_user_id={w.trustor.id}",
                               headers=_h(w.trustor_token))
    assert [t["id"] for t in r.json()["trusts"]] == [tid]
    r = await cloud.client.get(f"{TRUSTS}?trustee_user_id={w.trustee.id}", headers=trustee)
    assert [t["id"] for t in r.json()["trusts"]] == [tid]
    for query in (f"trustor_user_id={w.trustor.id}", f"trustee_user_id={w.trustee.id}"):
        r = await cloud.client.get(f"{TRUSTS}?{query}", headers=other)
        assert r.status_code == 403, query

    # roles of the trust
    r = await cloud.client.get(f"{TRUSTS}/{tid}/roles", headers=trustee)
    assert [x["id"] for x in r.json()["roles"]] == [w.delegated["id"]]
    path = f"{TRUSTS}/{tid}/roles/{w.delegated['id']}"
    assert (await cloud.client.get(path, headers=trustee)).json()["role"]["name"] == \
        w.delegated["name"]
    assert (await cloud.client.head(path, headers=trustee)).status_code == 200
    for role in (w.kept, w.implied):
        path = f"{TRUSTS}/{tid}/roles/{role['id']}"
        assert (await cloud.client.get(path, headers=trustee)).status_code == 404
        assert (await cloud.client.head(path, headers=trustee)).status_code == 404

    # only admin or the trustor delete
    assert (await cloud.client.delete(f"{TRUSTS}/{tid}", headers=trustee)).status_code == 403
    r = await cloud.client.delete(f"{TRUSTS}/{tid}", headers=_h(w.trustor_token))
    assert r.status_code == 204
    r = await cloud.client.get(f"{TRUSTS}/{tid}", headers=_h(w.trustor_token))
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"Could not find trust: {tid}."


async def test_create_refusals(cloud: Cloud, world: World) -> None:
    w = world
    # a role the trustor does not hold on the project: 404 for the role, as Keystone
    r = await _create(cloud, w, roles=[{"id": w.foreign["id"]}])
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"Could not find role: {w.foreign['id']}."
    r = await _create(cloud, w, roles=[{"name": "no-such-role"}])
    assert r.status_code == 404
    # the caller must be the trustor (policy), even an admin
    r = await _create(cloud, w, token=w.admin["X-Auth-Token"])
    assert r.status_code == 403
    # a trust on a project names at least one role
    r = await _create(cloud, w, roles=[])
    assert r.status_code == 403
    assert "At least one role should be specified" in r.json()["error"]["message"]
    # unknown trustee, project
    assert (await _create(cloud, w, trustee_user_id="nobody")).status_code == 404
    assert (await _create(cloud, w, project_id="nowhere")).status_code == 404
    # schema and values
    for spec in ({"impersonation": "yes"}, {"remaining_uses": 0}, {"remaining_uses": "1"},
                 {"expires_at": "bad.123Z"},
                 {"expires_at": isotime(utcnow() - timedelta(minutes=1))},
                 {"roles": [{"id": w.delegated["id"], "name": "x"}]},
                 {"allow_redelegation": True, "remaining_uses": 3}):
        assert (await _create(cloud, w, **spec)).status_code == 400, spec
    assert (await _create(cloud, w, allow_redelegation=True,
                          redelegation_count=50)).status_code == 403
    body = {"trust": {"trustor_user_id": w.trustor.id, "trustee_user_id": w.trustee.id}}
    r = await cloud.client.post(TRUSTS, headers=_h(w.trustor_token), json=body)
    assert r.status_code == 400  # impersonation is required
    # an identical trust with the same expiry is a conflict
    expires = isotime(utcnow() + timedelta(hours=1))
    assert (await _create(cloud, w, expires_at=expires)).status_code == 201
    assert (await _create(cloud, w, expires_at=expires)).status_code == 409


async def test_expiry_is_echoed_with_microseconds(cloud: Cloud, world: World) -> None:
    expires = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    text = expires.replace(tzinfo=None).isoformat() + "Z"
    trust = await _trust(cloud, world, expires_at=text)
    assert trust["expires_at"] == isotime(expires)


# -- trust-scoped tokens -----------------------------------------------------------------------

@pytest.mark.parametrize("impersonation", [True, False])
async def test_trust_token_content(cloud: Cloud, world: World, impersonation: bool) -> None:
    w = world
    trust = await _trust(cloud, w, impersonation=impersonation)
    r = await _trust_login(cloud, w.trustee, trust["id"])
    assert r.status_code == 201, r.text
    token = r.headers["X-Subject-Token"]
    for body in (r.json()["token"], (await _validate(cloud, w, token)).json()["token"]):
        assert body["OS-TRUST:trust"] == {
            "id": trust["id"], "impersonation": impersonation,
            "trustor_user": {"id": w.trustor.id}, "trustee_user": {"id": w.trustee.id}}
        assert body["user"]["id"] == (w.trustor.id if impersonation else w.trustee.id)
        assert body["user"]["name"] == ("trustor" if impersonation else "trustee")
        assert body["project"]["id"] == w.project_id
        # the delegated role and what it implies; never the trustor's other roles
        assert {x["id"] for x in body["roles"]} == {w.delegated["id"], w.implied["id"]}
        assert body["catalog"]
        assert "is_domain" not in body
    # the caller seen by policy is the trustor when impersonating
    r = await cloud.client.get(f"{TRUSTS}?trustor_user_id={w.trustor.id}", headers=_h(token))
    assert r.status_code == (200 if impersonation else 403)
    # with the token method from the trustee's own token
    unscoped = await w.trustee.token(cloud)
    r = await cloud.client.post(TOKENS, json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": _trust_scope(trust["id"])}})
    assert r.status_code == 201, r.text
    assert r.json()["token"]["OS-TRUST:trust"]["id"] == trust["id"]


async def test_only_the_trustee_uses_a_trust(cloud: Cloud, world: World) -> None:
    trust = await _trust(cloud, world, remaining_uses=1)
    r = await _trust_login(cloud, world.other, trust["id"])
    assert r.status_code == 403
    r = await _trust_login(cloud, world.trustor, trust["id"])
    assert r.status_code == 403
    # refusals took no use
    assert (await _trust_login(cloud, world.trustee, trust["id"])).status_code == 201


async def test_bad_trust_scopes(cloud: Cloud, world: World) -> None:
    w = world
    trust = await _trust(cloud, w)
    assert (await _trust_login(cloud, w.trustee, "no-such-trust")).status_code == 401
    base = {"identity": {"methods": ["password"], "password": {
        "user": {"id": w.trustee.id, "password": w.trustee.password}}}}
    scopes: list[dict[str, Any]] = [
        {"OS-TRUST:trust": {}},
        {"OS-TRUST:trust": {"id": trust["id"]}, "project": {"id": w.project_id}}]
    for scope in scopes:
        r = await cloud.client.post(TOKENS, json={"auth": {**base, "scope": scope}})
        assert r.status_code == 400, scope


async def test_remaining_uses_are_counted(cloud: Cloud, world: World) -> None:
    trust = await _trust(cloud, world, remaining_uses=2)
    first = await _trust_login(cloud, world.trustee, trust["id"])
    assert first.status_code == 201
    r = await cloud.client.get(f"{TRUSTS}/{trust['id']}", headers=_h(world.trustor_token))
    assert r.json()["trust"]["remaining_uses"] == 1
    assert (await _trust_login(cloud, world.trustee, trust["id"])).status_code == 201
    assert (await _trust_login(cloud, world.trustee, trust["id"])).status_code == 401
    # a used-up trust reads as 404 but stays listed; its tokens stay good
    r = await cloud.client.get(f"{TRUSTS}/{trust['id']}", headers=_h(world.trustor_token))
    assert r.status_code == 404
    r = await cloud.client.get(TRUSTS, headers=world.admin)
    assert [t["remaining_uses"] for t in r.json()["trusts"]] == [0]
    token = first.headers["X-Subject-Token"]
    assert (await _validate(cloud, world, token)).status_code == 200


async def test_last_use_goes_to_exactly_one_of_two_racing_requests(cloud: Cloud,
                                                                    world: World) -> None:
    for _ in range(3):
        trust = await _trust(cloud, world, remaining_uses=1,
                             expires_at=isotime(utcnow() + timedelta(hours=1, seconds=_)))
        results = await asyncio.gather(*(_trust_login(cloud, world.trustee, trust["id"])
                                         for _ in range(2)))
        codes = sorted(r.status_code for r in results)
        assert codes[0] == 201 and codes[1] in (401, 403), codes
        async with cloud.identity.store.read() as session:
            row = await session.get(Trust, trust["id"])
            assert row is not None and row.remaining_uses == 0


async def test_expired_trust(cloud: Cloud, world: World) -> None:
    w = world
    trust = await _trust(cloud, w)
    token = (await _trust_login(cloud, w.trustee, trust["id"])).headers["X-Subject-Token"]
    async with cloud.identity.store.write() as session:
        await session.execute(update(Trust).where(Trust.id == trust["id"]).values(
            expires_at=utcnow() - timedelta(seconds=1)))
    assert (await _trust_login(cloud, w.trustee, trust["id"])).status_code == 401
    assert (await _validate(cloud, w, token)).status_code == 404
    r = await cloud.client.get(f"{TRUSTS}/{trust['id']}", headers=_h(w.trustor_token))
    assert r.status_code == 404


async def test_token_never_outlives_its_trust(cloud: Cloud, world: World) -> None:
    expires = utcnow() + timedelta(minutes=5)
    trust = await _trust(cloud, world, expires_at=isotime(expires))
    r = await _trust_login(cloud, world.trustee, trust["id"])
    assert r.json()["token"]["expires_at"] == isotime(expires)


async def test_delete_revokes_its_tokens(cloud: Cloud, world: World) -> None:
    w = world
    trust = await _trust(cloud, w)
    token = (await _trust_login(cloud, w.trustee, trust["id"])).headers["X-Subject-Token"]
    assert (await _validate(cloud, w, token)).status_code == 200
    r = await cloud.client.delete(f"{TRUSTS}/{trust['id']}", headers=_h(w.trustor_token))
    assert r.status_code == 204
    r = await _validate(cloud, w, token)
    assert r.status_code == 404
    r = await cloud.client.get(f"{V3}/auth/projects", headers=_h(token))
    assert r.status_code == 401


async def test_trustor_losing_the_role_voids_the_tokens(cloud: Cloud, world: World) -> None:
    w = world
    trust = await _trust(cloud, w)
    token = (await _trust_login(cloud, w.trustee, trust["id"])).headers["X-Subject-Token"]
    r = await cloud.client.delete(f"{V3}/projects/{w.project_id}/users/{w.trustor.id}/roles/"
                                  f"{w.delegated['id']}", headers=w.admin)
    assert r.status_code == 204
    assert (await _validate(cloud, w, token)).status_code == 404
    assert (await _trust_login(cloud, w.trustee, trust["id"])).status_code == 401


@pytest.mark.parametrize("who", ["trustor", "trustee"])
async def test_disabling_a_party_voids_the_tokens(cloud: Cloud, world: World, who: str) -> None:
    w = world
    trust = await _trust(cloud, w, impersonation=True)
    token = (await _trust_login(cloud, w.trustee, trust["id"])).headers["X-Subject-Token"]
    party = w.trustor if who == "trustor" else w.trustee
    r = await cloud.client.patch(f"{V3}/users/{party.id}", headers=w.admin,
                                 json={"user": {"enabled": False}})
    assert r.status_code == 200, r.text
    assert (await _validate(cloud, w, token)).status_code == 404
    assert (await _trust_login(cloud, w.trustee, trust["id"])).status_code == 401
    r = await cloud.client.patch(f"{V3}/users/{party.id}", headers=w.admin,
                                 json={"user": {"enabled": True}})
    assert r.status_code == 200
    # the old token stays revoked; a new one works
    assert (await _validate(cloud, w, token)).status_code == 404
    assert (await _trust_login(cloud, w.trustee, trust["id"])).status_code == 201


async def test_deleting_a_party_removes_the_trust(cloud: Cloud, world: World) -> None:
    w = world
    trust = await _trust(cloud, w)
    token = (await _trust_login(cloud, w.trustee, trust["id"])).headers["X-Subject-Token"]
    r = await cloud.client.delete(f"{V3}/users/{w.trustor.id}", headers=w.admin)
    assert r.status_code == 204
    assert (await _validate(cloud, w, token)).status_code == 404
    assert (await cloud.client.get(TRUSTS, headers=w.admin)).json()["trusts"] == []
    assert (await cloud.client.get(f"{TRUSTS}/{trust['id']}",
                                   headers=w.admin)).status_code == 404


async def test_trust_token_cannot_be_rescoped(cloud: Cloud, world: World) -> None:
    w = world
    trust = await _trust(cloud, w)
    token = (await _trust_login(cloud, w.trustee, trust["id"])).headers["X-Subject-Token"]
    scopes: list[dict[str, Any] | None] = [None, {"project": {"id": w.project_id}},
                                           _trust_scope(trust["id"])]
    for scope in scopes:
        body: dict[str, Any] = {"auth": {"identity": {"methods": ["token"],
                                                      "token": {"id": token}}}}
        if scope is not None:
            body["auth"]["scope"] = scope
        r = await cloud.client.post(TOKENS, json=body)
        assert r.status_code == 403, scope
        assert "Using trust-scoped token to create another token" in \
            r.json()["error"]["message"]


async def test_trust_token_creates_no_trust_without_redelegation(cloud: Cloud,
                                                                 world: World) -> None:
    w = world
    trust = await _trust(cloud, w, impersonation=True)
    token = (await _trust_login(cloud, w.trustee, trust["id"])).headers["X-Subject-Token"]
    r = await _create(cloud, w, token=token, trustee_user_id=w.other.id, impersonation=True)
    assert r.status_code == 403


async def test_redelegation_chain(cloud: Cloud, world: World) -> None:
    w = world
    first = await _trust(cloud, w, impersonation=True, allow_redelegation=True)
    assert first["redelegation_count"] == 3
    token = (await _trust_login(cloud, w.trustee, first["id"])).headers["X-Subject-Token"]
    # the trustee (seen as the trustor: impersonation) passes the trust on to `other`
    r = await _create(cloud, w, token=token, trustee_user_id=w.other.id, impersonation=True,
                      allow_redelegation=True)
    assert r.status_code == 201, r.text
    second = r.json()["trust"]
    assert second["redelegated_trust_id"] == first["id"]
    assert second["redelegation_count"] == 2
    # a redelegated trust stays within its parent
    r = await _create(cloud, w, token=token, trustee_user_id=w.other.id, impersonation=True,
                      roles=[{"id": w.kept["id"]}])
    assert r.status_code == 403
    r = await _create(cloud, w, token=token, trustee_user_id=w.other.id, impersonation=True,
                      allow_redelegation=True, redelegation_count=3)
    assert r.status_code == 403
    r = await _trust_login(cloud, w.other, second["id"])
    assert r.status_code == 201, r.text
    other_token = r.headers["X-Subject-Token"]
    assert r.json()["token"]["user"]["id"] == w.trustor.id
    assert {x["id"] for x in r.json()["token"]["roles"]} == {w.delegated["id"],
                                                             w.implied["id"]}
    # deleting the first trust deletes the chain and voids its tokens
    r = await cloud.client.delete(f"{TRUSTS}/{first['id']}", headers=_h(w.trustor_token))
    assert r.status_code == 204
    r = await cloud.client.get(f"{TRUSTS}/{second['id']}", headers=w.admin)
    assert r.status_code == 404
    assert (await _validate(cloud, w, other_token)).status_code == 404


async def test_app_cred_tokens_may_not_touch_trusts(cloud: Cloud, world: World) -> None:
    w = world
    r = await cloud.client.post(f"{V3}/users/{w.trustor.id}/application_credentials",
                                headers=_h(w.trustor_token),
                                json={"application_credential": {"name": "ac"}})
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    r = await cloud.client.post(TOKENS, json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": cred["id"], "secret": cred["secret"]}}}})
    token = r.headers["X-Subject-Token"]
    r = await _create(cloud, w, token=token)
    assert r.status_code == 403
    assert "application_credential" in r.json()["error"]["message"]


async def test_services_see_the_trust_in_their_context(cloud: Cloud, world: World) -> None:
    """In-process and remote (REST) validation agree: the impersonated trustor is the
    caller, and the trust rides in ``extra`` (what orchestration needs for deferred work)."""
    import httpx

    from stackling.clients.identity import RemoteTokenValidator, ServiceCredentials

    trust = await _trust(cloud, world, impersonation=True)
    token = (await _trust_login(cloud, world.trustee, trust["id"])).headers["X-Subject-Token"]
    remote = RemoteTokenValidator(
        "http://testserver/identity",
        ServiceCredentials("admin", cloud.passwords["admin"], project_name="admin"),
        client=httpx.AsyncClient(transport=cloud.client._transport,
                                 base_url="http://testserver"))
    local = await cloud.identity.validate_context(token, "r1")
    seen = await remote.validate_context(token, "r2")
    for ctx in (local, seen):
        assert ctx.user_id == world.trustor.id and ctx.project_id == world.project_id
        assert ctx.extra["trust"]["id"] == trust["id"]
        assert ctx.extra["trust"]["trustee_user"] == {"id": world.trustee.id}
        assert set(ctx.roles) == {world.delegated["name"], world.implied["name"]}
