"""QMP control of one VM, through the ``qemu.qmp`` library.

Each operation opens its own short connection to the VM's ``qmp.sock`` (QEMU serves one
client at a time; the driver serializes per instance), so nothing is held across an agent
restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from qemu.qmp import ExecuteError, QMPClient, QMPError

from stackling.compute.virt.qemu.layout import InstanceFiles

logging.getLogger("qemu.qmp").setLevel(logging.ERROR)  # it logs every failed connect


class MonitorError(Exception):
    """QMP failed (no socket, QEMU gone, or a command error); ``str()`` says which."""


class Monitor:
    def __init__(self, client: QMPClient) -> None:
        self.client = client

    async def execute(self, command: str, arguments: dict[str, Any] | None = None,
                      limit: float = 30.0) -> Any:
        try:
            return await asyncio.wait_for(self.client.execute(command, arguments), limit)
        except ExecuteError as exc:
            raise MonitorError(f"QMP {command}: {exc.error.error.desc}") from exc
        except (QMPError, OSError, EOFError) as exc:
            raise MonitorError(f"QMP {command}: {exc or type(exc).__name__}") from exc
        except TimeoutError as exc:
            raise MonitorError(f"QMP {command}: no answer within {limit:.0f} s") from exc

    async def status(self) -> str:
        reply = await self.execute("query-status")
        return str(reply["status"])

    async def wait_status(self, done: Callable[[str], bool], limit: float) -> str | None:
        """Poll the run state until ``done(status)``; None on limit."""
        deadline = time.monotonic() + limit
        while True:
            status = await self.status()
            if done(status):
                return status
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)

    async def migrate_to_file(self, target: str, limit: float = 300.0) -> None:
        """Save the (stopped) guest's state with ``migrate`` to ``exec:cat > target``."""
        await self.execute("migrate", {"uri": f"exec:cat > '{target}'"})
        deadline = time.monotonic() + limit
        while True:
            info = await self.execute("query-migrate")
            state = info.get("status")
            if state == "completed":
                return
            if state in ("failed", "cancelled"):
                raise MonitorError(f"saving the guest state failed: {info.get('error-desc')}")
            if time.monotonic() >= deadline:
                with contextlib.suppress(MonitorError):
                    await self.execute("migrate_cancel")
                raise MonitorError("saving the guest state timed out")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def connect(files: InstanceFiles, limit: float = 10.0) -> AsyncIterator[Monitor]:
    client = QMPClient(files.uuid)
    try:
        await asyncio.wait_for(client.connect(str(files.qmp)), limit)
    except (QMPError, OSError, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            await client.disconnect()
        raise MonitorError(f"cannot reach the VM's QEMU monitor: {exc or type(exc).__name__}"
                           ) from exc
    try:
        yield Monitor(client)
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()
