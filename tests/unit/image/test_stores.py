"""Both image stores keep the interface's failure semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackling.image.stores import FileStore, MemoryStore, Store, StoreError, StoreNotFound


@pytest.fixture(params=["file", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    s: Store = FileStore("local", tmp_path / "images") if request.param == "file" \
        else MemoryStore("local")
    await s.start()
    return s


async def read_all(store: Store, location: str, **kw: int) -> bytes:
    return b"".join([c async for c in await store.read(location, **kw)])


async def test_write_commit_read_delete(store: Store) -> None:
    writer = store.writer("img1")
    for part in (b"abc", b"", b"defgh"):
        await writer.write([part])
    location = await writer.commit()
    assert await read_all(store, location) == b"abcdefgh"
    assert await read_all(store, location, offset=2, length=3) == b"cde"
    assert await read_all(store, location, offset=5) == b"fgh"
    assert await read_all(store, location, chunk_size=3) == b"abcdefgh"
    assert await store.size(location) == 8
    await store.delete(location)
    await store.delete(location)  # idempotent
    with pytest.raises(StoreNotFound):
        await store.read(location)


async def test_empty_object(store: Store) -> None:
    location = await store.writer("empty").commit()
    assert await read_all(store, location) == b""


async def test_abort_leaves_nothing(store: Store, tmp_path: Path) -> None:
    writer = store.writer("img2")
    await writer.write([b"x" * 1000])
    await writer.abort()
    await writer.abort()
    with pytest.raises(StoreError):
        await writer.write([b"more"])
    if isinstance(store, FileStore):
        assert not (store.root / "img2").exists()
        assert list(store.partial_dir.iterdir()) == []
    else:
        assert isinstance(store, MemoryStore)
        assert store.objects == {} and store.partial == 0


async def test_commit_never_overwrites(store: Store) -> None:
    first = store.writer("same")
    await first.write([b"one"])
    location = await first.commit()
    second = store.writer("same")
    await second.write([b"two"])
    with pytest.raises(StoreError):
        await second.commit()
    await second.abort()
    assert await read_all(store, location) == b"one"


async def test_file_store_removes_partial_files_of_a_crash(tmp_path: Path) -> None:
    store = FileStore("local", tmp_path / "images")
    await store.start()
    writer = store.writer("crashed")
    await writer.write([b"half"])  # the process "dies" here: no commit, no abort
    assert len(list(store.partial_dir.iterdir())) == 1
    restarted = FileStore("local", tmp_path / "images")
    await restarted.start()
    assert list(restarted.partial_dir.iterdir()) == []
    assert not (restarted.root / "crashed").exists()


async def test_file_store_rejects_foreign_locations(tmp_path: Path) -> None:
    store = FileStore("local", tmp_path / "images")
    await store.start()
    for location in ("file:///etc/passwd", (tmp_path / "images" / ".partial").as_uri(),
                     "memory://local/x"):
        with pytest.raises(StoreNotFound):
            await store.read(location)
