"""The file backend with real qemu-img (raw and qcow2) and the NBD export with qemu-nbd."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stackling.volume.backends import BackendError, FileBackend, NbdBackend

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")
GiB = 1 << 30


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def head(backend: FileBackend, volume_id: str) -> bytes:
    async for chunk in backend.read(volume_id):
        return bytes(chunk[:16])
    return b""


def size(backend: FileBackend, volume_id: str) -> int:
    return int(backend._virtual_size(backend.volume_path(volume_id)))


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
async def test_lifecycle(tmp_path: Path, fmt: str) -> None:
    backend = FileBackend("file", tmp_path / "pool", fmt)
    await backend.start()
    await backend.create("v1", 1)
    await backend.write("v1", chunks(b"payload"))
    assert (await head(backend, "v1"))[:7] == b"payload" and size(backend, "v1") == GiB
    await backend.create_snapshot("v1", "s1")
    await backend.write("v1", chunks(b"PAYLOAD"))
    await backend.create_from_snapshot("s1", "v2", 2)
    assert (await head(backend, "v2"))[:7] == b"payload"
    await backend.clone("v1", "v3", 1)
    assert (await head(backend, "v3"))[:7] == b"PAYLOAD"
    await backend.extend("v1", 2)
    assert size(backend, "v1") == 2 * GiB
    cap = await backend.capacity()
    assert cap.provisioned_gb == 5.0 and cap.thin
    for vid in ("v1", "v2", "v3"):
        await backend.delete_volume(vid)
    await backend.delete_snapshot("s1")
    await backend.delete_volume("v1")  # idempotent
    assert backend.files() == []


async def test_failures_leave_nothing(tmp_path: Path) -> None:
    backend = FileBackend("file", tmp_path / "pool", "raw")
    await backend.start()
    with pytest.raises(BackendError):
        await backend.clone("missing", "v1", 1)
    await backend.create("v2", 1)
    with pytest.raises(BackendError):  # a 2 GiB source does not fit a 1 GiB clone
        await backend.extend("v2", 2)
        await backend.clone("v2", "v3", 1)
    with pytest.raises(BackendError):  # not an image qemu-img accepts as qcow2
        await backend.create_from_data("v4", 1, chunks(b"garbage" * 100), "qcow2")
    with pytest.raises(BackendError):
        await backend.write("v2", chunks(b"x" * (2 * GiB + 1)))
    assert backend.files() == ["volume-v2"]


@pytest.mark.skipif(shutil.which("qemu-nbd") is None, reason="needs qemu-nbd")
async def test_nbd_export(tmp_path: Path) -> None:
    backend = NbdBackend("nbd", tmp_path / "pool", "qcow2", host="127.0.0.1",
                         port_min=18510, port_max=18519)
    await backend.start()
    try:
        await backend.create("v1", 1)
        await backend.write("v1", chunks(b"over-the-network"))
        info = await backend.export("v1", {"host": "other"})
        assert info["driver_volume_type"] == "nbd"
        data = info["data"]
        assert await backend.export("v1", {}) == info  # same export again
        url = f"nbd://{data['host']}:{data['port']}/{data['export_name']}"
        proc = await asyncio.create_subprocess_exec(
            "qemu-img", "dd", "-f", "raw", "-O", "raw", f"if={url}",
            f"of={tmp_path / 'out'}", "bs=16", "count=1",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
        assert proc.returncode == 0, err
        assert (tmp_path / "out").read_bytes()[:16] == b"over-the-network"
        await backend.unexport("v1")
        assert backend.procs == {}
        await backend.delete_volume("v1")
    finally:
        await backend.close()
    assert backend.files() == []
