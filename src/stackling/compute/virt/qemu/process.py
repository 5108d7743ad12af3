"""QEMU processes: start one (it daemonizes), find it again from its pidfile, end it.

A pid is only trusted when ``/proc/<pid>/cmdline`` is a QEMU carrying the instance's
``-uuid``: a stale pidfile whose number was reused by another process is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

from stackling.compute.virt.qemu.layout import InstanceFiles


class LaunchFailed(Exception):
    """QEMU refused to start; ``str()`` is its stderr tail."""


async def launch(argv: list[str], files: InstanceFiles, limit: float = 60.0) -> int:
    """Run QEMU until it daemonizes; returns the VM's pid. Raises :class:`LaunchFailed`
    with QEMU's own words when it exits non-zero (the stderr is kept in ``stderr.log``)."""
    files.pidfile.unlink(missing_ok=True)
    with files.stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=err, start_new_session=True)
        try:
            code = await asyncio.wait_for(proc.wait(), limit)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise LaunchFailed(f"QEMU did not finish starting within {limit:.0f} s") from None
    if code != 0:
        raise LaunchFailed(files.stderr_tail() or f"QEMU exited with status {code}")
    pid = find(files)
    if pid is None:
        raise LaunchFailed("QEMU started but wrote no pidfile")
    return pid


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def find(files: InstanceFiles) -> int | None:
    """The live QEMU of this instance, or None."""
    try:
        pid = int(files.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if owns(pid, files.uuid) else None


def owns(pid: int, uuid: str) -> bool:
    args = _cmdline(pid)
    if not args or "qemu" not in os.path.basename(args[0]) or _is_zombie(pid):
        return False
    return any(a == uuid for a in args)


async def wait_gone(pid: int, uuid: str, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while owns(pid, uuid):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def kill(files: InstanceFiles, limit: float = 10.0) -> None:
    """End the instance's QEMU for sure (SIGTERM, then SIGKILL). Idempotent."""
    pid = find(files)
    if pid is None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if await wait_gone(pid, files.uuid, limit if sig == signal.SIGTERM else 30.0):
            return
    raise OSError(f"QEMU process {pid} did not exit")


def scan(root_dirs: list[InstanceFiles]) -> dict[str, int]:
    """uuid -> pid of every instance directory whose QEMU is alive."""
    found: dict[str, int] = {}
    for files in root_dirs:
        pid = find(files)
        if pid is not None:
            found[files.uuid] = pid
    return found
