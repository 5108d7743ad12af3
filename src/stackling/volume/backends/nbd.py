"""The ``nbd`` backend: the ``file`` backend's volumes, exported to other hosts over NBD.

``export`` starts one ``qemu-nbd`` per volume, listening on ``host`` (a storage node's
address; 127.0.0.1 on one machine) on a free port of ``[port_min, port_max]``, serving the
volume's guest-visible (raw) data under the export name ``volume-<id>``. A hypervisor on any
node opens ``nbd://host:port/volume-<id>``. ``unexport`` (and deleting the volume) stops the
process; ``close`` stops them all, and ``start`` re-exports the volumes the database says are
attached, on the same ports when they are free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path
from typing import Any

from stackling.volume.backends.base import BackendError
from stackling.volume.backends.file import FileBackend

LOG = logging.getLogger(__name__)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def _listening(host: str, port: int, proc: asyncio.subprocess.Process) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while loop.time() < deadline:
        if proc.returncode is not None:
            return False
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        return True
    return False


class NbdBackend(FileBackend):
    protocol = "nbd"

    def __init__(self, name: str, pool: Path, volume_format: str = "raw", *,
                 host: str = "127.0.0.1", port_min: int = 10809, port_max: int = 10909,
                 capacity_gb: int = 0, max_over_subscription_ratio: float = 20.0,
                 reserved_percentage: int = 0) -> None:
        super().__init__(name, pool, volume_format, capacity_gb, max_over_subscription_ratio,
                         reserved_percentage)
        self.host = host
        self.port_min = port_min
        self.port_max = port_max
        self.procs: dict[str, tuple[int, asyncio.subprocess.Process]] = {}
        self._lock = asyncio.Lock()

    async def start(self, exports: dict[str, dict[str, Any]] | None = None) -> None:
        await super().start(exports)
        for volume_id, info in (exports or {}).items():
            port = info.get("data", {}).get("port")
            try:
                await self._export(volume_id, int(port) if port else None)
            except BackendError as exc:
                LOG.error("re-exporting volume %s failed: %s", volume_id, exc)

    async def close(self) -> None:
        for volume_id in list(self.procs):
            await self.unexport(volume_id)

    def _info(self, volume_id: str, port: int) -> dict[str, Any]:
        return {"driver_volume_type": "nbd",
                "data": {"host": self.host, "port": port, "export_name": f"volume-{volume_id}",
                         "format": "raw", "volume_id": volume_id}}

    def _pick_port(self, wanted: int | None) -> int:
        taken = {port for port, _ in self.procs.values()}
        candidates = ([wanted] if wanted else []) + list(range(self.port_min,
                                                               self.port_max + 1))
        for port in candidates:
            if port not in taken and _port_free(self.host, port):
                return port
        raise BackendError("No free NBD port on the storage node")

    async def _export(self, volume_id: str, wanted: int | None) -> dict[str, Any]:
        async with self._lock:
            current = self.procs.get(volume_id)
            if current is not None and current[1].returncode is None:
                return self._info(volume_id, current[0])
            path = self._existing(self.volume_path(volume_id), f"volume {volume_id}")
            port = self._pick_port(wanted)
            proc = await asyncio.create_subprocess_exec(
                "qemu-nbd", "--persistent", "--shared=8", "--cache=none", "--aio=threads",
                "-f", self.format, "-x", f"volume-{volume_id}", "-b", self.host,
                "-p", str(port), str(path),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE)
            if not await _listening(self.host, port, proc):
                await self._stop(proc)
                raise BackendError("The NBD export did not start")
            self.procs[volume_id] = (port, proc)
            return self._info(volume_id, port)

    async def export(self, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        return await self._export(volume_id, None)

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()

    async def unexport(self, volume_id: str) -> None:
        async with self._lock:
            entry = self.procs.pop(volume_id, None)
            if entry is not None:
                await self._stop(entry[1])
