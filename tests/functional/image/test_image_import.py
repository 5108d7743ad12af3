"""Interoperable image import (glance-direct, web-download), image tasks and the tasks API."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from collections.abc import Iterator

import pytest

from tests.functional.image.conftest import ImageCloud
from tests.unit.image.test_inspect import qcow2

OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture
def web() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A loopback HTTP server serving ``files`` (path -> bytes)."""
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


async def _stage(c: ImageCloud, image_id: str, data: bytes, user: str = "admin") -> int:
    r = await c.client.put(f"/image/v2/images/{image_id}/stage",
                           headers=await c.headers(user, **OCTET), content=data)
    return r.status_code


async def _import(c: ImageCloud, image_id: str, body: dict[str, object],
                  user: str = "admin") -> tuple[int, str, str]:
    r = await c.client.post(f"/image/v2/images/{image_id}/import",
                            headers=await c.headers(user), json=body)
    return r.status_code, r.text, r.headers.get("x-openstack-request-id", "")


async def test_glance_direct(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="direct", disk_format="qcow2")
    data = qcow2(size=3 << 30)
    assert await _stage(c, img["id"], data) == 204
    body = (await c.show(img["id"])).json()
    assert body["status"] == "uploading" and body["size"] == len(data)
    assert await _stage(c, img["id"], data) == 409
    status, text, request_id = await _import(c, img["id"], {"method": {"name": "glance-direct"}})
    assert status == 202, text
    await c.images.idle()
    body = (await c.show(img["id"])).json()
    assert body["status"] == "active"
    assert body["virtual_size"] == 3 << 30
    assert body["checksum"] == hashlib.md5(data).hexdigest()
    assert body["os_glance_failed_import"] == "" and body["os_glance_importing_to_stores"] == ""
    assert "os_glance_import_task" not in body
    assert body["stores"] == "file"
    assert list((c.config.data_dir / "image-staging").glob("*-*")) == []
    r = await c.client.get(f"/image/v2/images/{img['id']}/tasks", headers=await c.headers())
    tasks = r.json()["tasks"]
    assert len(tasks) == 1
    task = tasks[0]
    assert task["status"] == "success" and task["type"] == "api_image_import"
    assert task["request_id"] == request_id
    assert task["input"]["import_req"]["method"]["name"] == "glance-direct"
    r = await c.client.get(f"/image/v2/images/{img['id']}/file", headers=await c.headers())
    assert r.content == data


async def test_import_refusals(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="r")
    iid = img["id"]
    for body, status, says in (
            ({}, 400, "requires a 'method' field"),
            ({"method": {}}, 400, "requires a 'name' field"),
            ({"method": {"name": "copy-image"}}, 400, "Unknown import method name"),
            ({"method": {"name": "glance-direct"}, "all_stores": "yes"}, 400, "boolean"),
            ({"method": {"name": "glance-direct"}}, 409, "needs to be staged"),
            ({"method": {"name": "web-download", "uri": "http://does-not.exist/x"}}, 400,
             "does not pass filtering: http://does-not.exist/x"),
            ({"method": {"name": "web-download", "uri": "file:///etc/passwd"}}, 400,
             "does not pass filtering"),
            ({"method": {"name": "glance-direct"}, "stores": ["nowhere"]}, 409,
             "Unknown scheme")):
        s, text, _ = await _import(c, iid, body)
        assert s == status, (body, text)
        assert says in text, (body, text)
    noformat = await c.create(name="nf", disk_format=None, container_format=None)
    assert await _stage(c, noformat["id"], b"x") == 204
    s, text, _ = await _import(c, noformat["id"], {"method": {"name": "glance-direct"}})
    assert s == 409 and "needs to be set before import" in text
    # not the owner
    s, _, _ = await _import(c, iid, {"method": {"name": "glance-direct"}}, user="demo")
    assert s == 404


async def test_failed_import_reverts_to_queued(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="bad", disk_format="qcow2")
    assert await _stage(c, img["id"], qcow2(backing=512)) == 204
    s, text, _ = await _import(c, img["id"], {"method": {"name": "glance-direct"}})
    assert s == 202, text
    await c.images.idle()
    body = (await c.show(img["id"])).json()
    assert body["status"] == "queued" and body["size"] is None
    assert body["os_glance_failed_import"] == "file"
    assert list((c.config.data_dir / "images").glob("*-*")) == []
    r = await c.client.get(f"/image/v2/images/{img['id']}/tasks", headers=await c.headers())
    task = r.json()["tasks"][0]
    assert task["status"] == "failure" and "backing file" in task["message"]
    # it can be staged and imported again
    assert await _stage(c, img["id"], qcow2()) == 204
    s, _, _ = await _import(c, img["id"], {"method": {"name": "glance-direct"}})
    assert s == 202
    await c.images.idle()
    assert (await c.show(img["id"])).json()["status"] == "active"


async def test_web_download(image_cloud: ImageCloud, web: tuple[str, dict[str, bytes]]
                            ) -> None:
    c = image_cloud
    base, files = web
    data = os.urandom(3 << 20)
    files["/disk.raw"] = data
    img = await c.create(name="web")
    s, text, _ = await _import(c, img["id"], {"method": {"name": "web-download",
                                                         "uri": f"{base}/disk.raw"}})
    assert s == 202, text
    await c.images.idle()
    body = (await c.show(img["id"])).json()
    assert body["status"] == "active" and body["size"] == len(data)
    assert body["os_hash_value"] == hashlib.sha512(data).hexdigest()
    # a URL that answers 404: the import fails, the image is queued again
    other = await c.create(name="web404")
    s, _, _ = await _import(c, other["id"], {"method": {"name": "web-download",
                                                        "uri": f"{base}/missing"}})
    assert s == 202
    await c.images.idle()
    body = (await c.show(other["id"])).json()
    assert body["status"] == "queued" and body["os_glance_failed_import"] == "file"


async def test_import_lock(image_cloud: ImageCloud, web: tuple[str, dict[str, bytes]]
                           ) -> None:
    """Only one import at a time per image."""
    from sqlalchemy import insert

    from stackling.image.models import ImageProperty

    c = image_cloud
    img = await c.create(name="lock")
    async with c.images.db.write() as session:
        await session.execute(insert(ImageProperty).values(
            image_id=img["id"], name="os_glance_import_task", value="another-task"))
    base, files = web
    files["/x"] = b"x"
    s, text, _ = await _import(c, img["id"], {"method": {"name": "web-download",
                                                         "uri": f"{base}/x"}})
    assert s == 409 and "prior operation is still in progress" in text


async def test_delete_staged_image_removes_staged_data(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="s")
    assert await _stage(c, img["id"], b"staged bytes") == 204
    assert (c.config.data_dir / "image-staging" / img["id"]).exists()
    r = await c.client.delete(f"/image/v2/images/{img['id']}", headers=await c.headers())
    assert r.status_code == 204
    assert not (c.config.data_dir / "image-staging" / img["id"]).exists()


async def test_tasks_api(image_cloud: ImageCloud, web: tuple[str, dict[str, bytes]]) -> None:
    c = image_cloud
    base, files = web
    files["/legacy.raw"] = b"legacy import"
    h = await c.headers()
    assert (await c.client.get("/image/v2/tasks", headers=await c.headers("demo"))).\
        status_code == 403
    body = {"type": "import", "input": {
        "import_from": f"{base}/legacy.raw", "import_from_format": "raw",
        "image_properties": {"name": "legacy", "disk_format": "raw",
                             "container_format": "bare"}}}
    r = await c.client.post("/image/v2/tasks", headers=h, json=body)
    assert r.status_code == 201, r.text
    task = r.json()
    assert r.headers["Location"] == f"/v2/tasks/{task['id']}"
    await c.images.idle()
    r = await c.client.get(f"/image/v2/tasks/{task['id']}", headers=h)
    done = r.json()
    assert done["status"] == "success", done
    image = (await c.show(done["result"]["image_id"])).json()
    assert image["name"] == "legacy" and image["status"] == "active"
    r = await c.client.get("/image/v2/tasks?limit=1", headers=h)
    listed = r.json()
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    assert "input" not in listed["tasks"][0] and "next" in listed
    bad = dict(body, input={**body["input"], "import_from": "http://example.com/x.qcow2"})
    r = await c.client.post("/image/v2/tasks", headers=h, json=bad)
    assert r.status_code == 400
    r = await c.client.post("/image/v2/tasks", headers=h, json={"type": "import"})
    assert r.status_code == 400
    assert (await c.client.delete(f"/image/v2/tasks/{task['id']}", headers=h)).status_code \
        == 405
    assert (await c.client.get("/image/v2/tasks/00000000-0000-0000-0000-000000000000",
                               headers=h)).status_code == 404
    for bad_query in ("?status=done", "?marker=x", "?limit=-1", "?sort_dir=up"):
        assert (await c.client.get(f"/image/v2/tasks{bad_query}", headers=h)).status_code \
            == 400
