"""A bootable disk with the tiny guest: MBR + one FAT16 partition holding SYSLINUX, the
kernel and the initramfs, converted to qcow2.

No loop devices and no root: the partition table is written here, ``mkfs.vfat --offset``
formats the partition inside the image file, ``mcopy`` copies files in and the mtools
flavour of ``syslinux`` installs the boot loader into the partition; SYSLINUX's ``mbr.bin``
chain-loads the active partition's boot sector.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from stackling.image.guest.host import DiskTools

SECTOR = 512
MIB = 1024 * 1024
PART_START = 2048  # sectors: the usual 1 MiB alignment
FAT16_LBA = 0x0E
DISK_SIGNATURE = 0x5AC1E000
VOLUME_ID = "5ac1e000"
LABEL = "TINYBOOT"


def disk_size(payload_bytes: int) -> int:
    """Whole disk bytes: the payload plus room (FAT, boot loader), in 8 MiB steps,
    at least 32 MiB (FAT16 needs a few thousand clusters)."""
    need = PART_START * SECTOR + payload_bytes + 4 * MIB
    step = 8 * MIB
    return max(32 * MIB, -(-need // step) * step)


def partition_table(total_bytes: int, boot_code: bytes) -> bytes:
    """The 512-byte MBR: ``boot_code`` (<= 440 bytes), one active FAT16 (LBA) partition
    from 1 MiB to the end of the disk. CHS fields say "use LBA"."""
    if len(boot_code) > 440:
        raise ValueError("MBR boot code is larger than 440 bytes")
    sectors = total_bytes // SECTOR - PART_START
    mbr = bytearray(SECTOR)
    mbr[: len(boot_code)] = boot_code
    mbr[440:444] = DISK_SIGNATURE.to_bytes(4, "little")
    entry = bytearray(16)
    entry[0] = 0x80  # active
    entry[1:4] = b"\xfe\xff\xff"
    entry[4] = FAT16_LBA
    entry[5:8] = b"\xfe\xff\xff"
    entry[8:12] = PART_START.to_bytes(4, "little")
    entry[12:16] = sectors.to_bytes(4, "little")
    mbr[446:462] = entry
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def syslinux_cfg(cmdline: str) -> str:
    return (
        "SERIAL 0 115200\n"
        "DEFAULT tiny\n"
        "PROMPT 0\n"
        "TIMEOUT 0\n"
        "LABEL tiny\n"
        "  LINUX /vmlinuz\n"
        "  INITRD /initrd.img\n"
        f"  APPEND {cmdline}\n"
    )


def _run(argv: list[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{Path(argv[0]).name} failed (exit {proc.returncode}): "
                           + " / ".join(detail))


def make_boot_disk(tools: DiskTools, kernel: Path, initrd: Path, cmdline: str, out: Path,
                   workdir: Path) -> None:
    """Write ``out`` (qcow2). ``workdir`` holds the raw image meanwhile (removed after)."""
    payload = kernel.stat().st_size + initrd.stat().st_size
    total = disk_size(payload)
    raw = workdir / "disk.raw"
    cfg = workdir / "syslinux.cfg"
    cfg.write_text(syslinux_cfg(cmdline))
    try:
        with raw.open("wb") as fh:
            fh.truncate(total)
            fh.write(partition_table(total, tools.mbr.read_bytes()[:440]))
        part_kib = (total - PART_START * SECTOR) // 1024
        _run([tools.mkfs_vfat, f"--offset={PART_START}", "-h", str(PART_START), "-F", "16",
              "-n", LABEL, "-i", VOLUME_ID, "--invariant", str(raw), str(part_kib)])
        image = f"{raw}@@{PART_START * SECTOR}"
        env = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "1", "PATH": "/usr/bin:/bin",
               "SOURCE_DATE_EPOCH": "0"}
        _run([tools.mcopy, "-i", image, str(kernel), "::/vmlinuz"], env)
        _run([tools.mcopy, "-i", image, str(initrd), "::/initrd.img"], env)
        _run([tools.mcopy, "-i", image, str(cfg), "::/syslinux.cfg"], env)
        _run([tools.syslinux, "--offset", str(PART_START * SECTOR), "--install", str(raw)], env)
        _run([tools.qemu_img, "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(out)])
    finally:
        raw.unlink(missing_ok=True)
        cfg.unlink(missing_ok=True)
