"""The backup store interface, and the in-memory twin.

A backup is a sequence of chunks of a volume's raw data, written under the backup's id with
a manifest that lists each chunk's offset, length and SHA-256 (all-zero chunks are not
stored: the manifest marks them ``zero``). ``put`` is all-or-nothing: if it raises, nothing
of the backup remains. ``get`` verifies every chunk against the manifest and raises
:class:`ChecksumMismatch` before yielding a chunk that does not match (the restore then
fails and the target volume goes to ``error_restoring``). ``delete`` is idempotent.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

CHUNK = 4 << 20


class BackupError(Exception):
    """A store failure; the message is safe to show."""


class ChecksumMismatch(BackupError):
    pass


@dataclass
class Manifest:
    chunks: list[tuple[int, int, str]] = field(default_factory=list)  # offset, len, sha256
    digest: str = ""  # sha256 over the whole data (zeros included)

    def to_dict(self) -> dict[str, object]:
        return {"chunks": [list(c) for c in self.chunks], "digest": self.digest}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Manifest:
        raw = data.get("chunks", [])
        chunks = [(int(c[0]), int(c[1]), str(c[2]))
                  for c in (raw if isinstance(raw, list) else [])]
        return cls(chunks, str(data.get("digest", "")))


async def rechunk(chunks: AsyncIterator[bytes], size: int = CHUNK) -> AsyncIterator[bytes]:
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


class BackupStore(ABC):
    @abstractmethod
    async def _put_chunk(self, backup_id: str, index: int, data: bytes) -> None: ...

    @abstractmethod
    async def _get_chunk(self, backup_id: str, index: int) -> bytes: ...

    @abstractmethod
    async def _put_manifest(self, backup_id: str, manifest: Manifest) -> None: ...

    @abstractmethod
    async def _get_manifest(self, backup_id: str) -> Manifest: ...

    @abstractmethod
    async def delete(self, backup_id: str) -> None: ...

    async def start(self) -> None:
        return None

    async def put(self, backup_id: str, chunks: AsyncIterator[bytes]) -> Manifest:
        manifest = Manifest()
        whole = hashlib.sha256()
        offset = 0
        try:
            async for data in rechunk(chunks):
                whole.update(data)
                digest = "zero" if not data.strip(b"\0") else hashlib.sha256(data).hexdigest()
                if digest != "zero":
                    await self._put_chunk(backup_id, len(manifest.chunks), data)
                manifest.chunks.append((offset, len(data), digest))
                offset += len(data)
            manifest.digest = whole.hexdigest()
            await self._put_manifest(backup_id, manifest)
        except BaseException:
            await self.delete(backup_id)
            raise
        return manifest

    async def get(self, backup_id: str) -> AsyncIterator[bytes]:
        manifest = await self._get_manifest(backup_id)
        whole = hashlib.sha256()
        for index, (_, length, digest) in enumerate(manifest.chunks):
            if digest == "zero":
                data = bytes(length)
            else:
                data = await self._get_chunk(backup_id, index)
                if len(data) != length or hashlib.sha256(data).hexdigest() != digest:
                    raise ChecksumMismatch(f"Backup chunk {index} failed its checksum")
            whole.update(data)
            yield data
        if manifest.digest and whole.hexdigest() != manifest.digest:
            raise ChecksumMismatch("The backup failed its checksum")


class MemoryBackupStore(BackupStore):
    def __init__(self) -> None:
        self.chunks: dict[tuple[str, int], bytes] = {}
        self.manifests: dict[str, Manifest] = {}

    async def _put_chunk(self, backup_id: str, index: int, data: bytes) -> None:
        self.chunks[(backup_id, index)] = data

    async def _get_chunk(self, backup_id: str, index: int) -> bytes:
        try:
            return self.chunks[(backup_id, index)]
        except KeyError:
            raise BackupError("A backup chunk is missing") from None

    async def _put_manifest(self, backup_id: str, manifest: Manifest) -> None:
        self.manifests[backup_id] = manifest

    async def _get_manifest(self, backup_id: str) -> Manifest:
        try:
            return self.manifests[backup_id]
        except KeyError:
            raise BackupError("The backup's data is missing") from None

    async def delete(self, backup_id: str) -> None:
        self.manifests.pop(backup_id, None)
        for key in [k for k in self.chunks if k[0] == backup_id]:
            del self.chunks[key]
