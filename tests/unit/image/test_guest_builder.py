"""The tiny guest builder on a fake host: inputs, cache keys, reuse, missing packages."""

from __future__ import annotations

import gzip
import json
import os
import struct
from pathlib import Path

import pytest

from stackling.cli.main import build_parser
from stackling.image.guest import builder, disk, host, kmods
from tests.unit.image.test_guest_cpio import parse_newc

VERSION = "6.1.0-99-amd64"


def static_elf(path: Path) -> Path:
    """A 64-bit x86 ELF header with no program headers: "static" as far as we look."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<H", header, 0x12, 0x3E)
    struct.pack_into("<Q", header, 0x20, 64)
    struct.pack_into("<HH", header, 0x36, 56, 0)
    path.write_bytes(bytes(header) + b"busybox")
    path.chmod(0o755)
    return path


def dynamic_elf(path: Path) -> Path:
    header = bytearray(64 + 56)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<H", header, 0x12, 0x3E)
    struct.pack_into("<Q", header, 0x20, 64)
    struct.pack_into("<HH", header, 0x36, 56, 1)
    struct.pack_into("<I", header, 64, 3)  # PT_INTERP
    path.write_bytes(bytes(header))
    return path


class FakeHost:
    def __init__(self, root: Path) -> None:
        self.boot = root / "boot"
        self.modules_root = root / "lib" / "modules"
        self.boot.mkdir(parents=True)
        self.add_kernel(VERSION)
        self.busybox = static_elf(root / "busybox")

    def add_kernel(self, version: str) -> None:
        (self.boot / f"vmlinuz-{version}").write_bytes(b"bzImage " + version.encode())
        tree = self.modules_root / version
        lines = []
        for want in kmods.WANTED_MODULES:
            name = kmods.canonical(want)
            rel = f"kernel/{name}.ko"
            (tree / "kernel").mkdir(parents=True, exist_ok=True)
            (tree / rel).write_bytes(b"\x7fELF " + name.encode())
            lines.append(f"{rel}:")
        (tree / "modules.dep").write_text("\n".join(lines) + "\n")

    def inputs(self) -> builder.Inputs:
        return builder.gather_inputs(self.boot, self.modules_root, (self.busybox,))


@pytest.fixture
def fake(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path / "host")


def test_gather_inputs(fake: FakeHost) -> None:
    inputs = fake.inputs()
    assert inputs.kernel.version == VERSION
    assert inputs.busybox == fake.busybox
    assert [m.name for m in inputs.modules][:3] == ["virtio_ring", "virtio",
                                                     "virtio_pci_legacy_dev"]
    assert "init" in inputs.userland


def test_newest_kernel_wins(fake: FakeHost) -> None:
    fake.add_kernel("6.1.0-100-amd64")
    fake.add_kernel("6.1.0-9-amd64")
    (fake.boot / "vmlinuz-6.5.0-1-amd64").write_bytes(b"no modules for this one")
    assert fake.inputs().kernel.version == "6.1.0-100-amd64"


def test_missing_packages_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "boot"
    empty.mkdir()
    with pytest.raises(host.HostMissing) as info:
        builder.gather_inputs(empty, tmp_path / "modules",
                              (dynamic_elf(tmp_path / "busybox"),))
    message = str(info.value)
    assert "linux-image-amd64" in message and "busybox-static" in message
    assert "apt-get install busybox-static linux-image-amd64" in message


def test_static_elf_check(tmp_path: Path) -> None:
    assert host.is_static_elf(static_elf(tmp_path / "a"))
    assert not host.is_static_elf(dynamic_elf(tmp_path / "b"))
    (tmp_path / "c").write_text("#!/bin/sh\n")
    assert not host.is_static_elf(tmp_path / "c")
    assert not host.is_static_elf(tmp_path / "missing")


def test_disk_tools_missing_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(host, "which", lambda tool: None)
    with pytest.raises(host.HostMissing) as info:
        host.find_disk_tools((tmp_path / "mbr.bin",))
    for package in ("dosfstools", "mtools", "syslinux", "qemu-utils", "syslinux-common"):
        assert package in str(info.value)


def test_cache_key(fake: FakeHost, monkeypatch: pytest.MonkeyPatch) -> None:
    key = fake.inputs().key()
    assert key.startswith(f"{VERSION}-b{builder.BUILDER_VERSION}-")
    assert fake.inputs().key() == key  # stable
    monkeypatch.setattr(builder, "BUILDER_VERSION", builder.BUILDER_VERSION + 1)
    assert fake.inputs().key() != key
    monkeypatch.undo()
    module = fake.modules_root / VERSION / "kernel" / "ext4.ko"
    os.utime(module, ns=(1, 1))  # a rebuilt module (same version) is a new build
    changed = fake.inputs().key()
    assert changed != key
    inputs = fake.inputs()
    inputs.userland["init"] = (inputs.userland["init"][0] + b"#\n", 0o755)
    assert inputs.key() != changed


def test_build_and_reuse(fake: FakeHost, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    (cache / "6.0.0-old-b1-abc").mkdir(parents=True)  # an older build: pruned
    said: list[str] = []
    guest = builder.build_tiny_guest_sync(cache, disk=False, inputs=fake.inputs(),
                                          say=said.append)
    assert guest.directory == cache / guest.key
    assert guest.kernel.read_bytes() == f"bzImage {VERSION}".encode()
    assert guest.disk is None
    assert sorted(p.name for p in cache.iterdir()) == [".lock", guest.key]
    manifest = json.loads((guest.directory / "manifest.json").read_text())
    assert manifest["key"] == guest.key and manifest["kernel_version"] == VERSION
    assert manifest["files"]["tiny-initrd.img"]["size"] == guest.initrd.stat().st_size
    assert any("building" in line for line in said)

    entries = {e["name"]: e for e in parse_newc(gzip.decompress(guest.initrd.read_bytes()))}
    assert entries["init"]["data"].startswith(b"#!/bin/sh")
    assert entries["bin/busybox"]["data"] == fake.busybox.read_bytes()
    assert entries["bin/sh"]["data"] == b"busybox"
    assert entries["lib/modules/virtio_net.ko"]["data"] == b"\x7fELF virtio_net"
    assert entries["dev/console"]["rdevmajor"] == 5

    def no_rebuild(*args: object) -> None:
        raise AssertionError("rebuilt a cached guest")

    monkeypatch.setattr(builder, "write_initramfs", no_rebuild)
    again = builder.build_tiny_guest_sync(cache, disk=False, inputs=fake.inputs(),
                                          say=said.append)
    assert again == guest
    assert "cached" in said[-1]


def test_unfinished_entry_is_rebuilt(fake: FakeHost, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    inputs = fake.inputs()
    (cache / inputs.key()).mkdir(parents=True)  # no manifest: a crashed build
    (cache / inputs.key() / "tiny-vmlinuz").write_bytes(b"partial")
    guest = builder.build_tiny_guest_sync(cache, disk=False, inputs=inputs)
    assert guest.kernel.read_bytes() != b"partial"


def test_disk_required_but_tools_missing(fake: FakeHost, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "which", lambda tool: None)
    with pytest.raises(host.HostMissing, match="mtools"):
        builder.build_tiny_guest_sync(tmp_path / "cache", disk=True, inputs=fake.inputs())
    said: list[str] = []
    guest = builder.build_tiny_guest_sync(tmp_path / "cache", disk=None,
                                          inputs=fake.inputs(), say=said.append)
    assert guest.disk is None
    assert any("no bootable disk image" in line and "mtools" in line for line in said)


def test_copy_outputs(fake: FakeHost, tmp_path: Path) -> None:
    guest = builder.build_tiny_guest_sync(tmp_path / "cache", disk=False,
                                          inputs=fake.inputs())
    copies = builder.copy_outputs(guest, tmp_path / "out")
    assert [p.name for p in copies] == ["tiny-vmlinuz", "tiny-initrd.img"]
    assert copies[1].read_bytes() == guest.initrd.read_bytes()


def test_partition_table() -> None:
    total = disk.disk_size(11 * disk.MIB)
    assert total % (8 * disk.MIB) == 0 and total >= 32 * disk.MIB
    assert disk.disk_size(100 * disk.MIB) >= 100 * disk.MIB + 5 * disk.MIB
    mbr = disk.partition_table(total, b"\xfa" * 440)
    assert len(mbr) == 512 and mbr[:440] == b"\xfa" * 440 and mbr[510:] == b"\x55\xaa"
    entry = mbr[446:462]
    assert entry[0] == 0x80 and entry[4] == disk.FAT16_LBA
    start, sectors = struct.unpack_from("<II", entry, 8)
    assert start == 2048 and (start + sectors) * 512 == total
    assert mbr[462:510] == bytes(48)  # the other three entries are empty
    with pytest.raises(ValueError):
        disk.partition_table(total, b"x" * 441)


def test_syslinux_cfg() -> None:
    cfg = disk.syslinux_cfg("console=ttyS0")
    assert "LINUX /vmlinuz" in cfg and "INITRD /initrd.img" in cfg
    assert "APPEND console=ttyS0" in cfg and "TIMEOUT 0" in cfg


def test_cli_parses_build_tiny() -> None:
    args = build_parser().parse_args(["image", "build-tiny", "--data-dir", "/tmp/d",
                                      "--output", "/tmp/o", "--register", "--no-disk"])
    assert (args.command, args.image_command) == ("image", "build-tiny")
    assert args.data_dir == Path("/tmp/d") and args.output == Path("/tmp/o")
    assert args.register and args.no_disk
