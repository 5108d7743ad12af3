"""Glance v2 images API: discovery, create, show, list (filters, sort, pages), JSON patch,
delete, deactivate/reactivate, tags, schemas, info, error bodies."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.image.conftest import PATCH, ImageCloud

V20 = "application/openstack-images-v2.0-json-patch"


async def test_version_discovery(image_cloud: ImageCloud) -> None:
    c = image_cloud
    r = await c.client.get("/image/")
    assert r.status_code == 300
    versions = r.json()["versions"]
    assert versions[0] == {"id": "v2.13", "status": "CURRENT", "links": [
        {"rel": "self", "href": "http://testserver/image/v2/"}]}
    assert {v["id"] for v in versions} >= {"v2.0", "v2.6", "v2.12"}
    assert (await c.client.get("/image/versions")).status_code == 200
    assert (await c.client.get("/image/v2")).status_code == 300
    r = await c.client.get("/image/", headers={"X-Forwarded-Host": "cloud.example:8443",
                                               "X-Forwarded-Proto": "https"})
    assert r.json()["versions"][0]["links"][0]["href"] == "https://cloud.example:8443/image/v2/"


async def test_create_defaults_and_headers(image_cloud: ImageCloud) -> None:
    c = image_cloud
    r = await c.client.post("/image/v2/images", headers=await c.headers(),
                            json={"name": "a", "tags": ["x", "x", "y"], "os_distro": "debian"})
    assert r.status_code == 201, r.text
    img = r.json()
    assert img["status"] == "queued" and img["visibility"] == "shared"
    assert img["size"] is None and img["checksum"] is None and img["virtual_size"] is None
    assert sorted(img["tags"]) == ["x", "y"]
    assert img["os_distro"] == "debian"
    assert img["self"] == f"/v2/images/{img['id']}" and img["file"].endswith("/file")
    assert img["schema"] == "/v2/schemas/image"
    assert img["owner"] == await c.project_id("admin")
    assert "stores" not in img
    assert r.headers["Location"] == f"http://testserver/image/v2/images/{img['id']}"
    assert r.headers["OpenStack-image-import-methods"] == "glance-direct,web-download"
    assert r.headers["OpenStack-image-store-ids"] == "file"
    assert r.headers["x-openstack-request-id"].startswith("req-")


async def test_create_with_id_and_duplicate(image_cloud: ImageCloud) -> None:
    c = image_cloud
    iid = "0b6a1f2d-9b1e-4b8a-9d1c-2f3e4a5b6c7d"
    await c.create(id=iid)
    r = await c.client.post("/image/v2/images", headers=await c.headers(), json={"id": iid})
    assert r.status_code == 409
    await c.client.delete(f"/image/v2/images/{iid}", headers=await c.headers())
    # a deleted image's id is never reused
    r = await c.client.post("/image/v2/images", headers=await c.headers(), json={"id": iid})
    assert r.status_code == 409


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"disk_format": "wrong"}, 400, "is not one of"),
    ({"container_format": "wrong"}, 400, "is not one of"),
    ({"name": "x" * 256}, 400, "is too long"),
    ({"min_ram": "1"}, 400, "is not of type 'integer'"),
    ({"protected": "yes"}, 400, "is not of type 'boolean'"),
    ({"foo": 1}, 400, "is not of type 'string'"),
    ({"kernel_id": "not-a-uuid"}, 400, "does not match"),
    ({"id": "bad"}, 400, "does not match"),
    ({"k" * 256: "v"}, 400, "should not be greater than 255"),
    ({"status": "active"}, 403, "Attribute 'status' is read-only."),
    ({"size": 3}, 403, "read-only"),
    ({"self": "x"}, 403, "read-only"),
    ({"location": "x"}, 403, "Attribute 'location' is reserved."),
    ({"os_glance_foo": "bar"}, 403, "Attribute 'os_glance_foo' is reserved."),
    ({"min_disk": -1}, 400, "Cannot be a negative value"),
    ({"tags": [1]}, 400, "is not of type 'string'"),
])
async def test_create_is_validated(image_cloud: ImageCloud, body: dict[str, Any], status: int,
                                   says: str) -> None:
    c = image_cloud
    r = await c.client.post("/image/v2/images", headers=await c.headers(), json=body)
    assert r.status_code == status, r.text
    assert says in r.json()["message"]


async def test_errors_have_glance_body(image_cloud: ImageCloud) -> None:
    c = image_cloud
    r = await c.client.get("/image/v2/images/00000000-0000-0000-0000-000000000000",
                           headers=await c.headers())
    assert r.status_code == 404
    assert r.json() == {
        "message": "No image found with ID 00000000-0000-0000-0000-000000000000"
                   "<br /><br />\n\n\n",
        "code": "404 Not Found", "title": "Not Found"}
    assert (await c.client.get("/image/v2/images/", headers=await c.headers())).status_code \
        == 404
    r = await c.client.get("/image/v2/images")
    assert r.status_code == 401
    r = await c.client.post("/image/v2/images", headers=await c.headers(), content=b"{bad")
    assert r.status_code == 400 and "Malformed JSON" in r.json()["message"]


async def _names(c: ImageCloud, query: str = "", user: str = "admin") -> list[str]:
    r = await c.client.get(f"/image/v2/images{query}", headers=await c.headers(user))
    assert r.status_code == 200, r.text
    return [i["name"] for i in r.json()["images"]]


async def test_list_filters(image_cloud: ImageCloud) -> None:
    c = image_cloud
    a = await c.create(name="alpha", tags=["red", "big"], os_distro="debian",
                       visibility="public", min_ram=512)
    await c.upload(a["id"], b"a" * 3000)
    b = await c.create(name="beta", disk_format="qcow2", tags=["red"], protected=True)
    await c.create(name="gamma", visibility="private", os_hidden=True)
    await c.create(name="delta,x", container_format="ova")
    assert sorted(await _names(c)) == ["alpha", "beta", "delta,x"]
    assert await _names(c, "?name=alpha") == ["alpha"]
    assert sorted(await _names(c, '?name=in:alpha,"delta,x"')) == ["alpha", "delta,x"]
    assert await _names(c, "?status=active") == ["alpha"]
    assert sorted(await _names(c, "?status=in:active,queued")) == ["alpha", "beta", "delta,x"]
    assert await _names(c, "?disk_format=qcow2") == ["beta"]
    assert await _names(c, "?container_format=ova") == ["delta,x"]
    assert await _names(c, "?visibility=public") == ["alpha"]
    assert await _names(c, "?tag=red&tag=big") == ["alpha"]
    assert sorted(await _names(c, "?tag=red")) == ["alpha", "beta"]
    assert await _names(c, "?size_min=2000&size_max=4000") == ["alpha"]
    assert await _names(c, "?size=3000") == ["alpha"]
    assert await _names(c, "?min_ram=512") == ["alpha"]
    assert await _names(c, "?protected=true") == ["beta"]
    assert await _names(c, "?os_hidden=true") == ["gamma"]
    assert await _names(c, "?os_distro=debian") == ["alpha"]
    assert await _names(c, f"?id={b['id']}") == ["beta"]
    assert await _names(c, f"?owner={await c.project_id('admin')}&name=beta") == ["beta"]
    checksum = (await c.show(a["id"])).json()["checksum"]
    assert await _names(c, f"?checksum={checksum}") == ["alpha"]
    for bad, says in (("?protected=maybe", "Invalid value 'maybe' for 'protected'"),
                      ("?os_hidden=1", "Invalid value '1' for 'os_hidden'"),
                      ("?visibility=everyone", "Invalid visibility value"),
                      ("?name=op:x", "Unable to filter by unknown operator 'op'."),
                      ("?size_min=big", "non-numeric"),
                      ("?member_status=maybe", "Invalid status"),
                      ("?changes-since=2020-01-01", "no longer available"),
                      ("?created_at=gt:yesterday", "ISO 8601")):
        r = await c.client.get(f"/image/v2/images{bad}", headers=await c.headers())
        assert r.status_code == 400, (bad, r.text)
        assert says in r.json()["message"], (bad, r.text)
    assert sorted(await _names(c, "?created_at=gt:2000-01-01T00:00:00Z")) == \
        ["alpha", "beta", "delta,x"]


async def test_sort_and_pagination(image_cloud: ImageCloud) -> None:
    c = image_cloud
    for name, size in (("c", 30), ("a", 10), ("e", None), ("b", 20), ("d", 40)):
        img = await c.create(name=name)
        if size:
            await c.upload(img["id"], b"x" * size)
    assert await _names(c) == ["d", "b", "e", "a", "c"]  # created_at desc
    assert await _names(c, "?sort=name:asc") == ["a", "b", "c", "d", "e"]
    assert await _names(c, "?sort_key=name&sort_dir=asc") == ["a", "b", "c", "d", "e"]
    assert await _names(c, "?sort=size:desc,name") == ["d", "c", "b", "a", "e"]
    assert await _names(c, "?sort_key=size&sort_dir=asc&sort_key=name") == \
        ["e", "a", "b", "c", "d"]
    # walk the pages by following "next"
    seen: list[str] = []
    url = "/image/v2/images?limit=2&sort=name:asc"
    while url:
        r = await c.client.get(url, headers=await c.headers())
        body = r.json()
        seen += [i["name"] for i in body["images"]]
        assert body["first"] == "/v2/images?limit=2&sort=name%3Aasc"
        url = "/image" + body["next"] if "next" in body else ""
    assert seen == ["a", "b", "c", "d", "e"]
    # sorted by a key with NULLs, in both directions
    for direction in ("asc", "desc"):
        names: list[str] = []
        url = f"/image/v2/images?limit=1&sort=size:{direction}"
        while url:
            body = (await c.client.get(url, headers=await c.headers())).json()
            names += [i["name"] for i in body["images"]]
            url = "/image" + body["next"] if "next" in body else ""
        expect = ["e", "a", "b", "c", "d"]
        assert names == (expect if direction == "asc" else expect[::-1])
    assert await _names(c, "?limit=0") == []
    for bad in ("?limit=-1", "?limit=x", "?sort_key=owner", "?sort_dir=up",
                "?sort=name&sort_key=name", "?marker=00000000-0000-0000-0000-000000000000",
                "?sort_key=name&sort_key=size&sort_dir=asc&sort_dir=desc&sort_dir=asc"):
        r = await c.client.get(f"/image/v2/images{bad}", headers=await c.headers())
        assert r.status_code == 400, (bad, r.text)


async def _patch(c: ImageCloud, image_id: str, ops: list[dict[str, Any]],
                 media: str = PATCH, user: str = "admin") -> Any:
    return await c.client.patch(f"/image/v2/images/{image_id}",
                                headers=await c.headers(user, **{"Content-Type": media}),
                                json=ops)


async def test_json_patch(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="p", os_distro="debian")
    iid = img["id"]
    r = await _patch(c, iid, [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "add", "path": "/os_version", "value": "12"},
        {"op": "add", "path": "/os_distro", "value": "ubuntu"},  # v2.1 add = set
        {"op": "replace", "path": "/tags", "value": ["t1", "t2"]},
        {"op": "replace", "path": "/min_disk", "value": 5},
        {"op": "add", "path": "/a~1b", "value": "slash"},
        {"op": "replace", "path": "/disk_format", "value": "qcow2"},
    ])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["name"], body["os_version"], body["os_distro"], body["min_disk"]) == \
        ("renamed", "12", "ubuntu", 5)
    assert sorted(body["tags"]) == ["t1", "t2"] and body["a/b"] == "slash"
    assert body["disk_format"] == "qcow2"
    r = await _patch(c, iid, [{"op": "remove", "path": "/os_version"}])
    assert "os_version" not in r.json()
    # the v2.0 dialect: {"<op>": path}; adding an existing property is a conflict
    r = await _patch(c, iid, [{"replace": "/name", "value": "old-style"}], media=V20)
    assert r.status_code == 200 and r.json()["name"] == "old-style"
    r = await _patch(c, iid, [{"add": "/os_distro", "value": "x"}], media=V20)
    assert r.status_code == 409
    r = await _patch(c, iid, [])
    assert r.status_code == 200


@pytest.mark.parametrize(("ops", "status", "says"), [
    ([{"op": "remove", "path": "/name"}], 403, "Property name may not be removed."),
    ([{"op": "replace", "path": "/nope", "value": "x"}], 409, "Property nope does not exist."),
    ([{"op": "remove", "path": "/nope"}], 409, "Property nope does not exist."),
    ([{"op": "replace", "path": "/status", "value": "active"}], 403, "read-only"),
    ([{"op": "replace", "path": "/checksum", "value": "x"}], 403, "read-only"),
    ([{"op": "add", "path": "/os_glance_x", "value": "y"}], 403, "is reserved"),
    ([{"op": "add", "path": "/deleted", "value": "y"}], 403, "is reserved"),
    ([{"op": "replace", "path": "/visibility", "value": "secret"}], 400, "is not one of"),
    ([{"op": "replace", "path": "/min_ram", "value": -5}], 400, "negative"),
    ([{"op": "add", "path": "/foo", "value": 5}], 400, "is not of type 'string'"),
    ([{"op": "move", "path": "/name"}], 400, "Invalid operation"),
    ([{"path": "/name"}], 400, "Unable to find `op`"),
    ([{"op": "add", "path": "name", "value": "x"}], 400, 'does not start with "/"'),
    ([{"op": "add", "path": "/a/b", "value": "x"}], 400, "Invalid JSON pointer"),
    ([{"op": "add", "path": "/name"}], 400, 'requires a member named "value"'),
    ([{"op": "add", "path": "/locations/-", "value": {"url": "http://x", "metadata": {}}}],
     403, "locations are invisible"),
    ({"op": "add"}, 400, "JSON array"),
])
async def test_json_patch_refusals(image_cloud: ImageCloud, ops: Any, status: int,
                                   says: str) -> None:
    c = image_cloud
    img = await c.create(name="p")
    r = await _patch(c, img["id"], ops)
    assert r.status_code == status, r.text
    assert says in r.json()["message"]


async def test_patch_media_type_and_state_rules(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="m")
    r = await _patch(c, img["id"], [{"op": "replace", "path": "/name", "value": "x"}],
                     media="application/json")
    assert r.status_code == 415
    assert r.headers["Accept-Patch"] == ("application/openstack-images-v2.0-json-patch, "
                                         "application/openstack-images-v2.1-json-patch")
    await c.upload(img["id"], b"data")
    r = await _patch(c, img["id"], [{"op": "replace", "path": "/disk_format",
                                     "value": "qcow2"}])
    assert r.status_code == 403 and "can be only replaced for a queued image" in r.text
    r = await _patch(c, img["id"], [{"op": "replace", "path": "/disk_format", "value": "raw"}])
    assert r.status_code == 200  # unchanged is fine


async def test_delete_protected_and_deleted(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="keep", protected=True)
    h = await c.headers()
    r = await c.client.delete(f"/image/v2/images/{img['id']}", headers=h)
    assert r.status_code == 403 and "is protected and cannot be deleted" in r.text
    await _patch(c, img["id"], [{"op": "replace", "path": "/protected", "value": False}])
    assert (await c.client.delete(f"/image/v2/images/{img['id']}", headers=h)).status_code \
        == 204
    assert (await c.show(img["id"])).status_code == 404
    r = await c.client.delete(f"/image/v2/images/{img['id']}", headers=h)
    assert r.status_code == 404 and "Failed to find image" in r.text
    assert await _names(c) == []


async def test_deactivate_reactivate(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="d", visibility="public")
    iid = img["id"]
    h = await c.headers()
    r = await c.client.post(f"/image/v2/images/{iid}/actions/deactivate", headers=h)
    assert r.status_code == 403 and "status 'queued'" in r.text
    await c.upload(iid, b"payload")
    for _ in range(2):  # idempotent
        r = await c.client.post(f"/image/v2/images/{iid}/actions/deactivate", headers=h)
        assert r.status_code == 204
    assert (await c.show(iid)).json()["status"] == "deactivated"
    demo = await c.headers("demo")
    r = await c.client.get(f"/image/v2/images/{iid}/file", headers=demo)
    assert r.status_code == 403 and "deactivated" in r.text
    # an admin still reads it
    assert (await c.client.get(f"/image/v2/images/{iid}/file", headers=h)).content == \
        b"payload"
    r = await c.client.post(f"/image/v2/images/{iid}/actions/deactivate", headers=demo)
    assert r.status_code == 403
    r = await c.client.post(f"/image/v2/images/{iid}/actions/reactivate", headers=h)
    assert r.status_code == 204
    assert (await c.client.get(f"/image/v2/images/{iid}/file", headers=demo)).content == \
        b"payload"


async def test_tags_api(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="t")
    h = await c.headers()
    base = f"/image/v2/images/{img['id']}/tags"
    assert (await c.client.put(f"{base}/blue", headers=h)).status_code == 204
    assert (await c.client.put(f"{base}/blue", headers=h)).status_code == 204
    assert (await c.show(img["id"])).json()["tags"] == ["blue"]
    assert (await c.client.delete(f"{base}/blue", headers=h)).status_code == 204
    assert (await c.client.delete(f"{base}/blue", headers=h)).status_code == 404
    assert (await c.client.put(f"{base}/{'x' * 256}", headers=h)).status_code == 400
    missing = "/image/v2/images/00000000-0000-0000-0000-000000000000/tags/x"
    assert (await c.client.put(missing, headers=h)).status_code == 404


async def test_property_and_tag_limits(image_cloud: ImageCloud) -> None:
    c = image_cloud
    c.images.conf.property_quota = 2
    c.images.conf.tag_quota = 1
    r = await c.client.post("/image/v2/images", headers=await c.headers(),
                            json={"a": "1", "b": "2", "c": "3"})
    assert r.status_code == 413
    img = await c.create(a="1", tags=["x"])
    h = await c.headers()
    assert (await c.client.put(f"/image/v2/images/{img['id']}/tags/y", headers=h)).\
        status_code == 413
    r = await _patch(c, img["id"], [{"op": "add", "path": "/b", "value": "2"},
                                    {"op": "add", "path": "/c", "value": "3"}])
    assert r.status_code == 413


@pytest.mark.parametrize(("path", "name"), [
    ("image", "image"), ("images", "images"), ("member", "member"), ("members", "members"),
    ("task", "task"), ("tasks", "tasks"), ("metadefs/namespace", "namespace"),
    ("metadefs/namespaces", "namespaces"),
    ("metadefs/resource_type", "resource_type_association"),
    ("metadefs/resource_types", "resource_type_associations"), ("metadefs/object", "object"),
    ("metadefs/objects", "objects"), ("metadefs/property", "property"),
    ("metadefs/properties", "properties"), ("metadefs/tag", "tag"), ("metadefs/tags", "tags"),
])
async def test_schemas(image_cloud: ImageCloud, path: str, name: str) -> None:
    c = image_cloud
    r = await c.client.get(f"/image/v2/schemas/{path}", headers=await c.headers("demo"))
    assert r.status_code == 200
    assert r.json()["name"] == name


async def test_image_schema_content(image_cloud: ImageCloud) -> None:
    c = image_cloud
    schema = (await c.client.get("/image/v2/schemas/image", headers=await c.headers())).json()
    props = schema["properties"]
    assert schema["additionalProperties"] == {"type": "string"}
    assert props["disk_format"]["enum"][0] is None and "qcow2" in props["disk_format"]["enum"]
    assert props["kernel_id"]["is_base"] is False
    assert (await c.client.get("/image/v2/schemas/nope", headers=await c.headers())).\
        status_code == 404


async def test_info(image_cloud: ImageCloud) -> None:
    c = image_cloud
    demo = await c.headers("demo")
    r = await c.client.get("/image/v2/info/import", headers=demo)
    assert r.json()["import-methods"]["value"] == ["glance-direct", "web-download"]
    r = await c.client.get("/image/v2/info/stores", headers=demo)
    assert r.json() == {"stores": [{"id": "file", "description": "file store",
                                    "default": "true"}]}
    assert (await c.client.get("/image/v2/info/stores/detail", headers=demo)).status_code \
        == 403
    r = await c.client.get("/image/v2/info/stores/detail", headers=await c.headers())
    assert r.json()["stores"][0]["type"] == "file"
    r = await c.client.get("/image/v2/info/usage", headers=demo)
    assert r.json()["usage"]["image_count_total"] == {"usage": 0, "limit": -1}
