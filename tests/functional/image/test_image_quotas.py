"""Per-project image quotas, enforced under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from stackling.common.config import ImageQuotaConfig
from tests.functional.image.conftest import ImageCloud

OCTET = {"Content-Type": "application/octet-stream"}
KIB = 1024


def quota(c: ImageCloud, **limits: int) -> None:
    c.images.conf.quotas = ImageQuotaConfig(**limits)


async def test_image_count_under_concurrency(image_cloud: ImageCloud) -> None:
    c = image_cloud
    quota(c, image_count_total=3)
    h = await c.headers("demo")
    results = await asyncio.gather(*[
        c.client.post("/image/v2/images", headers=h, json={"name": f"i{i}"})
        for i in range(10)])
    codes = sorted(r.status_code for r in results)
    assert codes == [201] * 3 + [413] * 7
    refused = next(r for r in results if r.status_code == 413)
    assert "is over a limit for [Resource image_count_total is over limit of 3 due to " \
           "current usage 3 and delta 1]" in refused.json()["message"]
    # deleting one makes room for one
    first = next(r for r in results if r.status_code == 201).json()
    await c.client.delete(f"/image/v2/images/{first['id']}", headers=h)
    assert (await c.client.post("/image/v2/images", headers=h, json={})).status_code == 201
    assert (await c.client.post("/image/v2/images", headers=h, json={})).status_code == 413
    # other projects have their own count; per-project overrides win
    assert (await c.client.post("/image/v2/images", headers=await c.headers(),
                                json={})).status_code == 201
    demo = await c.project_id("demo")
    c.images.conf.project_quotas = {demo: ImageQuotaConfig(image_count_total=10)}
    assert (await c.client.post("/image/v2/images", headers=h, json={})).status_code == 201
    r = await c.client.get("/image/v2/info/usage", headers=h)
    assert r.json()["usage"]["image_count_total"] == {"usage": 4, "limit": 10}


async def test_image_size_total(image_cloud: ImageCloud) -> None:
    c = image_cloud
    quota(c, image_size_total=1)  # MiB
    a = await c.create("demo")
    b = await c.create("demo")
    await c.upload(a["id"], b"a" * (700 * KIB), user="demo")
    r = await c.upload(b["id"], b"b" * (700 * KIB), user="demo", expect=413)
    assert "image_size_total is over limit of 1" in r.json()["message"]
    assert (await c.show(b["id"], "demo")).json()["status"] == "queued"
    usage = (await c.client.get("/image/v2/info/usage", headers=await c.headers("demo"))).json()
    assert usage["usage"]["image_size_total"] == {"usage": 0, "limit": 1}  # 700 KiB -> 0 MiB


async def test_image_size_total_concurrent_streams(image_cloud: ImageCloud) -> None:
    """Chunked uploads (no declared size) claim as they go: of two that each fit alone but
    not together, exactly one completes."""
    c = image_cloud
    quota(c, image_size_total=1)
    images = [await c.create("demo") for _ in range(2)]
    h = await c.headers("demo", **OCTET)

    async def stream(tag: bytes) -> AsyncIterator[bytes]:
        for _ in range(10):
            yield tag * (70 * KIB)
            await asyncio.sleep(0)

    results = await asyncio.gather(*[
        c.client.put(f"/image/v2/images/{img['id']}/file", headers=h,
                     content=stream(bytes([65 + i])))
        for i, img in enumerate(images)])
    assert sorted(r.status_code for r in results) == [204, 413]
    statuses = sorted([(await c.show(i["id"], "demo")).json()["status"] for i in images])
    assert statuses == ["active", "queued"]


async def test_concurrent_declared_uploads(image_cloud: ImageCloud) -> None:
    c = image_cloud
    quota(c, image_size_total=2)
    images = [await c.create("demo") for _ in range(4)]
    h = await c.headers("demo", **OCTET)
    results = await asyncio.gather(*[
        c.client.put(f"/image/v2/images/{img['id']}/file", headers=h,
                     content=b"z" * (900 * KIB)) for img in images])
    assert sorted(r.status_code for r in results) == [204, 204, 413, 413]


async def test_uploading_count_and_stage_total(image_cloud: ImageCloud) -> None:
    c = image_cloud
    quota(c, image_count_uploading=1, image_stage_total=1)
    a = await c.create("demo")
    b = await c.create("demo")
    h = await c.headers("demo", **OCTET)
    r = await c.client.put(f"/image/v2/images/{a['id']}/stage", headers=h,
                           content=b"s" * (600 * KIB))
    assert r.status_code == 204
    # a is "uploading" (staged) now: no second upload or stage in flight
    r = await c.client.put(f"/image/v2/images/{b['id']}/file", headers=h, content=b"x")
    assert r.status_code == 413 and "image_count_uploading" in r.text
    quota(c, image_count_uploading=5, image_stage_total=1)
    r = await c.client.put(f"/image/v2/images/{b['id']}/stage", headers=h,
                           content=b"s" * (600 * KIB))
    assert r.status_code == 413 and "image_stage_total" in r.text
    assert (await c.show(b["id"], "demo")).json()["status"] == "queued"
    usage = (await c.client.get("/image/v2/info/usage", headers=await c.headers("demo"))).json()
    assert usage["usage"]["image_count_uploading"] == {"usage": 1, "limit": 5}
