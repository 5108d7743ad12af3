"""A deterministic cpio "newc" archive writer: what the kernel unpacks as an initramfs.

No root and no host ``cpio`` needed: owners are always root, times are fixed (0 unless
given), inode numbers count up in the order entries are added, so the same inputs give the
same bytes. Entries must be added parents first (the kernel creates them in order).
"""

from __future__ import annotations

import contextlib
import gzip
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"
_CHUNK = 1024 * 1024


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


class CpioWriter:
    """Write entries to ``out`` (a binary stream); call :meth:`close` to add the trailer.

    The writer does not close ``out``.
    """

    def __init__(self, out: Sink, mtime: int = 0) -> None:
        self._out = out
        self._mtime = mtime
        self._ino = 0
        self._names: set[str] = set()
        self._closed = False

    def _header(self, name: str, mode: int, size: int, nlink: int = 1,
                rdev: tuple[int, int] = (0, 0)) -> None:
        if self._closed:
            raise ValueError("cpio archive already closed")
        name = name.strip("/")
        if not name or (name in self._names and name != _TRAILER):
            raise ValueError(f"bad or duplicate cpio entry name: {name!r}")
        self._names.add(name)
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, nlink, self._mtime, size, 0, 0, rdev[0], rdev[1],
                  len(encoded), 0)
        header = _MAGIC + b"".join(b"%08X" % value for value in fields)
        self._out.write(header + encoded + _pad(len(header) + len(encoded)))

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._header(name, stat.S_IFDIR | mode, 0, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._header(name, stat.S_IFREG | mode, len(data))
        self._out.write(data + _pad(len(data)))

    def file_from(self, name: str, path: Path, mode: int = 0o644) -> None:
        """Copy a host file in (streamed; its size must not change meanwhile)."""
        size = path.stat().st_size
        self._header(name, stat.S_IFREG | mode, size)
        written = 0
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                self._out.write(chunk)
                written += len(chunk)
        if written != size:
            raise OSError(f"{path} changed size while it was archived")
        self._out.write(_pad(size))

    def symlink(self, name: str, target: str) -> None:
        data = target.encode()
        self._header(name, stat.S_IFLNK | 0o777, len(data))
        self._out.write(data + _pad(len(data)))

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._header(name, stat.S_IFCHR | mode, 0, rdev=(major, minor))

    def close(self) -> None:
        if not self._closed:
            self._ino = -1  # the trailer's inode is 0
            self._header(_TRAILER, 0, 0, nlink=1)
            self._closed = True


@contextlib.contextmanager
def gzip_cpio(path: Path, level: int = 9, mtime: int = 0) -> Iterator[CpioWriter]:
    """Write a gzip-compressed newc archive to ``path``. The gzip header carries no name
    or timestamp, so the output is reproducible. On error the partial file is removed."""
    try:
        with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                     compresslevel=level, mtime=0) as gz:
            writer = CpioWriter(gz, mtime=mtime)
            yield writer
            writer.close()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
