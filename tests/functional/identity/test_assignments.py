"""Grants (project, domain, system, OS-INHERIT) and ``/v3/role_assignments``."""

from __future__ import annotations

from typing import Any

from stackling.common.ids import new_id
from stackling.common.timeutils import utcnow
from stackling.identity.models import ROOT_DOMAIN, Group, Project, User, UserGroupMembership
from tests.functional.conftest import Cloud

V3 = "/identity/v3"
PASSWORD = "correct horse battery"  # a test user's password


class World:
    """Entities made straight in the database, so these tests need no other API."""

    def __init__(self, cloud: Cloud, headers: dict[str, str]) -> None:
        self.cloud = cloud
        self.h = headers
        self.roles: dict[str, str] = {}

    async def load_roles(self) -> None:
        r = await self.cloud.client.get(f"{V3}/roles", headers=self.h)
        self.roles = {x["name"]: x["id"] for x in r.json()["roles"]}

    async def add(self, obj: Any) -> str:
        async with self.cloud.identity.store.write() as session:
            session.add(obj)
        return str(obj.id)

    async def domain(self, name: str) -> str:
        return await self.add(Project(id=new_id(), name=name, domain_id=ROOT_DOMAIN,
                                      is_domain=True, enabled=True, options={}, extra={}))

    async def project(self, name: str, domain: str = "default", parent: str | None = None
                      ) -> str:
        return await self.add(Project(id=new_id(), name=name, domain_id=domain,
                                      parent_id=parent or domain, is_domain=False,
                                      enabled=True, options={}, extra={}))

    async def user(self, name: str, domain: str = "default") -> str:
        hashed = await self.cloud.identity.hasher.hash(PASSWORD)
        return await self.add(User(id=new_id(), name=name, domain_id=domain, enabled=True,
                                   password_hash=hashed, password_created_at=utcnow(),
                                   created_at=utcnow(), options={}, extra={},
                                   failed_auth_count=0))

    async def group(self, name: str, members: list[str], domain: str = "default") -> str:
        group_id = await self.add(Group(id=new_id(), name=name, domain_id=domain, extra={}))
        async with self.cloud.identity.store.write() as session:
            for member in members:
                session.add(UserGroupMembership(user_id=member, group_id=group_id))
        return group_id

    async def put(self, path: str, status: int = 204) -> None:
        r = await self.cloud.client.put(f"{V3}/{path}", headers=self.h)
        assert r.status_code == status, (path, r.text)

    async def assignments(self, query: str) -> list[dict[str, Any]]:
        r = await self.cloud.client.get(f"{V3}/role_assignments?{query}", headers=self.h)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["role_assignments"]
        return items

    async def token(self, user: str, project_id: str, scope: str = "project") -> str:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "id": user, "password": PASSWORD}}}, "scope": {scope: {"id": project_id}}}}
        r = await self.cloud.client.post(f"{V3}/auth/tokens", json=body)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"]

    async def validate(self, token: str) -> int:
        r = await self.cloud.client.get(f"{V3}/auth/tokens",
                                        headers={**self.h, "X-Subject-Token": token})
        return r.status_code


async def _world(cloud: Cloud) -> World:
    world = World(cloud, {"X-Auth-Token": await cloud.token("admin", "admin")})
    await world.load_roles()
    return world


async def test_project_user_grant_lifecycle(cloud: Cloud) -> None:
    w = await _world(cloud)
    p, u = await w.project("p1"), await w.user("u1")
    member = w.roles["member"]
    path = f"projects/{p}/users/{u}/roles/{member}"
    await w.put(path)
    await w.put(path)  # idempotent
    assert (await cloud.client.head(f"{V3}/{path}", headers=w.h)).status_code == 204
    assert (await cloud.client.get(f"{V3}/{path}", headers=w.h)).status_code == 204
    r = await cloud.client.get(f"{V3}/projects/{p}/users/{u}/roles", headers=w.h)
    assert [x["id"] for x in r.json()["roles"]] == [member]
    assert r.json()["roles"][0]["links"]["self"].endswith(f"/v3/roles/{member}")
    token = await w.token(u, p)
    assert await w.validate(token) == 200
    assert (await cloud.client.delete(f"{V3}/{path}", headers=w.h)).status_code == 204
    assert await w.validate(token) == 404  # revoked with the grant
    r = await cloud.client.head(f"{V3}/{path}", headers=w.h)
    assert r.status_code == 404
    r = await cloud.client.delete(f"{V3}/{path}", headers=w.h)
    assert r.status_code == 404
    assert r.json()["error"]["message"] == (
        f"Could not find role assignment with role: {member}, user or group: {u}, "
        f"project, domain, or system: {p}.")


async def test_grant_removal_revokes_even_with_other_roles(cloud: Cloud) -> None:
    w = await _world(cloud)
    p, u = await w.project("p1"), await w.user("u1")
    await w.put(f"projects/{p}/users/{u}/roles/{w.roles['member']}")
    await w.put(f"projects/{p}/users/{u}/roles/{w.roles['reader']}")
    other = await w.project("p2")
    await w.put(f"projects/{other}/users/{u}/roles/{w.roles['member']}")
    token, elsewhere = await w.token(u, p), await w.token(u, other)
    r = await cloud.client.delete(f"{V3}/projects/{p}/users/{u}/roles/{w.roles['reader']}",
                                  headers=w.h)
    assert r.status_code == 204
    assert await w.validate(token) == 404
    assert await w.validate(elsewhere) == 200
    assert await w.validate(await w.token(u, p)) == 200


async def test_group_grant_reaches_members_and_revokes(cloud: Cloud) -> None:
    w = await _world(cloud)
    p, u = await w.project("p1"), await w.user("u1")
    g = await w.group("g1", [u])
    path = f"projects/{p}/groups/{g}/roles/{w.roles['member']}"
    await w.put(path)
    token = await w.token(u, p)
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={**w.h, "X-Subject-Token": token})
    assert {x["name"] for x in r.json()["token"]["roles"]} == {"member", "reader"}
    r = await cloud.client.get(f"{V3}/projects/{p}/groups/{g}/roles", headers=w.h)
    assert [x["name"] for x in r.json()["roles"]] == ["member"]
    assert (await cloud.client.delete(f"{V3}/{path}", headers=w.h)).status_code == 204
    assert await w.validate(token) == 404


async def test_domain_and_system_grants(cloud: Cloud) -> None:
    w = await _world(cloud)
    d = await w.domain("d1")
    u = await w.user("u1", domain=d)
    g = await w.group("g1", [u], domain=d)
    reader = w.roles["reader"]
    for path in (f"domains/{d}/users/{u}/roles/{reader}", f"domains/{d}/groups/{g}/roles/{reader}",
                 f"system/users/{u}/roles/{reader}", f"system/groups/{g}/roles/{reader}"):
        await w.put(path)
        assert (await cloud.client.head(f"{V3}/{path}", headers=w.h)).status_code == 204
        listing = path.rsplit("/", 1)[0]
        r = await cloud.client.get(f"{V3}/{listing}", headers=w.h)
        assert [x["id"] for x in r.json()["roles"]] == [reader], listing
        assert (await cloud.client.head(f"{V3}/{listing}", headers=w.h)).status_code == 200
    items = await w.assignments(f"user.id={u}")
    scopes = sorted(next(iter(x["scope"])) for x in items)
    assert scopes == ["domain", "system"]
    sys_item = next(x for x in items if "system" in x["scope"])
    assert sys_item["scope"]["system"] == {"all": True}
    assert sys_item["links"]["assignment"].endswith(f"/v3/system/users/{u}/roles/{reader}")
    items = await w.assignments("scope.system=all")
    assert {x.get("user", x.get("group", {})).get("id") for x in items} >= {u, g}
    for path in (f"domains/{d}/users/{u}/roles/{reader}", f"system/groups/{g}/roles/{reader}"):
        assert (await cloud.client.delete(f"{V3}/{path}", headers=w.h)).status_code == 204
        assert (await cloud.client.head(f"{V3}/{path}", headers=w.h)).status_code == 404
    dom_role = (await cloud.client.post(f"{V3}/roles", headers=w.h, json={"role": {
        "name": "dr", "domain_id": d}})).json()["role"]
    await w.put(f"system/users/{u}/roles/{dom_role['id']}", status=400)
    other = await w.project("elsewhere")
    await w.put(f"projects/{other}/users/{u}/roles/{dom_role['id']}", status=403)


async def test_grant_404s(cloud: Cloud) -> None:
    w = await _world(cloud)
    p, u = await w.project("p1"), await w.user("u1")
    d, g = await w.domain("d1"), await w.group("g1", [])
    member = w.roles["member"]
    cases = {
        f"projects/{p}/users/{u}/roles/nope": "Could not find role: nope.",
        f"projects/{p}/users/nope/roles/{member}": "Could not find user: nope.",
        f"projects/{p}/groups/nope/roles/{member}": "Could not find group: nope.",
        f"projects/nope/users/{u}/roles/{member}": "Could not find project: nope.",
        f"domains/nope/users/{u}/roles/{member}": "Could not find domain: nope.",
        f"domains/{p}/groups/{g}/roles/{member}": f"Could not find domain: {p}.",
        f"system/users/nope/roles/{member}": "Could not find user: nope.",
        f"OS-INHERIT/domains/{d}/users/{u}/roles/nope/inherited_to_projects":
            "Could not find role: nope.",
    }
    for path, message in cases.items():
        r = await cloud.client.put(f"{V3}/{path}", headers=w.h)
        assert r.status_code == 404, path
        assert r.json()["error"]["message"] == message, path
    r = await cloud.client.get(f"{V3}/projects/nope/users/{u}/roles", headers=w.h)
    assert r.status_code == 404


async def test_demo_is_refused(cloud: Cloud) -> None:
    w = await _world(cloud)
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    p, u = await w.project("p1"), await w.user("u1")
    path = f"{V3}/projects/{p}/users/{u}/roles/{w.roles['member']}"
    assert (await cloud.client.put(path, headers=demo)).status_code == 403
    await w.put(path.removeprefix(f"{V3}/"))
    assert (await cloud.client.delete(path, headers=demo)).status_code == 403
    assert (await cloud.client.head(path, headers=demo)).status_code == 403
    r = await cloud.client.put(f"{V3}/system/users/{u}/roles/{w.roles['member']}",
                               headers=demo)
    assert r.status_code == 403
    r = await cloud.client.get(f"{V3}/role_assignments", headers=demo)
    assert r.status_code == 403
    me = (await cloud.client.get(f"{V3}/auth/tokens", headers={
        **w.h, "X-Subject-Token": demo["X-Auth-Token"]})).json()["token"]["user"]["id"]
    r = await cloud.client.get(f"{V3}/role_assignments?user.id={me}", headers=demo)
    assert r.status_code == 403
    assert (await cloud.client.put(path)).status_code == 401


async def test_role_assignment_shapes_and_filters(cloud: Cloud) -> None:
    w = await _world(cloud)
    p, u = await w.project("p1"), await w.user("u1")
    g = await w.group("g1", [u])
    member, reader = w.roles["member"], w.roles["reader"]
    await w.put(f"projects/{p}/users/{u}/roles/{member}")
    await w.put(f"projects/{p}/groups/{g}/roles/{reader}")
    items = await w.assignments(f"scope.project.id={p}")
    root = "http://testserver/identity/v3"
    assert {"scope": {"project": {"id": p}}, "role": {"id": member}, "user": {"id": u},
            "links": {"assignment": f"{root}/projects/{p}/users/{u}/roles/{member}"}} in items
    assert {"scope": {"project": {"id": p}}, "role": {"id": reader}, "group": {"id": g},
            "links": {"assignment": f"{root}/projects/{p}/groups/{g}/roles/{reader}"}} in items
    assert len(items) == 2
    assert [x["role"]["id"] for x in await w.assignments(f"group.id={g}")] == [reader]
    assert [x["role"]["id"] for x in await w.assignments(f"role.id={member}&user.id={u}")] == [
        member]
    named = await w.assignments(f"user.id={u}&include_names")
    assert named == [{
        "scope": {"project": {"id": p, "name": "p1",
                              "domain": {"id": "default", "name": "Default"}}},
        "role": {"id": member, "name": "member"},
        "user": {"id": u, "name": "u1", "domain": {"id": "default", "name": "Default"}},
        "links": {"assignment": f"{root}/projects/{p}/users/{u}/roles/{member}"}}]
    for bad in ("user.id=a&group.id=b", "scope.project.id=a&scope.domain.id=b",
                "scope.system=all&scope.project.id=a", "effective&group.id=a",
                "effective&scope.domain.id=d&scope.OS-INHERIT:inherited_to=projects",
                "include_subtree"):
        r = await cloud.client.get(f"{V3}/role_assignments?{bad}", headers=w.h)
        assert r.status_code == 400, bad
    r = await cloud.client.get(f"{V3}/role_assignments?scope.project.id=nope&include_subtree",
                               headers=w.h)
    assert r.status_code == 404
    r = await cloud.client.head(f"{V3}/role_assignments", headers=w.h)
    assert r.status_code == 200 and r.content == b""


async def test_effective_expands_groups_and_implied_roles(cloud: Cloud) -> None:
    w = await _world(cloud)
    p, u = await w.project("p1"), await w.user("u1")
    g = await w.group("g1", [u])
    await w.put(f"projects/{p}/groups/{g}/roles/{w.roles['manager']}")
    items = await w.assignments(f"effective&user.id={u}&include_names")
    assert sorted(x["role"]["name"] for x in items) == ["manager", "member", "reader"]
    assert all(x["user"]["id"] == u for x in items)
    root = "http://testserver/identity/v3"
    manager = next(x for x in items if x["role"]["name"] == "manager")
    assert manager["links"] == {
        "assignment": f"{root}/projects/{p}/groups/{g}/roles/{w.roles['manager']}",
        "membership": f"{root}/groups/{g}/users/{u}"}
    reader = next(x for x in items if x["role"]["name"] == "reader")
    assert reader["links"]["assignment"].endswith(f"/groups/{g}/roles/{w.roles['member']}")
    assert "prior_role" in reader["links"]
    # without a user filter the group is expanded to its members too
    items = await w.assignments(f"effective&scope.project.id={p}")
    assert {x["user"]["id"] for x in items} == {u}
    # a domain role only implies: it never shows in effective lists
    dom = await w.domain("d1")
    dr = (await cloud.client.post(f"{V3}/roles", headers=w.h, json={"role": {
        "name": "dr", "domain_id": dom}})).json()["role"]
    other = await w.project("p2", domain=dom)
    await w.put(f"projects/{other}/users/{u}/roles/{dr['id']}")
    assert await w.assignments(f"effective&scope.project.id={other}") == []
    r = await cloud.client.put(f"{V3}/roles/{dr['id']}/implies/{w.roles['reader']}",
                               headers=w.h)
    assert r.status_code == 201
    items = await w.assignments(f"effective&scope.project.id={other}")
    assert [x["role"]["id"] for x in items] == [w.roles["reader"]]


async def test_inherited_grants(cloud: Cloud) -> None:
    w = await _world(cloud)
    d = await w.domain("d1")
    top = await w.project("top", domain=d)
    leaf = await w.project("leaf", domain=d, parent=top)
    u = await w.user("u1", domain=d)
    g = await w.group("g1", [u], domain=d)
    member = w.roles["member"]
    dom_path = f"OS-INHERIT/domains/{d}/users/{u}/roles/{member}/inherited_to_projects"
    await w.put(dom_path)
    assert (await cloud.client.head(f"{V3}/{dom_path}", headers=w.h)).status_code == 204
    r = await cloud.client.get(
        f"{V3}/OS-INHERIT/domains/{d}/users/{u}/roles/inherited_to_projects", headers=w.h)
    assert [x["id"] for x in r.json()["roles"]] == [member]
    # not a direct domain grant
    r = await cloud.client.get(f"{V3}/domains/{d}/users/{u}/roles", headers=w.h)
    assert r.json()["roles"] == []
    items = await w.assignments(f"user.id={u}")
    assert items[0]["scope"] == {"domain": {"id": d}, "OS-INHERIT:inherited_to": "projects"}
    assert items[0]["links"]["assignment"].endswith(f"/v3/{dom_path}")
    assert await w.assignments(f"user.id={u}&scope.OS-INHERIT:inherited_to=x") == []
    for project in (top, leaf):
        items = await w.assignments(f"effective&user.id={u}&scope.project.id={project}")
        assert {x["role"]["id"] for x in items} == {member, w.roles["reader"]}
        assert all(x["scope"]["OS-INHERIT:inherited_to"] == "projects" for x in items)
    token = await w.token(u, leaf)
    assert (await cloud.client.delete(f"{V3}/{dom_path}", headers=w.h)).status_code == 204
    assert await w.validate(token) == 404
    assert await w.assignments(f"effective&user.id={u}&scope.project.id={leaf}") == []

    proj_path = f"OS-INHERIT/projects/{top}/groups/{g}/roles/{member}/inherited_to_projects"
    await w.put(proj_path)
    assert await w.assignments(f"effective&user.id={u}&scope.project.id={top}") == []
    items = await w.assignments(f"effective&user.id={u}&scope.project.id={leaf}")
    prior = next(x for x in items if x["role"]["id"] == member)
    assert prior["links"]["assignment"].endswith(f"/v3/{proj_path}")
    assert prior["links"]["membership"].endswith(f"/groups/{g}/users/{u}")
    items = await w.assignments(f"scope.project.id={top}&include_subtree")
    assert len(items) == 1 and items[0]["group"]["id"] == g
    items = await w.assignments(f"effective&scope.project.id={top}&include_subtree")
    assert {x["scope"]["project"]["id"] for x in items} == {leaf}
    token = await w.token(u, leaf)
    assert (await cloud.client.delete(f"{V3}/{proj_path}", headers=w.h)).status_code == 204
    assert await w.validate(token) == 404


async def test_deleting_a_role_removes_its_assignments(cloud: Cloud) -> None:
    w = await _world(cloud)
    p, u = await w.project("p1"), await w.user("u1")
    role = (await cloud.client.post(f"{V3}/roles", headers=w.h,
                                    json={"role": {"name": "temp"}})).json()["role"]
    await w.put(f"projects/{p}/users/{u}/roles/{role['id']}")
    await w.put(f"projects/{p}/users/{u}/roles/{w.roles['reader']}")
    token = await w.token(u, p)
    assert (await cloud.client.delete(f"{V3}/roles/{role['id']}", headers=w.h)).status_code == 204
    assert await w.assignments(f"role.id={role['id']}") == []
    r = await cloud.client.get(f"{V3}/auth/tokens", headers={**w.h, "X-Subject-Token": token})
    assert r.status_code == 404 or "temp" not in {x["name"] for x in r.json()["token"]["roles"]}


async def test_domain_manager_and_reader(cloud: Cloud) -> None:
    w = await _world(cloud)
    d, elsewhere = await w.domain("d1"), await w.domain("d2")
    p, u = await w.project("p1", domain=d), await w.user("u1", domain=d)
    stranger = await w.user("u2", domain=elsewhere)
    boss = await w.user("boss", domain=d)
    await w.put(f"domains/{d}/users/{boss}/roles/{w.roles['manager']}")
    await w.put(f"projects/{p}/users/{stranger}/roles/{w.roles['reader']}")
    h = {"X-Auth-Token": await w.token(boss, d, scope="domain")}
    grant = f"{V3}/projects/{p}/users/{u}/roles/"
    assert (await cloud.client.put(grant + w.roles["member"], headers=h)).status_code == 204
    assert (await cloud.client.head(grant + w.roles["member"], headers=h)).status_code == 204
    assert (await cloud.client.put(grant + w.roles["admin"], headers=h)).status_code == 403
    r = await cloud.client.put(f"{V3}/projects/{p}/users/{stranger}/roles/{w.roles['member']}",
                               headers=h)
    assert r.status_code == 403
    r = await cloud.client.get(f"{V3}/roles", headers=h)
    assert r.status_code == 200
    assert (await cloud.client.get(f"{V3}/roles/{w.roles['member']}", headers=h)).status_code \
        == 200
    assert (await cloud.client.get(f"{V3}/roles/{w.roles['admin']}", headers=h)).status_code \
        == 403
    # a domain-scoped reader sees the assignments of its domain only
    r = await cloud.client.get(f"{V3}/role_assignments", headers=h)
    assert r.status_code == 200
    seen = {(x["scope"].get("project", x["scope"].get("domain", {})).get("id"))
            for x in r.json()["role_assignments"]}
    assert seen == {d, p}
    assert (await cloud.client.delete(grant + w.roles["member"], headers=h)).status_code == 204
