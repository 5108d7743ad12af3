"""What the tiny guest is made of on this host: kernel, busybox, disk tools.

Each lookup names the Debian package that provides the missing piece, so a failed build says
exactly what to ``apt-get install``.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

KERNEL_PACKAGE = "linux-image-amd64"
BUSYBOX_PACKAGE = "busybox-static"
# tool -> Debian package, for the bootable disk image
DISK_TOOLS = {
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "syslinux": "syslinux",
    "qemu-img": "qemu-utils",
}
MBR_CANDIDATES = (
    Path("/usr/lib/syslinux/mbr/mbr.bin"),  # syslinux-common
    Path("/usr/lib/SYSLINUX/mbr.bin"),  # syslinux
    Path("/usr/lib/EXTLINUX/mbr.bin"),  # extlinux
)
BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


class HostMissing(Exception):
    """The host lacks a package the tiny guest is built from."""

    def __init__(self, missing: dict[str, str]) -> None:
        self.missing = dict(missing)  # what -> Debian package
        packages = " ".join(sorted(set(self.missing.values())))
        details = "; ".join(f"{what} (package {pkg})" for what, pkg in self.missing.items())
        super().__init__(f"the tiny guest image needs: {details}. "
                         f"Install with: apt-get install {packages}")


@dataclass(frozen=True)
class Kernel:
    version: str
    vmlinuz: Path
    modules: Path  # /lib/modules/<version>


@dataclass(frozen=True)
class DiskTools:
    mkfs_vfat: str
    mcopy: str
    syslinux: str
    qemu_img: str
    mbr: Path


def _version_key(version: str) -> list[tuple[int, object]]:
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.split(r"(\d+)", version) if part]


def find_kernel(boot: Path = Path("/boot"), modules_root: Path = Path("/lib/modules"),
                version: str | None = None) -> Kernel:
    """The newest kernel that has both ``/boot/vmlinuz-<v>`` and ``modules.dep``
    (or exactly ``version``)."""
    found: list[Kernel] = []
    for vmlinuz in sorted(boot.glob("vmlinuz-*")):
        v = vmlinuz.name[len("vmlinuz-"):]
        if version is not None and v != version:
            continue
        mods = modules_root / v
        if (mods / "modules.dep").is_file() and os.access(vmlinuz, os.R_OK):
            found.append(Kernel(v, vmlinuz, mods))
    if not found:
        what = f"a kernel {version}" if version else "a kernel"
        raise HostMissing({f"{what} with modules ({boot}/vmlinuz-*, readable, and "
                           f"{modules_root}/<version>/modules.dep)": KERNEL_PACKAGE})
    return max(found, key=lambda k: _version_key(k.version))


def is_static_elf(path: Path) -> bool:
    """True for a 64-bit x86 ELF executable without a program interpreter (static)."""
    try:
        with path.open("rb") as fh:
            header = fh.read(64)
            if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or \
                    header[5] != 1:
                return False
            machine, = struct.unpack_from("<H", header, 0x12)
            phoff, = struct.unpack_from("<Q", header, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
            if machine != 0x3E or phentsize < 4:
                return False
            for i in range(phnum):
                fh.seek(phoff + i * phentsize)
                p_type, = struct.unpack("<I", fh.read(4))
                if p_type == 3:  # PT_INTERP: dynamically linked
                    return False
            return True
    except (OSError, struct.error):
        return False


def find_busybox(candidates: tuple[Path, ...] = BUSYBOX_CANDIDATES) -> Path:
    for path in candidates:
        if path.is_file() and is_static_elf(path):
            return path
    raise HostMissing({"a statically linked busybox (/bin/busybox)": BUSYBOX_PACKAGE})


def which(tool: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN])
    return shutil.which(tool, path=path)


def find_disk_tools(mbr_candidates: tuple[Path, ...] = MBR_CANDIDATES) -> DiskTools:
    """The tools that make the bootable disk image, or :class:`HostMissing`."""
    found: dict[str, str] = {}
    missing: dict[str, str] = {}
    for tool, package in DISK_TOOLS.items():
        path = which(tool)
        if path is None:
            missing[tool] = package
        else:
            found[tool] = path
    mbr = next((p for p in mbr_candidates if p.is_file()), None)
    if mbr is None:
        missing["syslinux mbr.bin"] = "syslinux-common"
    if missing:
        raise HostMissing(missing)
    assert mbr is not None
    return DiskTools(found["mkfs.vfat"], found["mcopy"], found["syslinux"],
                     found["qemu-img"], mbr)
