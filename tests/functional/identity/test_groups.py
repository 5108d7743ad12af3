from __future__ import annotations

from typing import Any

from tests.functional.conftest import Cloud

GROUPS = "/identity/v3/groups"
TOKENS = "/identity/v3/auth/tokens"


async def _admin(cloud: Cloud) -> dict[str, str]:
    return {"X-Auth-Token": await cloud.token()}


async def _group(cloud: Cloud, h: dict[str, str], **attrs: Any) -> dict[str, Any]:
    r = await cloud.client.post(GROUPS, headers=h, json={"group": attrs})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()["group"]
    return body


async def _user(cloud: Cloud, h: dict[str, str], name: str) -> dict[str, Any]:
    r = await cloud.client.post("/identity/v3/users", headers=h, json={"user": {
        "name": name, "password": f"{name}-pass-1"}})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()["user"]
    return body


async def test_crud(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    g = await _group(cloud, h, name="ops", description="operators", team="blue")
    assert g["domain_id"] == "default" and g["team"] == "blue"
    assert g["links"]["self"].endswith(f"/v3/groups/{g['id']}")
    assert (await c.get(f"{GROUPS}/{g['id']}", headers=h)).json()["group"] == g
    assert g in (await c.get(GROUPS, headers=h)).json()["groups"]
    r = await c.patch(f"{GROUPS}/{g['id']}", headers=h, json={"group": {"name": "ops2"}})
    body = r.json()["group"]
    assert (body["name"], body["description"]) == ("ops2", "operators")
    r = await c.patch(f"{GROUPS}/{g['id']}", headers=h, json={"group": {"domain_id": "x"}})
    assert r.status_code == 400
    assert (await c.delete(f"{GROUPS}/{g['id']}", headers=h)).status_code == 204
    assert (await c.get(f"{GROUPS}/{g['id']}", headers=h)).status_code == 404
    assert (await c.delete(f"{GROUPS}/{g['id']}", headers=h)).status_code == 404


async def test_errors_and_filters(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    g = await _group(cloud, h, name="dup")
    assert g["description"] is None
    assert (await c.post(GROUPS, headers=h, json={"group": {"name": "dup"}})).status_code == 409
    assert (await c.post(GROUPS, headers=h, json={"group": {}})).status_code == 400
    assert (await c.post(GROUPS, headers=h, json={"group": {"name": ""}})).status_code == 400
    r = await c.post(GROUPS, headers=h, json={"group": {"name": "x", "domain_id": "f" * 32}})
    assert r.status_code == 404
    other = await _group(cloud, h, name="other")
    await _group(cloud, h, name="taken")
    r = await c.patch(f"{GROUPS}/{other['id']}", headers=h, json={"group": {"name": "taken"}})
    assert r.status_code == 409
    r = await c.get(GROUPS, headers=h, params={"name": "dup"})
    assert [x["id"] for x in r.json()["groups"]] == [g["id"]]
    r = await c.get(GROUPS, headers=h, params={"domain_id": "default", "name__contains": "th"})
    assert [x["id"] for x in r.json()["groups"]] == [other["id"]]


async def test_membership(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    g = await _group(cloud, h, name="team")
    users = [await _user(cloud, h, f"member{i}") for i in range(3)]
    for u in users:
        assert (await c.put(f"{GROUPS}/{g['id']}/users/{u['id']}", headers=h)).status_code \
            == 204
    assert (await c.put(f"{GROUPS}/{g['id']}/users/{users[0]['id']}", headers=h)
            ).status_code == 204  # idempotent
    r = await c.get(f"{GROUPS}/{g['id']}/users", headers=h)
    assert sorted(r.json()["users"], key=lambda u: u["name"]) == users
    r = await c.get(f"{GROUPS}/{g['id']}/users", headers=h, params={"name": "member1"})
    assert [u["id"] for u in r.json()["users"]] == [users[1]["id"]]
    for u in users:
        url = f"{GROUPS}/{g['id']}/users/{u['id']}"
        assert (await c.head(url, headers=h)).status_code == 204
        assert (await c.get(url, headers=h)).status_code == 204
        assert (await c.delete(url, headers=h)).status_code == 204
        assert (await c.head(url, headers=h)).status_code == 404
        assert (await c.delete(url, headers=h)).status_code == 404
    assert (await c.get(f"{GROUPS}/{g['id']}/users", headers=h)).json()["users"] == []
    assert (await c.put(f"{GROUPS}/{g['id']}/users/nope", headers=h)).status_code == 404
    assert (await c.put(f"{GROUPS}/nope/users/{users[0]['id']}", headers=h)).status_code == 404
    assert (await c.get(f"{GROUPS}/nope/users", headers=h)).status_code == 404


async def test_removal_from_group_revokes_user_tokens(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    g = await _group(cloud, h, name="revokers")
    u = await _user(cloud, h, "rita")
    other = await _user(cloud, h, "otto")
    for member in (u, other):
        await c.put(f"{GROUPS}/{g['id']}/users/{member['id']}", headers=h)
    token = await cloud.token("rita", None, password="rita-pass-1")
    other_token = await cloud.token("otto", None, password="otto-pass-1")
    assert (await c.delete(f"{GROUPS}/{g['id']}/users/{u['id']}", headers=h)).status_code == 204
    assert (await c.get(TOKENS, headers={**h, "X-Subject-Token": token})).status_code == 404
    assert (await c.get(TOKENS, headers={**h, "X-Subject-Token": other_token})
            ).status_code == 200
    # deleting the user removes the membership too
    await c.put(f"{GROUPS}/{g['id']}/users/{u['id']}", headers=h)
    await c.delete(f"/identity/v3/users/{u['id']}", headers=h)
    r = await c.get(f"{GROUPS}/{g['id']}/users", headers=h)
    assert [x["id"] for x in r.json()["users"]] == [other["id"]]


async def test_member_access(cloud: Cloud) -> None:
    h = await _admin(cloud)
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    c = cloud.client
    g = await _group(cloud, h, name="private")
    u = await _user(cloud, h, "pat")
    assert (await c.get(GROUPS, headers=demo)).status_code == 403
    assert (await c.get(f"{GROUPS}/{g['id']}", headers=demo)).status_code == 403
    assert (await c.post(GROUPS, headers=demo, json={"group": {"name": "x"}})).status_code \
        == 403
    assert (await c.patch(f"{GROUPS}/{g['id']}", headers=demo, json={"group": {
        "name": "x"}})).status_code == 403
    assert (await c.delete(f"{GROUPS}/{g['id']}", headers=demo)).status_code == 403
    assert (await c.put(f"{GROUPS}/{g['id']}/users/{u['id']}", headers=demo)).status_code \
        == 403
    assert (await c.get(f"{GROUPS}/{g['id']}/users", headers=demo)).status_code == 403
