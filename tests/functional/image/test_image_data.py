"""Image data: streaming upload with checksums and inspection, download with ranges, and
the failure semantics (no half-written file, never ``active`` without all its data)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stackling.image.inspect import HEAD_BYTES
from tests.functional.image.conftest import ImageCloud
from tests.unit.image.test_inspect import qcow2, vmdk

OCTET = {"Content-Type": "application/octet-stream"}


def store_files(c: ImageCloud) -> list[str]:
    root = c.config.data_dir / "images"
    return sorted(p.name for p in root.rglob("*") if p.is_file())


async def test_upload_download_checksums(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="d", disk_format="qcow2")
    data = qcow2(size=7 << 30, pad=3 * 1024 * 1024 + 17)
    await c.upload(img["id"], data)
    body = (await c.show(img["id"])).json()
    assert body["status"] == "active"
    assert body["size"] == len(data) and body["virtual_size"] == 7 << 30
    assert body["checksum"] == hashlib.md5(data).hexdigest()
    assert body["os_hash_algo"] == "sha512"
    assert body["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert body["stores"] == "file"
    r = await c.client.get(f"/image/v2/images/{img['id']}/file", headers=await c.headers())
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-MD5"] == body["checksum"]
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert int(r.headers["Content-Length"]) == len(data)
    assert store_files(c) == [img["id"]]


async def test_chunked_upload_without_length(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="chunked")
    parts = [os.urandom(100_000) for _ in range(30)]

    async def stream() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    h = await c.headers(**OCTET)
    r = await c.client.put(f"/image/v2/images/{img['id']}/file", headers=h, content=stream())
    assert r.status_code == 204, r.text
    body = (await c.show(img["id"])).json()
    data = b"".join(parts)
    assert body["size"] == len(data) and body["virtual_size"] == len(data)
    assert body["checksum"] == hashlib.md5(data).hexdigest()


async def test_ranges(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="r")
    data = bytes(range(256)) * 40
    await c.upload(img["id"], data)
    url = f"/image/v2/images/{img['id']}/file"
    for header, start, end in (("bytes=0-9", 0, 9), ("bytes=100-", 100, len(data) - 1),
                               ("bytes=-16", len(data) - 16, len(data) - 1),
                               ("bytes=10000-20000", 10000, len(data) - 1)):
        r = await c.client.get(url, headers=await c.headers(Range=header))
        assert r.status_code == 206, (header, r.text)
        assert r.content == data[start:end + 1]
        assert r.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
        assert int(r.headers["Content-Length"]) == end - start + 1
    for header, status in (("bytes=20000-", 416), ("bytes=5-2", 416), ("items=1-2", 416),
                           ("bytes=0-1,4-5", 400)):
        r = await c.client.get(url, headers=await c.headers(Range=header))
        assert r.status_code == status, (header, r.text)


async def test_queued_image_has_no_data(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="q")
    r = await c.client.get(f"/image/v2/images/{img['id']}/file", headers=await c.headers())
    assert r.status_code == 204 and r.content == b""


async def test_upload_refusals(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="u")
    url = f"/image/v2/images/{img['id']}/file"
    r = await c.client.put(url, headers=await c.headers(), content=b"x")
    assert r.status_code == 415 and "Invalid content type None" in r.text
    r = await c.client.put(url, headers=await c.headers(**{"Content-Type": "text/plain"}),
                           content=b"x")
    assert r.status_code == 415
    await c.upload(img["id"], b"first")
    r = await c.client.put(url, headers=await c.headers(**OCTET), content=b"again")
    assert r.status_code == 409 and "from active to saving" in r.text
    bare = await c.create(name="noformat", disk_format=None, container_format=None)
    r = await c.client.put(f"/image/v2/images/{bare['id']}/file",
                           headers=await c.headers(**OCTET), content=b"x")
    assert r.status_code == 400
    assert "Properties disk_format, container_format must be set" in r.text
    assert (await c.show(bare["id"])).json()["status"] == "queued"


@pytest.mark.parametrize(("declared", "data", "says"), [
    ("qcow2", qcow2(backing=512), "backing file"),
    ("qcow2", qcow2(incompatible=0b100), "external data file"),
    ("raw", qcow2(backing=512), "backing file"),
    ("qcow2", os.urandom(5000), "which is raw"),
    ("raw", vmdk(), "which is vmdk"),
    ("raw", qcow2(), "which is qcow2"),
    ("qcow2", b"QFI\xfb\x00\x00\x00\x03", "truncated qcow2 header"),
])
async def test_unsafe_or_mismatched_data_is_refused(image_cloud: ImageCloud, declared: str,
                                                     data: bytes, says: str) -> None:
    c = image_cloud
    img = await c.create(name="bad", disk_format=declared)
    r = await c.upload(img["id"], data, expect=415)
    assert says in r.json()["message"]
    body = (await c.show(img["id"])).json()
    assert body["status"] == "queued"
    assert body["size"] is None and body["checksum"] is None
    assert store_files(c) == []
    # the image can take good data afterwards
    good = qcow2() if declared == "qcow2" else os.urandom(100)
    await c.upload(img["id"], good)
    assert (await c.show(img["id"])).json()["status"] == "active"


async def test_big_mismatch_stops_early(image_cloud: ImageCloud) -> None:
    """A bad upload is refused after its first MiB, not after all of it."""
    c = image_cloud
    img = await c.create(name="early", disk_format="qcow2")
    sent = 0

    async def stream() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(64):
            sent += 1 << 20
            yield os.urandom(1 << 20)

    r = await c.client.put(f"/image/v2/images/{img['id']}/file",
                           headers=await c.headers(**OCTET), content=stream())
    assert r.status_code == 415
    assert (await c.show(img["id"])).json()["status"] == "queued"
    # the rest of the body was read and dropped, so the client saw the answer; nothing stored
    assert store_files(c) == []
    assert sent >= HEAD_BYTES


async def test_interrupted_upload_leaves_nothing(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="cut")

    class Cut(Exception):
        pass

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield os.urandom(1 << 20)
        raise Cut("client went away")

    with pytest.raises(Cut):
        await c.client.put(f"/image/v2/images/{img['id']}/file",
                           headers=await c.headers(**OCTET), content=stream())
    body = (await c.show(img["id"])).json()
    assert body["status"] == "queued" and body["size"] is None
    assert store_files(c) == []
    assert list((c.config.data_dir / "images" / ".partial").iterdir()) == []
    await c.upload(img["id"], b"retry works")
    assert (await c.show(img["id"])).json()["status"] == "active"


async def test_size_cap(image_cloud: ImageCloud) -> None:
    c = image_cloud
    c.images.conf.max_image_size = 1000
    img = await c.create(name="cap")
    r = await c.upload(img["id"], b"x" * 1001, expect=413)
    assert "too large" in r.text

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * 600

    r = await c.client.put(f"/image/v2/images/{img['id']}/file",
                           headers=await c.headers(**OCTET), content=stream())
    assert r.status_code == 413
    assert (await c.show(img["id"])).json()["status"] == "queued"
    assert store_files(c) == []


async def test_delete_during_upload(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="gone")
    deleted = asyncio.Event()
    started = asyncio.Event()

    async def stream() -> AsyncIterator[bytes]:
        yield os.urandom(1 << 20)
        started.set()
        await deleted.wait()
        yield os.urandom(1 << 20)

    async def delete_it() -> None:
        await started.wait()
        for _ in range(50):  # the image is "saving" by now
            if (await c.show(img["id"])).json()["status"] == "saving":
                break
            await asyncio.sleep(0.01)
        r = await c.client.delete(f"/image/v2/images/{img['id']}", headers=await c.headers())
        assert r.status_code == 204
        deleted.set()

    upload = c.client.put(f"/image/v2/images/{img['id']}/file",
                          headers=await c.headers(**OCTET), content=stream())
    r, _ = await asyncio.gather(upload, delete_it())
    assert r.status_code == 410
    assert "may have been deleted during the upload" in r.text
    assert store_files(c) == []


async def test_concurrent_uploads_one_wins(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create(name="race")
    h = await c.headers(**OCTET)
    results = await asyncio.gather(*[
        c.client.put(f"/image/v2/images/{img['id']}/file", headers=h, content=bytes([i]) * 5000)
        for i in range(4)])
    codes = sorted(r.status_code for r in results)
    assert codes == [204, 409, 409, 409]
    body = (await c.show(img["id"])).json()
    winner = next(i for i, r in enumerate(results) if r.status_code == 204)
    assert body["checksum"] == hashlib.md5(bytes([winner]) * 5000).hexdigest()


async def test_memory_store_twin(image_cloud: ImageCloud) -> None:
    """The in-memory store behind the same API (what fast tests of other services use)."""
    from stackling.image.stores import MemoryStore

    c = image_cloud
    c.images.store = MemoryStore("file")
    img = await c.create(name="mem")
    await c.upload(img["id"], b"in memory")
    r = await c.client.get(f"/image/v2/images/{img['id']}/file", headers=await c.headers())
    assert r.content == b"in memory"
    assert isinstance(c.images.store, MemoryStore) and c.images.store.partial == 0


async def test_restart_recovers_interrupted_work(image_cloud: ImageCloud, tmp_path: Path
                                                 ) -> None:
    """A crash mid-upload leaves a ``saving`` image and a partial file: a restart puts the
    image back to ``queued`` and removes the partial data."""
    from sqlalchemy import update

    from stackling.image.models import Image
    from stackling.image.service.glance import ImageService

    c = image_cloud
    img = await c.create(name="crash")
    writer = c.images.store.writer(img["id"])
    await writer.write([b"half of it"])
    async with c.images.db.write() as session:
        await session.execute(update(Image).where(Image.id == img["id"])
                              .values(status="saving", reserved=123))
    restarted = ImageService(c.config)
    await restarted.start()
    try:
        assert list((c.config.data_dir / "images" / ".partial").iterdir()) == []
        body = (await c.show(img["id"])).json()
        assert body["status"] == "queued"
    finally:
        await restarted.close()


async def test_checksum_of_large_stream_matches(image_cloud: ImageCloud) -> None:
    """Several batches with odd chunk sizes: hashing and writing stay in order."""
    c = image_cloud
    img = await c.create(name="big")
    chunks = [os.urandom(n) for n in (1, 4095, 1 << 20, 3 << 20, 77, 5 << 20, 12345)]

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    r = await c.client.put(f"/image/v2/images/{img['id']}/file",
                           headers=await c.headers(**OCTET), content=stream())
    assert r.status_code == 204
    data = b"".join(chunks)
    body = (await c.show(img["id"])).json()
    assert body["os_hash_value"] == hashlib.sha512(data).hexdigest()
    stored = (c.config.data_dir / "images" / img["id"]).read_bytes()
    assert stored == data

