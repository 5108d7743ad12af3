"""The in-memory twin of the file store, for fast tests (same failure semantics)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from stackling.image.stores.base import (
    CHUNK_SIZE,
    Chunk,
    Store,
    StoreError,
    StoreFull,
    StoreNotFound,
    StoreWriter,
)


class _MemoryWriter(StoreWriter):
    def __init__(self, store: MemoryStore, key: str) -> None:
        self.store = store
        self.key = key
        self.buffer = bytearray()
        self.done = False
        store.partial += 1

    async def write(self, chunks: Sequence[Chunk]) -> None:
        if self.done:
            raise StoreError("write after commit or abort")
        size = sum(len(c) for c in chunks)
        if self.store.capacity is not None and \
                self.store.used() + len(self.buffer) + size > self.store.capacity:
            raise StoreFull("no space left to write image data")
        for chunk in chunks:
            self.buffer += chunk

    async def commit(self) -> str:
        if self.done:
            raise StoreError("commit after commit or abort")
        location = f"memory://{self.store.name}/{self.key}"
        if location in self.store.objects:
            raise StoreError(f"image data for {self.key} already exists")
        self.store.objects[location] = bytes(self.buffer)
        self.done = True
        self.store.partial -= 1
        return location

    async def abort(self) -> None:
        if not self.done:
            self.done = True
            self.store.partial -= 1
        self.buffer = bytearray()


class MemoryStore(Store):
    kind = "memory"

    def __init__(self, name: str, capacity: int | None = None) -> None:
        super().__init__(name)
        self.objects: dict[str, bytes] = {}
        self.capacity = capacity
        self.partial = 0  # writers neither committed nor aborted (tests check it is 0)

    def used(self) -> int:
        return sum(len(v) for v in self.objects.values())

    def writer(self, key: str) -> StoreWriter:
        return _MemoryWriter(self, key)

    async def read(self, location: str, offset: int = 0, length: int | None = None,
                   chunk_size: int = CHUNK_SIZE) -> AsyncIterator[Chunk]:
        if location not in self.objects:
            raise StoreNotFound(f"no image data at {location}")
        data = self.objects[location]
        end = len(data) if length is None else min(len(data), offset + length)
        return self._chunks(data, offset, end, chunk_size)

    @staticmethod
    async def _chunks(data: bytes, start: int, end: int, chunk_size: int
                      ) -> AsyncIterator[Chunk]:
        for pos in range(start, end, chunk_size):
            yield data[pos:min(end, pos + chunk_size)]

    async def delete(self, location: str) -> None:
        self.objects.pop(location, None)

    async def size(self, location: str) -> int:
        if location not in self.objects:
            raise StoreNotFound(f"no image data at {location}")
        return len(self.objects[location])
