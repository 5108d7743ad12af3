"""``/v3/policies``: stored blobs."""

from __future__ import annotations

from tests.functional.conftest import Cloud

V3 = "/identity/v3"


async def test_policy_blob_crud(cloud: Cloud) -> None:
    h = {"X-Auth-Token": await cloud.token("admin", "admin")}
    body = {"blob": '{"a": "b"}', "type": "application/json", "owner": "ops"}
    r = await cloud.client.post(f"{V3}/policies", json={"policy": body}, headers=h)
    assert r.status_code == 201
    p = r.json()["policy"]
    assert p["blob"] == body["blob"] and p["type"] == body["type"] and p["owner"] == "ops"
    assert p["links"]["self"].endswith(f"/v3/policies/{p['id']}")
    for bad in ({"type": "x"}, {"blob": "x"}, {"blob": 1, "type": "x"}):
        r = await cloud.client.post(f"{V3}/policies", json={"policy": bad}, headers=h)
        assert r.status_code == 400, bad
    r = await cloud.client.patch(f"{V3}/policies/{p['id']}",
                                 json={"policy": {"type": "text/yaml"}}, headers=h)
    assert r.status_code == 200 and r.json()["policy"]["type"] == "text/yaml"
    assert r.json()["policy"]["blob"] == body["blob"]
    r = await cloud.client.patch(f"{V3}/policies/{p['id']}", json={"policy": {"id": "x"}},
                                 headers=h)
    assert r.status_code == 400
    r = await cloud.client.get(f"{V3}/policies?type=text/yaml", headers=h)
    assert [x["id"] for x in r.json()["policies"]] == [p["id"]]
    r = await cloud.client.get(f"{V3}/policies?type=none", headers=h)
    assert r.json()["policies"] == []
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    assert (await cloud.client.get(f"{V3}/policies", headers=demo)).status_code == 403
    r = await cloud.client.post(f"{V3}/policies", json={"policy": body}, headers=demo)
    assert r.status_code == 403
    assert (await cloud.client.delete(f"{V3}/policies/{p['id']}", headers=h)).status_code == 204
    assert (await cloud.client.get(f"{V3}/policies/{p['id']}", headers=h)).status_code == 404
    r = await cloud.client.delete(f"{V3}/policies/{p['id']}", headers=h)
    assert r.status_code == 404 and r.json()["error"]["code"] == 404
