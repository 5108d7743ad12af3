from __future__ import annotations

from typing import Any

from tests.functional.conftest import Cloud

PROJECTS = "/identity/v3/projects"


async def _admin(cloud: Cloud) -> dict[str, str]:
    return {"X-Auth-Token": await cloud.token()}


async def _create(cloud: Cloud, h: dict[str, str], **attrs: Any) -> dict[str, Any]:
    r = await cloud.client.post(PROJECTS, headers=h, json={"project": attrs})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()["project"]
    return body


async def _project_id(cloud: Cloud, h: dict[str, str], name: str) -> str:
    r = await cloud.client.get(PROJECTS, headers=h, params={"name": name})
    project_id: str = r.json()["projects"][0]["id"]
    return project_id


async def test_create_show_list_agree(cloud: Cloud) -> None:
    h = await _admin(cloud)
    p = await _create(cloud, h, name="p1", description="first", tags=["a", "c", "b"],
                      color="blue")
    assert p["domain_id"] == "default" and p["parent_id"] == "default"
    assert p["is_domain"] is False and p["enabled"] is True
    assert p["color"] == "blue" and sorted(p["tags"]) == ["a", "b", "c"]
    shown = (await cloud.client.get(f"{PROJECTS}/{p['id']}", headers=h)).json()["project"]
    listed = next(x for x in (await cloud.client.get(PROJECTS, headers=h)).json()["projects"]
                  if x["id"] == p["id"])
    assert shown == listed
    assert {"parent_id", "is_domain", "description", "links", "name", "enabled",
            "domain_id", "id", "tags", "options"} <= set(shown)
    assert (await cloud.client.head(f"{PROJECTS}/{p['id']}", headers=h)).status_code == 200


async def test_filters(cloud: Cloud) -> None:
    h = await _admin(cloud)
    dom = (await cloud.client.post("/identity/v3/domains", headers=h, json={"domain": {
        "name": "other"}})).json()["domain"]
    off = await _create(cloud, h, name="off", enabled=False)
    parent = await _create(cloud, h, name="parent", tags=["x", "y"])
    child = await _create(cloud, h, name="child", parent_id=parent["id"], tags=["y"])
    elsewhere = await _create(cloud, h, name="elsewhere", domain_id=dom["id"])
    assert child["domain_id"] == "default"

    async def ids(**params: str) -> set[str]:
        r = await cloud.client.get(PROJECTS, headers=h, params=params)
        assert r.status_code == 200, r.text
        return {p["id"] for p in r.json()["projects"]}

    assert await ids(enabled="false") == {off["id"]}
    assert await ids(parent_id=parent["id"]) == {child["id"]}
    assert await ids(domain_id=dom["id"]) == {elsewhere["id"]}
    assert await ids(name="child") == {child["id"]}
    assert await ids(name__icontains="CHIL") == {child["id"]}
    assert await ids(tags="x,y") == {parent["id"]}
    assert await ids(**{"tags-any": "y"}) == {parent["id"], child["id"]}
    assert child["id"] not in await ids(**{"not-tags": "y"})
    assert parent["id"] in await ids(**{"not-tags": "x,y,z"})
    assert await ids(**{"not-tags-any": "y"}) & {parent["id"], child["id"]} == set()
    domains = await ids(is_domain="true")
    assert {"default", dom["id"]} <= domains and parent["id"] not in domains
    assert dom["id"] not in await ids()
    r = await cloud.client.get(PROJECTS, headers=h, params={"enabled": "sometimes"})
    assert r.status_code == 400


async def test_pagination(cloud: Cloud) -> None:
    h = await _admin(cloud)
    for i in range(3):
        await _create(cloud, h, name=f"page-{i}")
    r = await cloud.client.get(PROJECTS, headers=h, params={"limit": "2"})
    body = r.json()
    assert len(body["projects"]) == 2 and body["truncated"] is True
    assert "marker=" in body["links"]["next"]
    seen = [p["id"] for p in body["projects"]]
    r = await cloud.client.get(PROJECTS, headers=h, params={"limit": "2", "marker": seen[-1]})
    rest = [p["id"] for p in r.json()["projects"]]
    assert not set(seen) & set(rest)
    r = await cloud.client.get(PROJECTS, headers=h, params={"marker": "nope"})
    assert r.status_code == 404


async def test_create_errors(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    await _create(cloud, h, name="dup")
    r = await c.post(PROJECTS, headers=h, json={"project": {"name": "dup"}})
    assert r.status_code == 409 and "dup" in r.json()["error"]["message"]
    for bad in ({"name": ""}, {"name": "a" * 65}, {}, {"name": "x", "tags": ["a,b"]},
                {"name": "x", "tags": ["a", "a"]}, {"name": "x", "enabled": 3},
                {"name": "x", "domain_id": "no-such-domain"},
                {"name": "x", "parent_id": "0123456789abcdef"},
                {"name": "x", "options": {"frozen": True}}):
        r = await c.post(PROJECTS, headers=h, json={"project": bad})
        assert r.status_code == 400, (bad, r.text)
    dom = (await c.post("/identity/v3/domains", headers=h, json={"domain": {
        "name": "d2"}})).json()["domain"]
    top = await _create(cloud, h, name="top")
    r = await c.post(PROJECTS, headers=h, json={"project": {
        "name": "cross", "domain_id": dom["id"], "parent_id": top["id"]}})
    assert r.status_code == 400
    off = await _create(cloud, h, name="off-parent", enabled=False)
    r = await c.post(PROJECTS, headers=h, json={"project": {"name": "k", "parent_id": off["id"]}})
    assert r.status_code == 400


async def test_is_domain_project_is_a_domain(cloud: Cloud) -> None:
    h = await _admin(cloud)
    p = await _create(cloud, h, name="pdom", domain_id=None, is_domain=True)
    assert p["is_domain"] is True and p["domain_id"] is None and p["parent_id"] is None
    r = await cloud.client.get(f"/identity/v3/domains/{p['id']}", headers=h)
    assert r.status_code == 200 and r.json()["domain"]["name"] == "pdom"
    r = await cloud.client.delete(f"{PROJECTS}/{p['id']}", headers=h)
    assert r.status_code == 403  # an enabled domain is not deleted
    await cloud.client.patch(f"{PROJECTS}/{p['id']}", headers=h,
                             json={"project": {"enabled": False}})
    assert (await cloud.client.delete(f"{PROJECTS}/{p['id']}", headers=h)).status_code == 204


async def test_update_rules(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    p = await _create(cloud, h, name="upd")
    url = f"{PROJECTS}/{p['id']}"
    r = await c.patch(url, headers=h, json={"project": {"name": "upd2", "description": "d",
                                                        "enabled": False, "extra_key": 1}})
    assert r.status_code == 200
    body = r.json()["project"]
    assert (body["name"], body["description"], body["enabled"], body["extra_key"]) == (
        "upd2", "d", False, 1)
    r = await c.patch(url, headers=h, json={"project": {"parent_id": "other"}})
    assert r.status_code == 403
    r = await c.patch(url, headers=h, json={"project": {"domain_id": "other"}})
    assert r.status_code == 400
    r = await c.patch(url, headers=h, json={"project": {"is_domain": True}})
    assert r.status_code == 400
    r = await c.patch(url, headers=h, json={"project": {"id": "other"}})
    assert r.status_code == 400
    await _create(cloud, h, name="taken")
    r = await c.patch(url, headers=h, json={"project": {"name": "taken"}})
    assert r.status_code == 409
    r = await c.patch(f"{PROJECTS}/nope", headers=h, json={"project": {"name": "z"}})
    assert r.status_code == 404


async def test_hierarchy_rules_and_views(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    a = await _create(cloud, h, name="A")
    b = await _create(cloud, h, name="B", parent_id=a["id"])
    c1 = await _create(cloud, h, name="C", parent_id=b["id"])
    d = await _create(cloud, h, name="D", parent_id=b["id"])
    r = await c.get(f"{PROJECTS}/{c1['id']}", headers=h, params={"parents_as_ids": ""})
    assert r.json()["project"]["parents"] == {b["id"]: {a["id"]: {"default": None}}}
    r = await c.get(f"{PROJECTS}/{a['id']}", headers=h, params={"subtree_as_ids": ""})
    assert r.json()["project"]["subtree"] == {b["id"]: {c1["id"]: None, d["id"]: None}}
    r = await c.get(f"{PROJECTS}/{a['id']}", headers=h,
                    params={"subtree_as_ids": "", "subtree_as_list": ""})
    assert r.status_code == 400
    # the list views show only projects the caller has a role on
    r = await c.get(f"{PROJECTS}/{a['id']}", headers=h, params={"subtree_as_list": "1"})
    assert r.json()["project"]["subtree"] == []
    r = await c.get(f"{PROJECTS}/{a['id']}", headers=h, params={"subtree_as_list": "0"})
    assert "subtree" not in r.json()["project"]

    r = await c.delete(f"{PROJECTS}/{b['id']}", headers=h)
    assert r.status_code == 403 and "leaf" in r.json()["error"]["message"]
    r = await c.patch(f"{PROJECTS}/{b['id']}", headers=h, json={"project": {"enabled": False}})
    assert r.status_code == 403
    for leaf in (c1, d):
        await c.patch(f"{PROJECTS}/{leaf['id']}", headers=h, json={"project": {
            "enabled": False}})
    r = await c.patch(f"{PROJECTS}/{b['id']}", headers=h, json={"project": {"enabled": False}})
    assert r.status_code == 200
    r = await c.patch(f"{PROJECTS}/{c1['id']}", headers=h, json={"project": {"enabled": True}})
    assert r.status_code == 403  # its parent is disabled
    for leaf in (c1, d, b):
        assert (await c.delete(f"{PROJECTS}/{leaf['id']}", headers=h)).status_code == 204
    assert (await c.get(f"{PROJECTS}/{b['id']}", headers=h)).status_code == 404


async def test_max_depth(cloud: Cloud) -> None:
    h = await _admin(cloud)
    parent = None
    for level in range(5):
        attrs: dict[str, Any] = {"name": f"level{level}"}
        if parent:
            attrs["parent_id"] = parent
        parent = (await _create(cloud, h, **attrs))["id"]
    r = await cloud.client.post(PROJECTS, headers=h, json={"project": {
        "name": "too-deep", "parent_id": parent}})
    assert r.status_code == 403


async def test_tags_api(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    p = await _create(cloud, h, name="tagged")
    tags = f"{PROJECTS}/{p['id']}/tags"
    r = await c.put(f"{tags}/first", headers=h)
    assert r.status_code == 201 and r.headers["Location"].endswith(f"{p['id']}/tags/first")
    assert (await c.get(f"{tags}/first", headers=h)).status_code == 204
    assert (await c.head(f"{tags}/first", headers=h)).status_code == 204
    assert (await c.put(f"{tags}/first", headers=h)).status_code == 400  # already there
    r = await c.put(tags, headers=h, json={"tags": ["t1", "t2", "t3"]})
    assert r.status_code == 200 and sorted(r.json()["tags"]) == ["t1", "t2", "t3"]
    r = await c.get(tags, headers=h)
    assert sorted(r.json()["tags"]) == ["t1", "t2", "t3"] and "self" in r.json()["links"]
    assert (await c.delete(f"{tags}/t1", headers=h)).status_code == 204
    assert (await c.get(f"{tags}/t1", headers=h)).status_code == 404
    assert (await c.delete(f"{tags}/t1", headers=h)).status_code == 404
    assert (await c.put(tags, headers=h, json={"tags": ["a/b"]})).status_code == 400
    assert (await c.put(tags, headers=h, json={"tags": [str(i) for i in range(81)]})
            ).status_code == 400
    assert (await c.delete(tags, headers=h)).status_code == 204
    assert (await c.get(tags, headers=h)).json()["tags"] == []
    assert (await c.get(f"{PROJECTS}/nope/tags", headers=h)).status_code == 404


async def test_immutable_project(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    p = await _create(cloud, h, name="frozen", options={"immutable": True})
    url = f"{PROJECTS}/{p['id']}"
    assert p["options"] == {"immutable": True}
    assert (await c.patch(url, headers=h, json={"project": {"name": "x"}})).status_code == 403
    assert (await c.delete(url, headers=h)).status_code == 403
    assert (await c.put(f"{url}/tags/t", headers=h)).status_code == 403
    r = await c.patch(url, headers=h, json={"project": {"options": {"immutable": None}}})
    assert r.status_code == 200 and r.json()["project"]["options"] == {}
    assert (await c.delete(url, headers=h)).status_code == 204


async def test_disable_and_delete_revoke_project_tokens(cloud: Cloud) -> None:
    h = await _admin(cloud)
    c = cloud.client
    demo_project = await _project_id(cloud, h, "demo")
    token = await cloud.token("demo", "demo")
    check = {**h, "X-Subject-Token": token}
    assert (await c.get("/identity/v3/auth/tokens", headers=check)).status_code == 200
    await c.patch(f"{PROJECTS}/{demo_project}", headers=h, json={"project": {"enabled": False}})
    assert (await c.get("/identity/v3/auth/tokens", headers=check)).status_code == 404
    await c.patch(f"{PROJECTS}/{demo_project}", headers=h, json={"project": {"enabled": True}})
    fresh = await cloud.token("demo", "demo")
    assert (await c.get("/identity/v3/auth/tokens", headers={
        **h, "X-Subject-Token": fresh})).status_code == 200
    assert (await c.delete(f"{PROJECTS}/{demo_project}", headers=h)).status_code == 204
    assert (await c.get("/identity/v3/auth/tokens", headers={
        **h, "X-Subject-Token": fresh})).status_code == 404


async def test_member_access(cloud: Cloud) -> None:
    h = await _admin(cloud)
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    c = cloud.client
    demo_project = await _project_id(cloud, h, "demo")
    admin_project = await _project_id(cloud, h, "admin")
    assert (await c.get(PROJECTS, headers=demo)).status_code == 403
    r = await c.get(f"{PROJECTS}/{demo_project}", headers=demo)
    assert r.status_code == 200 and r.json()["project"]["name"] == "demo"
    assert (await c.get(f"{PROJECTS}/{demo_project}/tags", headers=demo)).status_code == 200
    assert (await c.get(f"{PROJECTS}/{admin_project}", headers=demo)).status_code == 403
    assert (await c.get(f"{PROJECTS}/does-not-exist", headers=demo)).status_code == 403
    assert (await c.post(PROJECTS, headers=demo, json={"project": {"name": "x"}})
            ).status_code == 403
    assert (await c.patch(f"{PROJECTS}/{demo_project}", headers=demo, json={"project": {
        "description": "x"}})).status_code == 403
    assert (await c.delete(f"{PROJECTS}/{demo_project}", headers=demo)).status_code == 403
    assert (await c.put(f"{PROJECTS}/{demo_project}/tags/x", headers=demo)).status_code == 403


async def test_user_projects(cloud: Cloud) -> None:
    h = await _admin(cloud)
    demo_token = await cloud.token("demo", "demo")
    demo = {"X-Auth-Token": demo_token}
    c = cloud.client
    check = (await c.get("/identity/v3/auth/tokens", headers={
        **h, "X-Subject-Token": demo_token})).json()["token"]
    demo_user, demo_project = check["user"]["id"], check["project"]["id"]
    r = await c.get(f"/identity/v3/users/{demo_user}/projects", headers=demo)
    assert r.status_code == 200
    assert [p["id"] for p in r.json()["projects"]] == [demo_project]
    r = await c.get(f"/identity/v3/users/{demo_user}/projects", headers=h)
    assert [p["id"] for p in r.json()["projects"]] == [demo_project]
    admin_user = (await c.get("/identity/v3/users", headers=h, params={
        "name": "admin"})).json()["users"][0]["id"]
    assert (await c.get(f"/identity/v3/users/{admin_user}/projects", headers=demo)
            ).status_code == 403
