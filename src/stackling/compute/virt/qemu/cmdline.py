"""The QEMU command line of a VM, from its :class:`LaunchSpec` (pure: no side effects).

QEMU daemonizes once the VM is set up (``-daemonize``): the launch returns after QEMU has
opened every file and socket, a start-up error comes back on stderr with a non-zero exit,
and the VM is nobody's child, so it outlives an agent restart. ``-no-shutdown`` keeps the
process when the guest powers off (QMP then reports ``shutdown``), so a vanished process
always means it was killed or crashed.
"""

from __future__ import annotations

import json
from typing import Any

from stackling.compute.virt.qemu.hotplug import volume_node
from stackling.compute.virt.qemu.layout import InstanceFiles, LaunchSpec


def _blockdev(name: str, vol: dict[str, Any]) -> str:
    proto = {k: v for k, v in vol.items() if k not in ("format", "read_only")}
    return json.dumps({"node-name": name, "driver": vol.get("format", "raw"), "file": proto,
                       "read-only": bool(vol.get("read_only", False))},
                      separators=(",", ":"))


def _root_disk(spec: LaunchSpec, files: InstanceFiles) -> list[str]:
    """The root disk: the instance's qcow2 overlay, or the root volume (boot from volume)
    as a -blockdev node over the connection the block storage service gave."""
    if spec.root_volume is None:
        return ["-drive", f"file={files.disk},if=none,id=drive-root,format=qcow2,"
                          "cache=writeback,discard=unmap",
                "-device", "virtio-blk-pci,drive=drive-root,id=root,bootindex=1"]
    return ["-blockdev", _blockdev("drive-root", spec.root_volume),
            "-device", "virtio-blk-pci,drive=drive-root,id=root,bootindex=1"]


def build(binary: str, spec: LaunchSpec, files: InstanceFiles,
          incoming: str | None = None) -> list[str]:
    argv = [
        binary, "-name", f"guest={spec.name},debug-threads=off", "-uuid", spec.uuid,
        "-machine", f"{spec.machine},accel={spec.accel}", "-m", str(spec.memory_mb),
        "-smp", str(max(1, spec.vcpus)), "-nodefaults", "-no-user-config",
        "-daemonize", "-pidfile", str(files.pidfile), "-no-shutdown",
        "-display", "none",
        "-qmp", f"unix:{files.qmp},server=on,wait=off",
        # the serial console: a socket for the interactive console, logged to a file
        "-chardev", f"socket,id=serial0,path={files.serial},server=on,wait=off,"
                    f"logfile={files.console_log},logappend=on",
        "-serial", "chardev:serial0",
        "-device", "virtio-balloon-pci,id=balloon0",
        *_root_disk(spec, files),
    ]
    if spec.accel == "kvm":
        argv += ["-cpu", "host,-arch-capabilities"]
    if spec.vnc:
        argv += ["-vga", spec.video, "-vnc", f"unix:{files.vnc}",
                 "-device", "usb-ehci,id=usb", "-device", "usb-tablet,bus=usb.0"]
    if spec.kernel:
        argv += ["-kernel", spec.kernel]
        if spec.initrd:
            argv += ["-initrd", spec.initrd]
        argv += ["-append", spec.cmdline or "console=ttyS0"]
    if spec.config_drive:
        argv += ["-drive", f"file={spec.config_drive},if=none,id=drive-config,media=cdrom,"
                           "readonly=on,format=raw",
                 "-device", "ide-cd,drive=drive-config,id=config"]
    for vol in spec.volumes:  # hot-plugged volumes, under the names hot-plug gave them
        node = volume_node(str(vol["volume_id"]))
        argv += ["-blockdev", _blockdev(node, dict(vol["connection"])),
                 "-device", f"virtio-blk-pci,drive={node},id=dev-{node},"
                            f"serial={str(vol['volume_id'])[:20]}"]
    for index, nic in enumerate(spec.nics):
        argv += ["-netdev", f"tap,id=net{index},ifname={nic['tap']},script=no,downscript=no",
                 "-device", f"virtio-net-pci,netdev=net{index},mac={nic['mac']},id=nic{index}"]
    if incoming:
        argv += ["-incoming", incoming]
    return argv
