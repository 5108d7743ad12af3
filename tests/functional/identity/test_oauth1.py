"""OS-OAUTH1: consumers (and, below, the delegated flow)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, quote

from stackling.identity.models import OAuthConsumer
from tests.functional.conftest import Cloud

V3 = "/identity/v3"
CONSUMERS = f"{V3}/OS-OAUTH1/consumers"


async def _admin(cloud: Cloud) -> dict[str, str]:
    return {"X-Auth-Token": await cloud.token("admin", "admin")}


async def test_consumer_crud(cloud: Cloud) -> None:
    admin = await _admin(cloud)
    r = await cloud.client.post(CONSUMERS, headers=admin,
                                json={"consumer": {"description": "app", "tier": "gold",
                                                   "secret": "ignored"}})
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()["consumer"]
    assert made["description"] == "app" and made["tier"] == "gold"
    assert len(made["secret"]) == 32 and made["secret"] != "ignored"
    assert made["links"]["self"].endswith(f"/v3/OS-OAUTH1/consumers/{made['id']}")
    cid = made["id"]
    # the secret is shown once, and stored encrypted
    shown = (await cloud.client.get(f"{CONSUMERS}/{cid}", headers=admin)).json()["consumer"]
    assert shown == {k: v for k, v in made.items() if k != "secret"}
    async with cloud.identity.store.read() as session:
        row = await session.get(OAuthConsumer, cid)
        assert row is not None and made["secret"] not in row.encrypted_secret
    # a body is optional
    r = await cloud.client.post(CONSUMERS, headers=admin)
    assert r.status_code == 201 and r.json()["consumer"]["description"] is None
    listed = (await cloud.client.get(CONSUMERS, headers=admin)).json()["consumers"]
    assert cid in {c["id"] for c in listed} and all("secret" not in c for c in listed)

    r = await cloud.client.patch(f"{CONSUMERS}/{cid}", headers=admin,
                                 json={"consumer": {"description": "renamed"}})
    assert r.status_code == 200 and r.json()["consumer"]["description"] == "renamed"
    assert r.json()["consumer"]["tier"] == "gold"
    for bad in ({}, {"secret": "x"}, {"id": "other"}, {"description": 5}):
        r = await cloud.client.patch(f"{CONSUMERS}/{cid}", headers=admin,
                                     json={"consumer": bad})
        assert r.status_code == 400, bad

    assert (await cloud.client.delete(f"{CONSUMERS}/{cid}", headers=admin)).status_code == 204
    r = await cloud.client.get(f"{CONSUMERS}/{cid}", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["message"] == "Consumer not found"
    assert (await cloud.client.delete(f"{CONSUMERS}/{cid}", headers=admin)).status_code == 404


async def test_consumers_are_for_admins(cloud: Cloud) -> None:
    admin = await _admin(cloud)
    cid = (await cloud.client.post(CONSUMERS, headers=admin)).json()["consumer"]["id"]
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    assert (await cloud.client.post(CONSUMERS, headers=demo)).status_code == 403
    assert (await cloud.client.get(CONSUMERS, headers=demo)).status_code == 403
    assert (await cloud.client.get(f"{CONSUMERS}/{cid}", headers=demo)).status_code == 403
    r = await cloud.client.patch(f"{CONSUMERS}/{cid}", headers=demo,
                                 json={"consumer": {"description": "x"}})
    assert r.status_code == 403
    assert (await cloud.client.delete(f"{CONSUMERS}/{cid}", headers=demo)).status_code == 403


# -- the delegated flow ------------------------------------------------------------------------

def _enc(value: str) -> str:
    return quote(value, safe="-._~")


def _authorization(method: str, url: str, consumer: tuple[str, str],
                   token: tuple[str, str] | None = None, **extra: str) -> str:
    """An OAuth1 HMAC-SHA1 Authorization header, made here from RFC 5849 alone."""
    params = {"oauth_consumer_key": consumer[0], "oauth_nonce": uuid.uuid4().hex,
              "oauth_signature_method": "HMAC-SHA1", "oauth_timestamp": str(int(time.time())),
              "oauth_version": "1.0", **extra}
    if token is not None:
        params["oauth_token"] = token[0]
    pairs = sorted((_enc(k), _enc(v)) for k, v in params.items())
    text = "&".join([method, _enc(url), _enc("&".join(f"{k}={v}" for k, v in pairs))])
    key = f"{_enc(consumer[1])}&{_enc(token[1] if token else '')}"
    params["oauth_signature"] = base64.b64encode(
        hmac.new(key.encode(), text.encode(), hashlib.sha1).digest()).decode()
    return "OAuth " + ", ".join(f'{k}="{_enc(v)}"' for k, v in params.items())


BASE = "http://testserver/identity/v3"
REQUEST_TOKEN = f"{BASE}/OS-OAUTH1/request_token"
ACCESS_TOKEN = f"{BASE}/OS-OAUTH1/access_token"


async def _consumer(cloud: Cloud, admin: dict[str, str]) -> tuple[str, str]:
    made = (await cloud.client.post(CONSUMERS, headers=admin)).json()["consumer"]
    return made["id"], made["secret"]


async def _project_id(cloud: Cloud, admin: dict[str, str], name: str) -> str:
    r = await cloud.client.get(f"{V3}/projects?name={name}", headers=admin)
    return str(r.json()["projects"][0]["id"])


async def _request_token(cloud: Cloud, consumer: tuple[str, str], project_id: str
                         ) -> tuple[str, str]:
    r = await cloud.client.post(REQUEST_TOKEN, headers={
        "Requested-Project-Id": project_id,
        "Authorization": _authorization("POST", REQUEST_TOKEN, consumer,
                                         oauth_callback="oob")})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = dict(parse_qsl(r.text))
    assert form["oauth_expires_at"].endswith("Z")
    return form["oauth_token"], form["oauth_token_secret"]


async def _delegate(cloud: Cloud, roles: list[dict[str, str]]
                    ) -> tuple[dict[str, str], tuple[str, str], tuple[str, str], str]:
    """consumer -> request token -> admin authorizes on project admin -> access token."""
    admin = await _admin(cloud)
    consumer = await _consumer(cloud, admin)
    project_id = await _project_id(cloud, admin, "admin")
    request_token = await _request_token(cloud, consumer, project_id)
    r = await cloud.client.put(f"{V3}/OS-OAUTH1/authorize/{request_token[0]}", headers=admin,
                               json={"roles": roles})
    assert r.status_code == 200, r.text
    verifier = r.json()["token"]["oauth_verifier"]
    assert len(verifier) == 8
    r = await cloud.client.post(ACCESS_TOKEN, headers={"Authorization": _authorization(
        "POST", ACCESS_TOKEN, consumer, request_token, oauth_verifier=verifier)})
    assert r.status_code == 201, r.text
    form = dict(parse_qsl(r.text))
    return admin, consumer, (form["oauth_token"], form["oauth_token_secret"]), project_id


async def test_request_token_refusals(cloud: Cloud) -> None:
    admin = await _admin(cloud)
    consumer = await _consumer(cloud, admin)
    project_id = await _project_id(cloud, admin, "demo")
    good = _authorization("POST", REQUEST_TOKEN, consumer, oauth_callback="oob")
    cases = [
        ({"Authorization": good}, 400),  # no Requested-Project-Id
        ({"Requested-Project-Id": "nowhere", "Authorization": good}, 404),
        ({"Requested-Project-Id": project_id, "Authorization": _authorization(
            "POST", REQUEST_TOKEN, (consumer[0], "wrong"), oauth_callback="oob")}, 401),
        ({"Requested-Project-Id": project_id, "Authorization": _authorization(
            "POST", REQUEST_TOKEN, ("f" * 32, consumer[1]), oauth_callback="oob")}, 404),
        ({"Requested-Project-Id": project_id, "Authorization": _authorization(
            "POST", REQUEST_TOKEN, consumer)}, 400),  # no callback
        ({"Requested-Project-Id": project_id}, 400),  # not signed at all
    ]
    for headers, status in cases:
        r = await cloud.client.post(REQUEST_TOKEN, headers=headers)
        assert r.status_code == status, (headers, r.text)
    assert (await cloud.client.get(REQUEST_TOKEN)).status_code == 405


async def test_authorize_and_access_token_refusals(cloud: Cloud) -> None:
    admin = await _admin(cloud)
    consumer = await _consumer(cloud, admin)
    project_id = await _project_id(cloud, admin, "demo")
    request_token = await _request_token(cloud, consumer, project_id)
    path = f"{V3}/OS-OAUTH1/authorize/{request_token[0]}"
    # admin holds no role on demo; demo may not authorize (admin-only policy, as Keystone)
    r = await cloud.client.put(path, headers=admin, json={"roles": [{"name": "member"}]})
    assert r.status_code == 401
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    r = await cloud.client.put(path, headers=demo, json={"roles": [{"name": "member"}]})
    assert r.status_code == 403
    r = await cloud.client.put(f"{V3}/OS-OAUTH1/authorize/{'0' * 32}", headers=admin,
                               json={"roles": []})
    assert r.status_code == 404
    # not authorized yet: no verifier matches
    r = await cloud.client.post(ACCESS_TOKEN, headers={"Authorization": _authorization(
        "POST", ACCESS_TOKEN, consumer, request_token, oauth_verifier="abcdefgh")})
    assert r.status_code == 401
    r = await cloud.client.post(ACCESS_TOKEN, headers={"Authorization": _authorization(
        "POST", ACCESS_TOKEN, consumer, request_token)})
    assert r.status_code == 400  # no verifier


async def test_access_tokens_of_a_user(cloud: Cloud) -> None:
    admin, consumer, access, project_id = await _delegate(cloud, [{"name": "member"}])
    me = (await cloud.client.get("/identity/v3/auth/tokens", headers={
        **admin, "X-Subject-Token": admin["X-Auth-Token"]})).json()["token"]["user"]["id"]
    path = f"{V3}/users/{me}/OS-OAUTH1/access_tokens"
    listed = (await cloud.client.get(path, headers=admin)).json()["access_tokens"]
    assert [t["id"] for t in listed] == [access[0]]
    assert listed[0]["consumer_id"] == consumer[0] and listed[0]["project_id"] == project_id
    assert "access_secret" not in listed[0] and "role_ids" not in listed[0]
    assert listed[0]["links"]["roles"].endswith(f"/access_tokens/{access[0]}/roles")
    r = await cloud.client.get(f"{path}/{access[0]}", headers=admin)
    assert r.json()["access_token"]["authorizing_user_id"] == me
    roles = (await cloud.client.get(f"{path}/{access[0]}/roles", headers=admin)).json()
    assert [x["name"] for x in roles["roles"]] == ["member"]
    member_id = roles["roles"][0]["id"]
    r = await cloud.client.get(f"{path}/{access[0]}/roles/{member_id}", headers=admin)
    assert r.status_code == 200 and r.json()["role"]["name"] == "member"
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    assert (await cloud.client.get(path, headers=demo)).status_code == 403
    assert (await cloud.client.delete(f"{path}/{access[0]}", headers=admin)).status_code == 204
    assert (await cloud.client.get(f"{path}/{access[0]}", headers=admin)).status_code == 404


TOKENS_URL = f"{BASE}/auth/tokens"
OAUTH_LOGIN = {"auth": {"identity": {"methods": ["oauth1"], "oauth1": {}}}}


async def _oauth_login(cloud: Cloud, consumer: tuple[str, str], access: tuple[str, str]
                       ) -> Any:
    return await cloud.client.post(TOKENS_URL, json=OAUTH_LOGIN, headers={
        "Authorization": _authorization("POST", TOKENS_URL, consumer, access)})


async def test_oauth1_token(cloud: Cloud) -> None:
    admin, consumer, access, project_id = await _delegate(cloud, [{"name": "member"}])
    r = await _oauth_login(cloud, consumer, access)
    assert r.status_code == 201, r.text
    token = r.headers["X-Subject-Token"]
    for body in (r.json()["token"], (await cloud.client.get(f"{V3}/auth/tokens", headers={
            **admin, "X-Subject-Token": token})).json()["token"]):
        assert body["methods"] == ["oauth1"]
        assert body["user"]["name"] == "admin" and body["project"]["id"] == project_id
        assert body["OS-OAUTH1"] == {"access_token_id": access[0], "consumer_id": consumer[0]}
        names = {x["name"] for x in body["roles"]}
        assert "member" in names and "admin" not in names  # only what was authorized
    # the token works, but may not make other tokens, trusts or authorizations
    assert (await cloud.client.get(f"{V3}/auth/projects",
                                   headers={"X-Auth-Token": token})).status_code == 200
    r = await cloud.client.post(f"{V3}/auth/tokens", json={"auth": {"identity": {
        "methods": ["token"], "token": {"id": token}}}})
    assert r.status_code == 403 and "OAuth-scoped token" in r.json()["error"]["message"]
    # bad signatures and unknown access tokens are 401
    r = await _oauth_login(cloud, consumer, (access[0], "wrong"))
    assert r.status_code == 401
    r = await _oauth_login(cloud, consumer, ("0" * 32, access[1]))
    assert r.status_code == 401
    r = await cloud.client.post(TOKENS_URL, json=OAUTH_LOGIN)
    assert r.status_code == 400  # no oauth_token at all
    # deleting the consumer voids the access token and the tokens made with it
    r = await cloud.client.delete(f"{CONSUMERS}/{consumer[0]}", headers=admin)
    assert r.status_code == 204
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={**admin, "X-Subject-Token": token})
    assert r.status_code == 404
    assert (await _oauth_login(cloud, consumer, access)).status_code == 401


async def test_oauth1_token_cannot_delegate_further(cloud: Cloud) -> None:
    admin, consumer, access, project_id = await _delegate(cloud, [{"name": "member"},
                                                                   {"name": "admin"}])
    token = (await _oauth_login(cloud, consumer, access)).headers["X-Subject-Token"]
    me = (await cloud.client.get(f"{V3}/auth/tokens", headers={
        **admin, "X-Subject-Token": token})).json()["token"]
    assert {"admin", "member"} <= {x["name"] for x in me["roles"]}
    r = await cloud.client.post(f"{V3}/OS-TRUST/trusts", headers={"X-Auth-Token": token},
                                json={"trust": {"trustor_user_id": me["user"]["id"],
                                                "trustee_user_id": me["user"]["id"],
                                                "impersonation": False}})
    assert r.status_code == 403
    # request-token authorization with a delegated token is refused
    request_token = await _request_token(cloud, consumer, project_id)
    r = await cloud.client.put(f"{V3}/OS-OAUTH1/authorize/{request_token[0]}",
                               headers={"X-Auth-Token": token}, json={"roles": []})
    assert r.status_code == 403
