"""The directory backup store: ``<dir>/<backup id>/chunk-NNNNNN`` plus ``manifest.json``
(written last, through a temporary name, so a backup without a manifest is incomplete)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from stackling.common.blocking import run_blocking
from stackling.volume.backup.store import BackupError, BackupStore, Manifest


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class DirectoryBackupStore(BackupStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, backup_id: str) -> Path:
        return self.root / backup_id

    async def start(self) -> None:
        await run_blocking(self.root.mkdir, parents=True, exist_ok=True)

    async def _put_chunk(self, backup_id: str, index: int, data: bytes) -> None:
        def put() -> None:
            self._dir(backup_id).mkdir(parents=True, exist_ok=True)
            _write(self._dir(backup_id) / f"chunk-{index:06d}", data)

        await run_blocking(put)

    async def _get_chunk(self, backup_id: str, index: int) -> bytes:
        try:
            return await run_blocking((self._dir(backup_id) / f"chunk-{index:06d}").read_bytes)
        except FileNotFoundError:
            raise BackupError("A backup chunk is missing") from None

    async def _put_manifest(self, backup_id: str, manifest: Manifest) -> None:
        def put() -> None:
            self._dir(backup_id).mkdir(parents=True, exist_ok=True)
            _write(self._dir(backup_id) / "manifest.json",
                   json.dumps(manifest.to_dict()).encode())

        await run_blocking(put)

    async def _get_manifest(self, backup_id: str) -> Manifest:
        try:
            raw = await run_blocking((self._dir(backup_id) / "manifest.json").read_bytes)
        except FileNotFoundError:
            raise BackupError("The backup's data is missing") from None
        return Manifest.from_dict(json.loads(raw))

    async def delete(self, backup_id: str) -> None:
        await run_blocking(shutil.rmtree, self._dir(backup_id), ignore_errors=True)
