"""Choosing the accelerator: ``kvm``, ``tcg``, or ``auto`` = KVM only when proven.

Nested KVM can accept ``KVM_CREATE_VM`` and still hang the guest right after the kernel
decompresses (../shared/ENVIRONMENT.md). So ``auto`` boots the host's own kernel under KVM
with no root file system and waits for it to reach the panic that follows (the kernel ran
its whole early boot): that proves KVM; anything else within the probe limit means TCG.
The probe never hangs: it is killed at the limit. Its answer is cached per host in
``<data_dir>/kvm-probe.json`` (keyed by the kernel and QEMU binary).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PROOF = b"Kernel panic"


def probe_kernel() -> Path | None:
    kernels = sorted(Path("/boot").glob("vmlinuz-*"), key=lambda p: p.stat().st_mtime)
    readable = [k for k in kernels if os.access(k, os.R_OK)]
    return readable[-1] if readable else None


async def probe_kvm(binary: str, limit: float) -> tuple[bool, str]:
    """(works, why)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "no usable /dev/kvm"
    kernel = probe_kernel()
    if kernel is None:
        return False, "no kernel in /boot to prove KVM with"
    with tempfile.TemporaryDirectory(prefix="qemu-kvm-probe-") as tmp:
        log_path = Path(tmp) / "serial.log"
        proc = await asyncio.create_subprocess_exec(
            binary, "-machine", "pc,accel=kvm", "-cpu", "host,-arch-capabilities",
            "-m", "128", "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-serial", f"file:{log_path}", "-kernel", str(kernel),
            "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        try:
            while loop.time() < deadline:
                if log_path.exists() and PROOF in log_path.read_bytes():
                    return True, f"booted {kernel.name} under KVM"
                if proc.returncode is not None:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 0.2)
            text = log_path.read_bytes() if log_path.exists() else b""
            if PROOF in text:
                return True, f"booted {kernel.name} under KVM"
            err = b""
            if proc.returncode is not None and proc.stderr is not None:
                err = await proc.stderr.read()
            reason = err.decode(errors="replace").strip()[-200:] or (
                f"the probe guest did not finish booting within {limit:.0f} s")
            return False, reason
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()


async def choose(mode: str, binary: str, limit: float, cache: Path) -> str:
    """The accelerator to use: ``kvm`` or ``tcg``."""
    if mode in ("kvm", "tcg"):
        return mode
    kernel = probe_kernel()
    key = f"{binary}|{kernel}|{kernel.stat().st_mtime if kernel else ''}"
    saved = _load(cache)
    if saved.get("key") == key and saved.get("accel") in ("kvm", "tcg"):
        return str(saved["accel"])
    works, why = await probe_kvm(binary, limit)
    accel = "kvm" if works else "tcg"
    log.info("accelerator: %s (%s)", accel, why)
    _save(cache, {"key": key, "accel": accel, "why": why})
    return accel


def _load(cache: Path) -> dict[str, str]:
    try:
        data = json.loads(cache.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(cache: Path, data: dict[str, str]) -> None:
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(data))
