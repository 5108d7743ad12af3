"""Backup stores: sparse chunks, checksums verified on restore, all-or-nothing puts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stackling.volume.backup.directory import DirectoryBackupStore
from stackling.volume.backup.store import CHUNK, BackupStore, ChecksumMismatch, MemoryBackupStore


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def collect(it: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in it])


@pytest.fixture(params=["memory", "directory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BackupStore:
    return MemoryBackupStore() if request.param == "memory" else DirectoryBackupStore(
        tmp_path / "backups")


async def test_roundtrip_sparse(store: BackupStore) -> None:
    await store.start()
    data = b"a" * 10 + bytes(CHUNK * 2) + b"tail"
    manifest = await store.put("b1", chunks(data[:5], data[5:]))
    assert [c[2] == "zero" for c in manifest.chunks] == [False, True, False]
    assert await collect(store.get("b1")) == data


async def test_corruption_is_detected(tmp_path: Path) -> None:
    store = DirectoryBackupStore(tmp_path / "b")
    await store.start()
    await store.put("b1", chunks(b"x" * 100))
    (tmp_path / "b" / "b1" / "chunk-000000").write_bytes(b"y" * 100)
    with pytest.raises(ChecksumMismatch):
        await collect(store.get("b1"))


async def test_failed_put_leaves_nothing(tmp_path: Path) -> None:
    store = DirectoryBackupStore(tmp_path / "b")
    await store.start()

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (CHUNK + 1)
        raise OSError("disk gone")

    with pytest.raises(OSError):
        await store.put("b1", broken())
    assert list((tmp_path / "b").iterdir()) == []
