"""The store interface: where image bytes live.

A store keeps opaque objects under keys (image ids) and hands back a *location* string that
only it understands (``file:///...``, ``memory://...``, later ``swift://...``). The image
service records the location and never interprets it.

Failure semantics (every implementation must keep them):

- Writing goes through a :class:`StoreWriter`. Nothing is visible at any location until
  :meth:`StoreWriter.commit` returns it; commit makes the data durable first (``fsync`` for
  files). If ``write`` or ``commit`` raises, or the caller is cancelled, the caller must call
  :meth:`StoreWriter.abort`, which removes whatever was written and never raises for "already
  gone". A process that dies mid-write leaves only temporary objects, which
  :meth:`Store.start` removes; a half-written image is never at a location.
- ``write`` raises :class:`StoreFull` when the backend is out of space and :class:`StoreError`
  for any other backend failure; the data written so far is then worthless (abort it).
- ``read`` of a location that is gone raises :class:`StoreNotFound` before yielding anything.
- ``delete`` is idempotent: deleting a missing location succeeds. Other failures raise
  :class:`StoreError` and leave the data where it was.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from typing import Any

CHUNK_SIZE = 1 << 20

# what reads yield: bytes, or a memoryview of a buffer the reader allocated (no extra copy)
Chunk = bytes | memoryview


class StoreError(Exception):
    """A backend failure (I/O error, unreachable object store)."""


class StoreFull(StoreError):
    """The backend has no space left."""


class StoreNotFound(StoreError):
    """The location holds nothing (any more)."""


class StoreWriter(ABC):
    """One object being written, in order, by one task."""

    @abstractmethod
    async def write(self, chunks: Sequence[Chunk]) -> None:
        """Append ``chunks``, in order (a batch: writing several at once saves copies and
        system calls). Raises StoreFull / StoreError (then abort)."""

    @abstractmethod
    async def commit(self) -> str:
        """Make the data durable and visible; return its location. Call once."""

    @abstractmethod
    async def abort(self) -> None:
        """Discard everything written. Safe to call after a failure, or twice."""


class Store(ABC):
    """A named place for image data (``name`` is the store id clients see)."""

    kind: str = ""

    def __init__(self, name: str) -> None:
        self.name = name

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Prepare the backend and remove leftovers of interrupted writes."""

    @abstractmethod
    def writer(self, key: str) -> StoreWriter:
        """A writer for a new object under ``key`` (an image id)."""

    @abstractmethod
    async def read(self, location: str, offset: int = 0, length: int | None = None,
                   chunk_size: int = CHUNK_SIZE) -> AsyncIterator[Chunk]:
        """Open ``location`` (StoreNotFound now if it holds nothing) and return its bytes
        from ``offset``, ``length`` of them (None: to the end), in chunks of at most
        ``chunk_size``. Close the iterator (``aclose``) if you stop early."""

    @abstractmethod
    async def delete(self, location: str) -> None:
        """Remove the data at ``location`` (idempotent)."""

    @abstractmethod
    async def size(self, location: str) -> int:
        """The size of the data at ``location``; StoreNotFound if there is none."""

    def describe(self) -> dict[str, Any]:
        """Properties for ``GET /v2/info/stores/detail``."""
        return {}
