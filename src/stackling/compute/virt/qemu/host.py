"""The real host's capacity: CPUs, memory (MemTotal), disk (the data dir's file system).
Allocation ratios and reserved amounts are applied by placement (``[compute]``)."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any


def vcpus() -> int:
    return len(os.sched_getaffinity(0)) or os.cpu_count() or 1


def memory_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 0


def local_gb(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).total // 1024**3


def qemu_version(binary: str) -> int:
    """Nova's integer form: 7.2.22 -> 7002022."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
        numbers = out.split("version", 1)[1].split()[0].split(".")
        major, minor, micro = (int("".join(c for c in n if c.isdigit()) or 0)
                               for n in ([*numbers, "0", "0"])[:3])
        return major * 1000000 + minor * 1000 + micro
    except (OSError, IndexError, ValueError, subprocess.TimeoutExpired):
        return 0


def cpu_info() -> dict[str, Any]:
    model, vendor = "unknown", "unknown"
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and model == "unknown":
                    model = value
                elif key == "vendor_id" and vendor == "unknown":
                    vendor = value
                elif key == "flags" and not flags:
                    flags = value.split()
    except OSError:
        pass
    n = vcpus()
    return {"arch": platform.machine(), "model": model, "vendor": vendor,
            "topology": {"sockets": 1, "cores": n, "threads": 1}, "features": flags[:64]}


def host_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
