"""The tiny guest's images registered in process (the first-start path of ``stackling up``),
through the same checks as the API: kernel (aki), ramdisk (ari), machine image (ami) naming
them, and the qcow2 disk."""

from __future__ import annotations

import os
from pathlib import Path

from stackling.cli.image import LocalRegistrar
from stackling.image.guest.builder import DISK_FILE, INITRD_FILE, KERNEL_FILE, TinyGuest
from stackling.image.guest.register import register_tiny_guest
from tests.functional.image.conftest import ImageCloud
from tests.unit.image.test_inspect import qcow2


def fake_guest(directory: Path, key: str = "k1") -> TinyGuest:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / KERNEL_FILE).write_bytes(b"MZ" + os.urandom(50_000))
    (directory / INITRD_FILE).write_bytes(b"\x1f\x8b" + os.urandom(80_000))
    (directory / DISK_FILE).write_bytes(qcow2(size=64 << 20))
    return TinyGuest(directory, key, "6.1.0-test", "console=ttyS0", True)


async def test_register_tiny_guest_in_process(image_cloud: ImageCloud, tmp_path: Path
                                              ) -> None:
    c = image_cloud
    registrar = LocalRegistrar(c.images)
    ids = await register_tiny_guest(fake_guest(tmp_path / "g1"), registrar)
    assert set(ids) == {"stackling-tiny-kernel", "stackling-tiny-ramdisk",
                        "stackling-tiny-kernel-boot", "stackling-tiny"}
    shown = {name: (await c.show(i, "demo")).json() for name, i in ids.items()}
    assert all(img["status"] == "active" and img["visibility"] == "public"
               for img in shown.values())
    ami = shown["stackling-tiny-kernel-boot"]
    assert ami["disk_format"] == "ami"
    assert ami["kernel_id"] == ids["stackling-tiny-kernel"]
    assert ami["ramdisk_id"] == ids["stackling-tiny-ramdisk"]
    assert shown["stackling-tiny"]["virtual_size"] == 64 << 20
    # the same build is reused; a new build replaces the old images
    assert await register_tiny_guest(fake_guest(tmp_path / "g1"), registrar) == ids
    newer = await register_tiny_guest(fake_guest(tmp_path / "g2", key="k2"), registrar)
    assert set(newer.values()).isdisjoint(ids.values())
    for old in ids.values():
        assert (await c.show(old)).status_code == 404
