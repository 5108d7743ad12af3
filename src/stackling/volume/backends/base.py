"""The volume backend interface: where a volume's blocks live and how a host reaches them.

A backend keeps volumes and snapshots under their ids in one pool. The volume manager is
its only caller and records in the database what the backend reports; the backend keeps no
state a restart would lose except its data (a backend that exports volumes re-creates its
exports in :meth:`Backend.start` from ``exports`` the manager passes).

Failure semantics (every implementation keeps them):

- Every creating operation (``create``, ``create_from_data``, ``clone``,
  ``create_from_snapshot``, ``create_snapshot``) is all-or-nothing: when it raises, nothing
  of the new object is left behind (partial files are removed before the error propagates),
  and the source is untouched. It raises :class:`BackendFull` when the pool has no room and
  :class:`BackendError` for anything else, with a message a user may read (no paths).
- ``delete_volume`` / ``delete_snapshot`` are idempotent (a missing object is success) and
  remove the object's exports first. A failure raises :class:`BackendError` and leaves the
  object whole, so the delete may be retried (the volume goes to ``error_deleting``).
- ``extend`` either grows the volume to the new size or leaves it at the old one.
- ``export`` returns the ``connection_info`` a hypervisor needs (``driver_volume_type`` and
  ``data``); calling it again for the same connector returns the same export. ``unexport``
  is idempotent and must leave no listener, process or file behind.
- ``read`` yields the volume's raw bytes from offset 0 (trailing zeros may be left out:
  readers treat what is missing as zeros); ``write`` replaces the volume's contents with raw
  bytes (restore) and zeroes the rest; data beyond the volume's size is a
  :class:`BackendError` and leaves the volume as it was before.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

GiB = 1 << 30
CHUNK_SIZE = 1 << 20


class BackendError(Exception):
    """A backend failure; the message is safe to show to users."""


class BackendFull(BackendError):
    """The pool has no room for the request."""


class NotFoundInBackend(BackendError):
    """The object the operation reads does not exist in the pool."""


@dataclass(frozen=True)
class Capacity:
    """What the pool reports to the scheduler (Cinder's pool stats), in GiB."""

    total_gb: float
    free_gb: float
    provisioned_gb: float
    thin: bool
    max_over_subscription_ratio: float
    reserved_percentage: int = 0


class Backend(ABC):
    #: the kind reported as ``storage_protocol`` / ``driver_volume_type``
    protocol: str = ""
    thin: bool = True

    def __init__(self, name: str) -> None:
        self.name = name  # Cinder's volume_backend_name

    async def start(self, exports: dict[str, dict[str, Any]] | None = None) -> None:  # noqa: B027
        """Prepare the pool; re-create the exports the database still records."""

    async def close(self) -> None:  # noqa: B027
        """Stop what :meth:`start` and :meth:`export` started (exports stay recorded)."""

    @abstractmethod
    async def capacity(self) -> Capacity: ...

    @abstractmethod
    async def create(self, volume_id: str, size_gb: int) -> None:
        """An empty (zeroed) volume of ``size_gb``."""

    @abstractmethod
    async def create_from_data(self, volume_id: str, size_gb: int,
                               chunks: AsyncIterator[bytes], disk_format: str) -> None:
        """A volume holding an image's data (``disk_format`` raw or qcow2), at least
        ``size_gb`` big; :class:`BackendError` when the image does not fit."""

    @abstractmethod
    async def clone(self, source_id: str, volume_id: str, size_gb: int) -> None: ...

    @abstractmethod
    async def create_snapshot(self, volume_id: str, snapshot_id: str) -> None: ...

    @abstractmethod
    async def create_from_snapshot(self, snapshot_id: str, volume_id: str,
                                   size_gb: int) -> None: ...

    @abstractmethod
    async def delete_snapshot(self, snapshot_id: str) -> None: ...

    @abstractmethod
    async def delete_volume(self, volume_id: str) -> None: ...

    @abstractmethod
    async def extend(self, volume_id: str, size_gb: int) -> None: ...

    @abstractmethod
    async def export(self, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    async def unexport(self, volume_id: str) -> None: ...

    @abstractmethod
    def read(self, volume_id: str) -> AsyncIterator[bytes]: ...

    @abstractmethod
    async def write(self, volume_id: str, chunks: AsyncIterator[bytes]) -> None: ...

    async def exists(self, volume_id: str) -> bool:
        """Whether the pool holds ``volume_id`` (tests and leak checks)."""
        return False
