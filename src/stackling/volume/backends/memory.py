"""The in-memory twin of a volume backend (fast tests): volumes are byte buffers that hold
what was written; everything past that is zeros. Exports are records, no listener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from stackling.volume.backends.base import (
    CHUNK_SIZE,
    Backend,
    BackendError,
    BackendFull,
    Capacity,
    GiB,
    NotFoundInBackend,
)


class MemoryBackend(Backend):
    protocol = "memory"

    def __init__(self, name: str = "memory", capacity_gb: int = 1000,
                 max_over_subscription_ratio: float = 20.0) -> None:
        super().__init__(name)
        self.capacity_gb = capacity_gb
        self.ratio = max_over_subscription_ratio
        self.volumes: dict[str, tuple[int, bytearray]] = {}
        self.snapshots: dict[str, tuple[int, bytes]] = {}
        self.exports: dict[str, dict[str, Any]] = {}
        self.fail: set[str] = set()  # operation names that raise (failure tests)

    def _check(self, op: str) -> None:
        if op in self.fail:
            raise BackendError(f"injected failure in {op}")

    def _room(self, size_gb: int) -> None:
        used = sum(s for s, _ in self.volumes.values())
        if used + size_gb > self.capacity_gb * self.ratio:
            raise BackendFull("Insufficient free space in the pool")

    def _get(self, volume_id: str) -> tuple[int, bytearray]:
        try:
            return self.volumes[volume_id]
        except KeyError:
            raise NotFoundInBackend(f"volume {volume_id} is not in the pool") from None

    async def start(self, exports: dict[str, dict[str, Any]] | None = None) -> None:
        for volume_id in exports or {}:
            if volume_id in self.volumes:
                self.exports[volume_id] = self._info(volume_id)

    async def capacity(self) -> Capacity:
        used = float(sum(s for s, _ in self.volumes.values()))
        return Capacity(total_gb=float(self.capacity_gb),
                        free_gb=max(0.0, self.capacity_gb - used / max(self.ratio, 1.0)),
                        provisioned_gb=used, thin=True, max_over_subscription_ratio=self.ratio)

    async def create(self, volume_id: str, size_gb: int) -> None:
        self._check("create")
        self._room(size_gb)
        self.volumes[volume_id] = (size_gb, bytearray())

    async def create_from_data(self, volume_id: str, size_gb: int,
                               chunks: AsyncIterator[bytes], disk_format: str) -> None:
        self._check("create_from_data")
        self._room(size_gb)
        data = bytearray()
        async for chunk in chunks:
            data += chunk
            if len(data) > size_gb * GiB:
                raise BackendError("The image is larger than the volume")
        self.volumes[volume_id] = (size_gb, data)

    async def clone(self, source_id: str, volume_id: str, size_gb: int) -> None:
        self._check("clone")
        _, data = self._get(source_id)
        self._room(size_gb)
        self.volumes[volume_id] = (size_gb, bytearray(data))

    async def create_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        self._check("create_snapshot")
        size, data = self._get(volume_id)
        self.snapshots[snapshot_id] = (size, bytes(data))

    async def create_from_snapshot(self, snapshot_id: str, volume_id: str,
                                   size_gb: int) -> None:
        self._check("create_from_snapshot")
        if snapshot_id not in self.snapshots:
            raise NotFoundInBackend(f"snapshot {snapshot_id} is not in the pool")
        self._room(size_gb)
        self.volumes[volume_id] = (size_gb, bytearray(self.snapshots[snapshot_id][1]))

    async def delete_snapshot(self, snapshot_id: str) -> None:
        self._check("delete_snapshot")
        self.snapshots.pop(snapshot_id, None)

    async def delete_volume(self, volume_id: str) -> None:
        self._check("delete_volume")
        self.exports.pop(volume_id, None)
        self.volumes.pop(volume_id, None)

    async def extend(self, volume_id: str, size_gb: int) -> None:
        self._check("extend")
        _, data = self._get(volume_id)
        self.volumes[volume_id] = (size_gb, data)

    def _info(self, volume_id: str) -> dict[str, Any]:
        return {"driver_volume_type": "memory", "data": {"volume_id": volume_id}}

    async def export(self, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        self._check("export")
        self._get(volume_id)
        self.exports[volume_id] = info = self._info(volume_id)
        return info

    async def unexport(self, volume_id: str) -> None:
        self.exports.pop(volume_id, None)

    async def read(self, volume_id: str) -> AsyncIterator[bytes]:
        self._check("read")
        _, data = self._get(volume_id)
        for offset in range(0, len(data), CHUNK_SIZE):
            yield bytes(data[offset:offset + CHUNK_SIZE])

    async def write(self, volume_id: str, chunks: AsyncIterator[bytes]) -> None:
        self._check("write")
        size, _ = self._get(volume_id)
        data = bytearray()
        async for chunk in chunks:
            data += chunk
            if len(data) > size * GiB:
                raise BackendError("The data is larger than the volume")
        self.volumes[volume_id] = (size, data)

    async def exists(self, volume_id: str) -> bool:
        return volume_id in self.volumes
