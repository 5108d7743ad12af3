"""Glance's default policy: owners and admins modify, members see shared images after
accepting, publicizing needs admin, community images, protected images."""

from __future__ import annotations

from typing import Any

from tests.functional.image.conftest import PATCH, ImageCloud


async def _ids(c: ImageCloud, user: str, project: str, query: str = "") -> set[str]:
    r = await c.client.get(f"/image/v2/images{query}", headers=await c.as_user(user, project))
    assert r.status_code == 200, r.text
    return {i["id"] for i in r.json()["images"]}


async def _patch(c: ImageCloud, image_id: str, ops: list[dict[str, Any]], user: str,
                 project: str) -> Any:
    h = await c.as_user(user, project)
    h["Content-Type"] = PATCH
    return await c.client.patch(f"/image/v2/images/{image_id}", headers=h, json=ops)


async def test_private_images_are_invisible_to_others(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create("admin", visibility="private", name="secret")
    assert (await c.show(img["id"], "demo")).status_code == 404
    assert img["id"] not in await _ids(c, "demo", "demo")
    h = await c.headers("demo", **{"Content-Type": "application/octet-stream"})
    r = await c.client.put(f"/image/v2/images/{img['id']}/file", headers=h, content=b"x")
    assert r.status_code == 404
    r = await c.client.delete(f"/image/v2/images/{img['id']}", headers=await c.headers("demo"))
    assert r.status_code == 404
    # an admin sees everything, whatever the project
    own = await c.create("demo", visibility="private", name="demo-secret")
    assert own["id"] in await _ids(c, "admin", "admin")


async def test_public_images_are_read_only_for_others(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create("admin", visibility="public", name="pub")
    await c.upload(img["id"], b"public bytes")
    assert img["id"] in await _ids(c, "demo", "demo")
    r = await c.client.get(f"/image/v2/images/{img['id']}/file",
                           headers=await c.headers("demo"))
    assert r.content == b"public bytes"
    r = await _patch(c, img["id"], [{"op": "replace", "path": "/name", "value": "x"}],
                     "demo", "demo")
    assert r.status_code == 403
    assert "You are not authorized to complete modify_image action." in r.json()["message"]
    r = await c.client.delete(f"/image/v2/images/{img['id']}", headers=await c.headers("demo"))
    assert r.status_code == 403
    r = await c.client.put(f"/image/v2/images/{img['id']}/tags/x",
                           headers=await c.headers("demo"))
    assert r.status_code == 403


async def test_publicize_needs_admin_communitize_does_not(image_cloud: ImageCloud) -> None:
    c = image_cloud
    r = await c.client.post("/image/v2/images", headers=await c.headers("demo"),
                            json={"visibility": "public"})
    assert r.status_code == 403 and "publicize_image" in r.text
    img = await c.create("demo", name="mine")
    r = await _patch(c, img["id"], [{"op": "replace", "path": "/visibility",
                                     "value": "public"}], "demo", "demo")
    assert r.status_code == 403
    r = await _patch(c, img["id"], [{"op": "replace", "path": "/visibility",
                                     "value": "community"}], "demo", "demo")
    assert r.status_code == 200 and r.json()["visibility"] == "community"
    r = await _patch(c, img["id"], [{"op": "replace", "path": "/visibility",
                                     "value": "public"}], "admin", "admin")
    assert r.status_code == 200


async def test_owner_changes(image_cloud: ImageCloud) -> None:
    c = image_cloud
    demo = await c.project_id("demo")
    r = await c.client.post("/image/v2/images", headers=await c.headers("demo"),
                            json={"owner": "someone-else"})
    assert r.status_code == 403 and "not permitted to create images owned by" in r.text
    img = await c.create("demo", name="o")
    r = await _patch(c, img["id"], [{"op": "replace", "path": "/owner", "value": "x"}],
                     "demo", "demo")
    assert r.status_code == 403 and "Owner can't be updated by non admin." in r.text
    r = await c.client.post("/image/v2/images", headers=await c.headers("admin"),
                            json={"owner": demo, "name": "for-demo"})
    assert r.status_code == 201 and r.json()["owner"] == demo
    assert r.json()["id"] in await _ids(c, "demo", "demo")


async def test_community_images_listing(image_cloud: ImageCloud) -> None:
    c = image_cloud
    await c.add_user("carol", "carol")
    img = await c.create("demo", visibility="community", name="comm")
    # others can use a community image but do not see it in the default list
    assert (await c.show(img["id"], "carol")).status_code == 200
    assert img["id"] not in await _ids(c, "carol", "carol")
    assert img["id"] in await _ids(c, "carol", "carol", "?visibility=community")
    assert img["id"] in await _ids(c, "demo", "demo")  # the owner sees it


async def test_reader_role(image_cloud: ImageCloud) -> None:
    c = image_cloud
    await c.add_user("rita", "rproject", role="reader")
    r = await c.client.post("/image/v2/images", headers=await c.as_user("rita", "rproject"),
                            json={"name": "x"})
    assert r.status_code == 403
    pub = await c.create("admin", visibility="public", name="p")
    await c.upload(pub["id"], b"z")
    assert pub["id"] in await _ids(c, "rita", "rproject")
    r = await c.client.get(f"/image/v2/images/{pub['id']}/file",
                           headers=await c.as_user("rita", "rproject"))
    assert r.status_code == 403  # download_image needs member


async def test_members_flow(image_cloud: ImageCloud) -> None:
    c = image_cloud
    await c.add_user("bob", "bobs")
    await c.add_user("eve", "eves")
    bobs = await c.project_id("bobs")
    eves = await c.project_id("eves")
    img = await c.create("demo", name="shared-one")
    iid = img["id"]
    demo = await c.headers("demo")
    base = f"/image/v2/images/{iid}/members"
    r = await c.client.post(base, headers=demo, json={"member": bobs})
    assert r.status_code == 200, r.text
    member = r.json()
    assert (member["member_id"], member["image_id"], member["status"]) == (bobs, iid,
                                                                           "pending")
    assert member["schema"] == "/v2/schemas/member"
    r = await c.client.post(base, headers=demo, json={"member": bobs})
    assert r.status_code == 409
    await c.client.post(base, headers=demo, json={"member": eves})
    bob = await c.as_user("bob", "bobs")
    # pending: visible by id, not listed unless asked
    assert (await c.show(iid, "bob", "bobs")).status_code == 200
    assert iid not in await _ids(c, "bob", "bobs")
    assert iid in await _ids(c, "bob", "bobs", "?member_status=pending&visibility=shared")
    assert iid in await _ids(c, "bob", "bobs", "?member_status=all")
    # the owner may not accept for the member
    r = await c.client.put(f"{base}/{bobs}", headers=demo, json={"status": "accepted"})
    assert r.status_code == 403
    r = await c.client.put(f"{base}/{bobs}", headers=bob, json={"status": "maybe"})
    assert r.status_code == 400
    r = await c.client.put(f"{base}/{bobs}", headers=bob, json={"status": "accepted"})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert iid in await _ids(c, "bob", "bobs")
    # a member sees only its own membership, cannot touch another's, cannot add members
    r = await c.client.get(base, headers=bob)
    assert [m["member_id"] for m in r.json()["members"]] == [bobs]
    assert r.json()["schema"] == "/v2/schemas/members"
    assert (await c.client.get(f"{base}/{eves}", headers=bob)).status_code == 404
    r = await c.client.put(f"{base}/{eves}", headers=bob, json={"status": "accepted"})
    assert r.status_code == 404
    r = await c.client.post(base, headers=bob, json={"member": bobs})
    assert r.status_code == 403
    # the owner sees all of them
    r = await c.client.get(base, headers=demo)
    assert sorted(m["member_id"] for m in r.json()["members"]) == sorted([bobs, eves])
    # a member can download but not modify
    await c.upload(iid, b"shared data", user="demo")
    r = await c.client.get(f"/image/v2/images/{iid}/file", headers=bob)
    assert r.content == b"shared data"
    h = {**bob, "Content-Type": PATCH}
    r = await c.client.patch(f"/image/v2/images/{iid}", headers=h,
                             json=[{"op": "replace", "path": "/name", "value": "mine"}])
    assert r.status_code == 403
    # rejecting hides it from the list again
    r = await c.client.put(f"{base}/{bobs}", headers=bob, json={"status": "rejected"})
    assert iid not in await _ids(c, "bob", "bobs")
    # removing the member hides the image entirely
    assert (await c.client.delete(f"{base}/{bobs}", headers=demo)).status_code == 204
    assert (await c.show(iid, "bob", "bobs")).status_code == 404
    assert (await c.client.delete(f"{base}/{bobs}", headers=demo)).status_code == 404


async def test_members_need_a_shared_image(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create("demo", visibility="private")
    base = f"/image/v2/images/{img['id']}/members"
    r = await c.client.post(base, headers=await c.headers("demo"), json={"member": "p"})
    assert r.status_code == 403 and "Only shared images have members." in r.text
    r = await c.client.get(base, headers=await c.headers("demo"))
    assert r.status_code == 403
    for body in ({}, {"member": ""}, {"member": 5}):
        shared = await c.create("demo")
        r = await c.client.post(f"/image/v2/images/{shared['id']}/members",
                                headers=await c.headers("demo"), json=body)
        assert r.status_code == 400


async def test_member_limit(image_cloud: ImageCloud) -> None:
    c = image_cloud
    c.images.conf.member_quota = 1
    img = await c.create("demo")
    base = f"/image/v2/images/{img['id']}/members"
    h = await c.headers("demo")
    assert (await c.client.post(base, headers=h, json={"member": "p1"})).status_code == 200
    assert (await c.client.post(base, headers=h, json={"member": "p2"})).status_code == 413

