"""Base images cached per host, fetched from the image service and verified, and the
``qemu-img`` work done on disks (overlays, growing, snapshots).

``<data_dir>/_base/<image id>`` holds an image's bytes once their checksum matched the
image record (``os_hash_value`` with ``os_hash_algo``, else the md5 ``checksum``); a
download in progress is ``<id>.part`` and never used. Instances' disks are qcow2 overlays
on these files, so the cache is shared and an image is downloaded once per host.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stackling.common.blocking import run_blocking

#: Glance disk formats the driver boots, and the qemu format their bytes are read as
FORMATS = {"qcow2": "qcow2", "raw": "raw", "ami": "raw", "aki": "raw", "ari": "raw",
           "iso": "raw", None: "raw"}


class ImageSource(Protocol):
    """Where images come from (:class:`stackling.clients.image.ImageClient`)."""

    async def download(self, image_id: str, sink: Any) -> dict[str, Any]: ...


class ImageError(Exception):
    """The image cannot be used here (message for the user); ``retryable`` as SpawnError."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class CachedImage:
    path: Path
    fmt: str  # qemu's name: qcow2 or raw


def qemu_img(*args: str, timeout: float = 600.0) -> str:
    """Run qemu-img (blocking: call through run_blocking); its stderr becomes the error."""
    try:
        done = subprocess.run(["qemu-img", *args], capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"qemu-img {args[0]} failed: {exc}", retryable=True) from exc
    if done.returncode != 0:
        raise ImageError(f"qemu-img {args[0]} failed: {done.stderr.strip()[-500:]}",
                         retryable=True)
    return done.stdout


def info(path: Path, fmt: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(qemu_img("info", "-U", "--output=json", "-f", fmt,
                                                 str(path)))
    return result


class ImageCache:
    def __init__(self, root: Path, source: ImageSource | None) -> None:
        self.root = root
        self.source = source
        self._locks: dict[str, asyncio.Lock] = {}

    def path(self, image_id: str) -> Path:
        return self.root / image_id

    async def fetch(self, image_id: str, disk_format: str | None) -> CachedImage:
        """The cached, verified image (downloading it on first use)."""
        if disk_format not in FORMATS:
            raise ImageError(f"Image {image_id} has disk format {disk_format!r}; the QEMU "
                             f"driver boots {', '.join(sorted(f for f in FORMATS if f))}.")
        fmt = FORMATS[disk_format]
        path = self.path(image_id)
        lock = self._locks.setdefault(image_id, asyncio.Lock())
        async with lock:
            if not path.exists():
                await self._download(image_id, path)
                if fmt == "qcow2":
                    await run_blocking(self._check_qcow2, image_id, path)
        return CachedImage(path, fmt)

    async def _download(self, image_id: str, path: Path) -> None:
        if self.source is None:
            raise ImageError("This cloud has no image service to fetch images from.", True)
        self.root.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + ".part")
        md5 = hashlib.md5(usedforsecurity=False)
        hashers: dict[str, Any] = {"sha512": hashlib.sha512(), "sha256": hashlib.sha256()}
        try:
            with part.open("wb") as fh:
                def sink(chunk: bytes) -> None:
                    fh.write(chunk)
                    md5.update(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                record = await self.source.download(image_id, sink)
            algo, value = record.get("os_hash_algo"), record.get("os_hash_value")
            if algo in hashers and value:
                if hashers[algo].hexdigest() != value:
                    raise ImageError(f"Image {image_id}: the data does not match its "
                                     f"{algo} hash (corrupt download or image).", True)
            elif record.get("checksum") and md5.hexdigest() != record["checksum"]:
                raise ImageError(f"Image {image_id}: the data does not match its checksum.",
                                 True)
            os.replace(part, path)
        finally:
            part.unlink(missing_ok=True)

    def prune(self, in_use: set[str], min_age: float = 86400.0) -> list[str]:
        """Delete cached images no instance uses and nobody touched for ``min_age`` s
        (Nova's ``remove_unused_original_minimum_age_seconds``); returns their ids."""
        removed: list[str] = []
        if not self.root.is_dir():
            return removed
        now = time.time()
        for path in self.root.iterdir():
            if path.name in in_use or path.name.endswith(".part"):
                continue
            try:
                if now - path.stat().st_mtime < min_age:
                    continue
                path.unlink()
            except OSError:
                continue
            removed.append(path.name)
        return removed

    @staticmethod
    def _check_qcow2(image_id: str, path: Path) -> None:
        """Refuse qcow2 images that point at other files (a host file read by a guest)."""
        try:
            data = info(path, "qcow2")
        except ImageError as exc:
            path.unlink(missing_ok=True)
            raise ImageError(f"Image {image_id} is not a readable qcow2 image.") from exc
        if data.get("backing-filename") or data.get("format-specific", {}).get(
                "data", {}).get("data-file"):
            path.unlink(missing_ok=True)
            raise ImageError(f"Image {image_id} refers to external files; refused.")


def create_overlay(base: CachedImage, dest: Path, size_gb: int) -> None:
    """A qcow2 overlay on ``base``, grown to ``size_gb`` when that is bigger (0: the
    image's own size)."""
    qemu_img("create", "-q", "-f", "qcow2", "-b", str(base.path), "-F", base.fmt, str(dest))
    grow(dest, size_gb)


def grow(disk: Path, size_gb: int) -> None:
    """Grow a qcow2 disk to ``size_gb`` GiB (never shrinks: a smaller flavor keeps it)."""
    if size_gb <= 0:
        return
    current = int(info(disk, "qcow2")["virtual-size"])
    if size_gb * 1024**3 > current:
        qemu_img("resize", "-q", "-f", "qcow2", str(disk), f"{size_gb}G")


def export_raw(disk: Path, dest: Path) -> None:
    """The disk as a standalone raw image (the overlay and its base merged)."""
    qemu_img("convert", "-U", "-f", "qcow2", "-O", "raw", str(disk), str(dest))
