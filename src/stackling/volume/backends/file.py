"""The ``file`` backend: each volume is a raw or qcow2 file in a pool directory.

Layout: ``<pool>/volume-<id>`` (raw) or ``volume-<id>.qcow2``; snapshots are full, independent
copies ``snapshot-<id>[.qcow2]`` (a snapshot outlives edits of its volume and deleting one
never touches another file). Work in progress is written to ``.tmp-*`` names and renamed
into place only when complete; :meth:`FileBackend.start` removes leftovers of a crash.
qemu-img does every format-aware step, through :func:`stackling.common.blocking.run_blocking`.

A host reaches a volume by its path (``driver_volume_type: file``): the hypervisor on the
same machine opens the file. :mod:`stackling.volume.backends.nbd` exports the same files
over the network.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from stackling.common.blocking import run_blocking
from stackling.common.ids import new_id
from stackling.volume.backends.base import (
    CHUNK_SIZE,
    Backend,
    BackendError,
    BackendFull,
    Capacity,
    GiB,
    NotFoundInBackend,
)

FORMATS = ("raw", "qcow2")


def _qemu_img(*args: str) -> str:
    """Run qemu-img; its stderr (which may name paths) goes to the log, not to users."""
    try:
        done = subprocess.run(["qemu-img", *args], capture_output=True, text=True,
                              check=False, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendError(f"qemu-img could not run: {type(exc).__name__}") from exc
    if done.returncode != 0:
        err = done.stderr.strip().splitlines()[-1:] or [""]
        if "No space left" in done.stderr:
            raise BackendFull("Insufficient free space in the pool")
        raise BackendError(f"qemu-img {args[0]} failed: {_scrub(err[0])}")
    return done.stdout


def _scrub(text: str) -> str:
    """Drop paths from qemu-img's message."""
    return " ".join(w for w in text.split() if "/" not in w)[:200]


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class FileBackend(Backend):
    protocol = "file"

    def __init__(self, name: str, pool: Path, volume_format: str = "raw",
                 capacity_gb: int = 0, max_over_subscription_ratio: float = 20.0,
                 reserved_percentage: int = 0) -> None:
        super().__init__(name)
        if volume_format not in FORMATS:
            raise ValueError(f"volume_format must be one of {FORMATS}")
        self.pool = pool
        self.format = volume_format
        self.capacity_gb = capacity_gb
        self.ratio = max_over_subscription_ratio
        self.reserved_percentage = reserved_percentage

    # -- paths --------------------------------------------------------------------------
    def _suffix(self) -> str:
        return ".qcow2" if self.format == "qcow2" else ""

    def volume_path(self, volume_id: str) -> Path:
        return self.pool / f"volume-{volume_id}{self._suffix()}"

    def snapshot_path(self, snapshot_id: str) -> Path:
        return self.pool / f"snapshot-{snapshot_id}{self._suffix()}"

    def _tmp(self) -> Path:
        return self.pool / f".tmp-{new_id()}"

    def _existing(self, path: Path, what: str) -> Path:
        if not path.exists():
            raise NotFoundInBackend(f"{what} is not in the pool")
        return path

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self, exports: dict[str, dict[str, Any]] | None = None) -> None:
        def prepare() -> None:
            self.pool.mkdir(parents=True, exist_ok=True)
            for leftover in self.pool.glob(".tmp-*"):
                _unlink(leftover)

        await run_blocking(prepare)

    async def capacity(self) -> Capacity:
        def measure() -> Capacity:
            st = os.statvfs(self.pool)
            total = st.f_blocks * st.f_frsize / GiB
            free = st.f_bavail * st.f_frsize / GiB
            provisioned = 0.0
            for path in self.pool.glob("volume-*"):
                provisioned += self._virtual_size(path) / GiB
            if self.capacity_gb:
                used = sum(p.stat().st_blocks * 512 for p in self.pool.glob("*-*")) / GiB
                total, free = float(self.capacity_gb), max(0.0, self.capacity_gb - used)
            return Capacity(total_gb=round(total, 2), free_gb=round(free, 2),
                            provisioned_gb=round(provisioned, 2), thin=True,
                            max_over_subscription_ratio=self.ratio,
                            reserved_percentage=self.reserved_percentage)

        return await run_blocking(measure)

    def _virtual_size(self, path: Path) -> int:
        if self.format == "raw":
            return path.stat().st_size
        info = json.loads(_qemu_img("info", "-U", "--output=json", "-f", self.format,
                                    str(path)))
        return int(info["virtual-size"])

    async def _commit(self, tmp: Path, final: Path, size_gb: int | None) -> None:
        """Resize ``tmp`` to ``size_gb`` (never shrinking) and rename it into place; on
        failure ``tmp`` is removed."""

        def finish() -> None:
            try:
                if size_gb is not None:
                    current = self._virtual_size(tmp)
                    if current > size_gb * GiB:
                        raise BackendError("The source is larger than the requested size")
                    if current < size_gb * GiB:
                        _qemu_img("resize", "-q", "-f", self.format, str(tmp),
                                  str(size_gb * GiB))
                os.replace(tmp, final)
            except BaseException:
                _unlink(tmp)
                raise

        await run_blocking(finish)

    async def _convert(self, source: Path, source_format: str, final: Path,
                       size_gb: int | None) -> None:
        tmp = self._tmp()
        try:
            await run_blocking(_qemu_img, "convert", "-U", "-q", "-f", source_format,
                               "-O", self.format, str(source), str(tmp))
        except BaseException:
            _unlink(tmp)
            raise
        await self._commit(tmp, final, size_gb)

    # -- volumes --------------------------------------------------------------------------
    async def create(self, volume_id: str, size_gb: int) -> None:
        tmp = self._tmp()
        try:
            await run_blocking(_qemu_img, "create", "-q", "-f", self.format, str(tmp),
                               str(size_gb * GiB))
        except BaseException:
            _unlink(tmp)
            raise
        await self._commit(tmp, self.volume_path(volume_id), None)

    async def create_from_data(self, volume_id: str, size_gb: int,
                               chunks: AsyncIterator[bytes], disk_format: str) -> None:
        if disk_format not in FORMATS:
            raise BackendError(f"Images of disk format {disk_format} cannot become volumes")
        staged = self._tmp()
        try:
            fh = await run_blocking(staged.open, "wb")
            try:
                async for chunk in chunks:
                    await run_blocking(fh.write, chunk)
            finally:
                await run_blocking(fh.close)
            await self._convert(staged, disk_format, self.volume_path(volume_id), size_gb)
        finally:
            _unlink(staged)

    async def clone(self, source_id: str, volume_id: str, size_gb: int) -> None:
        source = self._existing(self.volume_path(source_id), f"volume {source_id}")
        await self._convert(source, self.format, self.volume_path(volume_id), size_gb)

    async def create_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        source = self._existing(self.volume_path(volume_id), f"volume {volume_id}")
        await self._convert(source, self.format, self.snapshot_path(snapshot_id), None)

    async def create_from_snapshot(self, snapshot_id: str, volume_id: str,
                                   size_gb: int) -> None:
        source = self._existing(self.snapshot_path(snapshot_id), f"snapshot {snapshot_id}")
        await self._convert(source, self.format, self.volume_path(volume_id), size_gb)

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await run_blocking(_unlink, self.snapshot_path(snapshot_id))

    async def delete_volume(self, volume_id: str) -> None:
        await self.unexport(volume_id)
        await run_blocking(_unlink, self.volume_path(volume_id))

    async def extend(self, volume_id: str, size_gb: int) -> None:
        path = self._existing(self.volume_path(volume_id), f"volume {volume_id}")
        await run_blocking(_qemu_img, "resize", "-q", "-f", self.format, str(path),
                           str(size_gb * GiB))

    async def export(self, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        path = self._existing(self.volume_path(volume_id), f"volume {volume_id}")
        return {"driver_volume_type": "file",
                "data": {"device_path": str(path), "format": self.format,
                         "volume_id": volume_id}}

    async def unexport(self, volume_id: str) -> None:
        return None

    async def read(self, volume_id: str) -> AsyncIterator[bytes]:
        path = self._existing(self.volume_path(volume_id), f"volume {volume_id}")
        raw = path
        if self.format != "raw":
            raw = self._tmp()
            await run_blocking(_qemu_img, "convert", "-U", "-q", "-f", self.format,
                               "-O", "raw", str(path), str(raw))
        try:
            fh = await run_blocking(raw.open, "rb")
            try:
                while chunk := await run_blocking(fh.read, CHUNK_SIZE):
                    yield chunk
            finally:
                fh.close()
        finally:
            if raw != path:
                _unlink(raw)

    async def write(self, volume_id: str, chunks: AsyncIterator[bytes]) -> None:
        final = self._existing(self.volume_path(volume_id), f"volume {volume_id}")
        size = await run_blocking(self._virtual_size, final)
        staged = self._tmp()
        try:
            fh = await run_blocking(staged.open, "wb")
            try:
                written = 0
                async for chunk in chunks:
                    written += len(chunk)
                    if written > size:
                        raise BackendError("The data is larger than the volume")
                    await run_blocking(fh.write, chunk)
                await run_blocking(fh.truncate, size)
            finally:
                await run_blocking(fh.close)
            if self.format == "raw":
                await run_blocking(os.replace, staged, final)
            else:
                await self._convert(staged, "raw", final, None)
        finally:
            _unlink(staged)

    async def exists(self, volume_id: str) -> bool:
        return self.volume_path(volume_id).exists()

    def files(self) -> list[str]:
        """Every file in the pool (leak checks)."""
        return sorted(p.name for p in self.pool.iterdir()) if self.pool.exists() else []
