"""The ``file`` store: one file per image under a directory (default ``<data_dir>/images``).

A write goes to ``<root>/.partial/<key>.<random>`` (writeback to disk is started every 8 MiB
while data arrives) and is fsynced, then linked to
``<root>/<key>`` (``link`` fails rather than overwrite an existing image) and the directory
is fsynced: a crash leaves a partial file that :meth:`FileStore.start` removes, never a
half-written image. Locations are ``file://`` URLs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from stackling.common.blocking import run_blocking
from stackling.image.stores.base import (
    CHUNK_SIZE,
    Chunk,
    Store,
    StoreError,
    StoreFull,
    StoreNotFound,
    StoreWriter,
)

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _store_error(exc: OSError, what: str) -> StoreError:
    if exc.errno in _FULL:
        return StoreFull(f"no space left to {what}")
    return StoreError(f"cannot {what}: {exc.strerror or exc}")


_IOV_MAX = 1024
_WRITEBACK = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2


def _load_sync_file_range() -> Callable[[int, int, int], None] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]

    def start(fd: int, offset: int, length: int) -> None:
        func(fd, offset, length, _SYNC_FILE_RANGE_WRITE)

    return start


_sync_file_range = _load_sync_file_range()


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing this range to disk now (Linux ``sync_file_range``),
    so the final fsync has little left to do and the disk works while data still arrives."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FileWriter(StoreWriter):
    def __init__(self, store: FileStore, key: str) -> None:
        self.store = store
        self.final = store.root / key
        self.partial = store.partial_dir / f"{key}.{secrets.token_hex(6)}"
        self.fd: int | None = None
        self.done = False
        self.written = 0
        self.flushed = 0

    def _open(self) -> int:
        if self.fd is None:
            self.fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                              0o600)
        return self.fd

    def write_now(self, chunks: Sequence[Chunk]) -> None:
        """The blocking write (callers already in a worker thread may use it directly)."""
        fd = self._open()
        pending = [memoryview(c) for c in chunks if c]
        while pending:
            done = os.writev(fd, pending[:_IOV_MAX])
            while done and pending:
                if done >= len(pending[0]):
                    done -= len(pending[0])
                    pending.pop(0)
                else:
                    pending[0] = pending[0][done:]
                    done = 0
        self.written += sum(len(c) for c in chunks)
        if self.written - self.flushed >= _WRITEBACK:
            _start_writeback(fd, self.flushed, self.written - self.flushed)
            self.flushed = self.written

    async def write(self, chunks: Sequence[Chunk]) -> None:
        if self.done:
            raise StoreError("write after commit or abort")
        try:
            await run_blocking(self.write_now, chunks)
        except OSError as exc:
            raise _store_error(exc, "write image data") from exc

    def _commit(self) -> str:
        fd = self._open()  # an empty image still gets a file
        os.fsync(fd)
        os.close(fd)
        self.fd = None
        try:
            os.link(self.partial, self.final)
        except FileExistsError as exc:
            raise StoreError(f"image data for {self.final.name} already exists") from exc
        os.unlink(self.partial)
        _fsync_dir(self.store.root)
        return self.final.as_uri()

    async def commit(self) -> str:
        if self.done:
            raise StoreError("commit after commit or abort")
        try:
            location = await run_blocking(self._commit)
        except OSError as exc:
            raise _store_error(exc, "store image data") from exc
        self.done = True
        return location

    def _abort(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        try:
            os.unlink(self.partial)
        except FileNotFoundError:
            pass

    async def abort(self) -> None:
        if self.done:
            return
        self.done = True
        await run_blocking(self._abort)


class FileStore(Store):
    kind = "file"

    def __init__(self, name: str, root: Path) -> None:
        super().__init__(name)
        self.root = root
        self.partial_dir = root / ".partial"

    def _start(self) -> None:
        self.partial_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for leftover in self.partial_dir.iterdir():
            leftover.unlink(missing_ok=True)

    async def start(self) -> None:
        await run_blocking(self._start)

    def writer(self, key: str) -> StoreWriter:
        if not key or "/" in key or key.startswith("."):
            raise StoreError(f"bad key {key!r}")
        return _FileWriter(self, key)

    def path(self, location: str) -> Path:
        prefix = self.root.as_uri() + "/"
        if not location.startswith(prefix):
            raise StoreNotFound(f"{location} is not in store {self.name}")
        name = unquote(location[len(prefix):])
        if not name or "/" in name or name.startswith("."):
            raise StoreNotFound(f"{location} is not in store {self.name}")
        return self.root / name

    async def read(self, location: str, offset: int = 0, length: int | None = None,
                   chunk_size: int = CHUNK_SIZE) -> AsyncIterator[Chunk]:
        path = self.path(location)
        try:
            fh = await run_blocking(open, path, "rb", buffering=0)
        except FileNotFoundError as exc:
            raise StoreNotFound(f"no image data at {location}") from exc
        except OSError as exc:
            raise _store_error(exc, "read image data") from exc
        return self._chunks(fh, offset, length, chunk_size)

    async def _chunks(self, fh: Any, offset: int, length: int | None, chunk_size: int
                      ) -> AsyncIterator[Chunk]:
        # Buffers are allocated here, in the event loop's thread, and only filled by the
        # worker thread: memory a worker allocates lands in its own malloc arena, which
        # the process keeps long after the download.
        try:
            if offset:
                await run_blocking(fh.seek, offset)
            left = length
            while left is None or left > 0:
                buf = bytearray(chunk_size if left is None else min(chunk_size, left))
                try:
                    got = await run_blocking(fh.readinto, buf)
                except OSError as exc:
                    raise _store_error(exc, "read image data") from exc
                if not got:
                    return
                if left is not None:
                    left -= got
                yield memoryview(buf)[:got]
        finally:
            fh.close()

    async def delete(self, location: str) -> None:
        path = self.path(location)
        try:
            await run_blocking(path.unlink, missing_ok=True)
        except OSError as exc:
            raise _store_error(exc, "delete image data") from exc

    async def size(self, location: str) -> int:
        try:
            return (await run_blocking(self.path(location).stat)).st_size
        except FileNotFoundError as exc:
            raise StoreNotFound(f"no image data at {location}") from exc

    def describe(self) -> dict[str, Any]:
        return {"data_dir": str(self.root), "chunk_size": CHUNK_SIZE,
                "thin_provisioning": False}

