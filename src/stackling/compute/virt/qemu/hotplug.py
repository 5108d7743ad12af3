"""Hot-plug over QMP: volumes (``blockdev-add`` + ``device_add virtio-blk-pci``) and
interfaces (``netdev_add tap`` + ``device_add virtio-net-pci``), and their removal.

The block storage and network issues call these through the driver's ``attach_volume`` /
``detach_volume`` / ``attach_interface`` / ``detach_interface``. Each undoes its first
step when the second fails, so a failed attach leaves the VM as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from stackling.compute.virt.qemu.monitor import Monitor, MonitorError


def volume_node(volume_id: str) -> str:
    return f"vol-{volume_id[:20]}"


async def attach_volume(mon: Monitor, volume_id: str, connection: dict[str, Any],
                        serial: str | None = None) -> None:
    """``connection``: a QMP ``blockdev-add`` protocol node without ``node-name``, e.g.
    ``{"driver": "file", "filename": "/path"}`` or ``{"driver": "nbd", "server": {...},
    "export": "..."}``; ``format`` (default raw) is layered on top."""
    node = volume_node(volume_id)
    proto = {k: v for k, v in connection.items() if k not in ("format", "read_only")}
    await mon.execute("blockdev-add", {
        "node-name": node, "driver": connection.get("format", "raw"),
        "file": proto, "read-only": bool(connection.get("read_only", False))})
    try:
        await mon.execute("device_add", {"driver": "virtio-blk-pci", "drive": node,
                                         "id": f"dev-{node}",
                                         "serial": (serial or volume_id)[:20]})
    except MonitorError:
        with contextlib.suppress(MonitorError):
            await mon.execute("blockdev-del", {"node-name": node})
        raise


async def detach_volume(mon: Monitor, volume_id: str, limit: float = 30.0) -> None:
    node = volume_node(volume_id)
    await _device_del(mon, f"dev-{node}", limit)
    # the device leaves /machine/peripheral a moment before it lets go of its node
    deadline = time.monotonic() + limit
    while True:
        try:
            await mon.execute("blockdev-del", {"node-name": node})
            return
        except MonitorError as exc:
            if "in use" not in str(exc) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def attach_interface(mon: Monitor, port_id: str, tap: str, mac: str) -> None:
    await mon.execute("netdev_add", {"type": "tap", "id": f"hp-{port_id[:11]}",
                                     "ifname": tap, "script": "no", "downscript": "no"})
    try:
        await mon.execute("device_add", {"driver": "virtio-net-pci",
                                         "netdev": f"hp-{port_id[:11]}", "mac": mac,
                                         "id": f"nic-{port_id[:11]}"})
    except MonitorError:
        with contextlib.suppress(MonitorError):
            await mon.execute("netdev_del", {"id": f"hp-{port_id[:11]}"})
        raise


async def detach_interface(mon: Monitor, port_id: str, limit: float = 30.0) -> None:
    await _device_del(mon, f"nic-{port_id[:11]}", limit)
    await mon.execute("netdev_del", {"id": f"hp-{port_id[:11]}"})


async def _device_del(mon: Monitor, device: str, limit: float) -> None:
    """Ask the guest to release the device and wait until QEMU removed it (PCI unplug
    needs the guest's cooperation)."""
    await mon.execute("device_del", {"id": device})
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        paths = await mon.execute("qom-list", {"path": "/machine/peripheral"})
        if not any(p.get("name") == device for p in paths):
            return
        await asyncio.sleep(0.2)
    raise MonitorError(f"the guest did not release {device} within {limit:.0f} s")
