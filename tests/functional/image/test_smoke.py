from __future__ import annotations

import hashlib

from tests.functional.image.conftest import ImageCloud


async def test_smoke(image_cloud: ImageCloud) -> None:
    c = image_cloud
    h = await c.headers("admin")
    r = await c.client.get("/image/", headers=h)
    assert r.status_code == 300, r.text
    img = await c.create(name="one")
    assert img["status"] == "queued"
    data = b"hello world" * 1000
    await c.upload(img["id"], data)
    r = await c.show(img["id"])
    body = r.json()
    assert body["status"] == "active", body
    assert body["checksum"] == hashlib.md5(data).hexdigest()
    assert body["os_hash_value"] == hashlib.sha512(data).hexdigest()
    r = await c.client.get(f"/image/v2/images/{img['id']}/file", headers=h)
    assert r.content == data
    r = await c.client.get("/image/v2/images", headers=h)
    assert [i["id"] for i in r.json()["images"]] == [img["id"]]
