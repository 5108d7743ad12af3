"""Data written through an attached volume survives a detach, a re-attach to another VM
and a snapshot (QEMU, TCG, the volume service's file backend).

VM1's user data waits for its second disk (/dev/vdb, the hot-plugged volume), writes a
1 MiB pattern to it with ``dd ... conv=fsync`` and prints the pattern's md5. The test
detaches the volume and attaches it to VM2, whose user data prints the md5 of the first
MiB of every ``vdb`` that appears (read with O_DIRECT, so from the volume, not a cache).
Then a snapshot of the volume becomes a new volume, attached to VM2: the same md5. The
md5 the test expects is computed here, from the same bytes the guest generates."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.qemu_cloud import MARK, QemuCloud, volume_cloud

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or
                       shutil.which("qemu-img") is None,
                       reason="apt-get install qemu-system-x86 qemu-utils"),
]

# the pattern: the decimal numbers 1..200000, one a line, cut to 1 MiB
PATTERN_CMD = "seq 1 200000 | head -c 1048576"
PATTERN = "".join(f"{i}\n" for i in range(1, 200001)).encode()[:1 << 20]

WRITER = f"""#!/bin/sh
(
  while [ ! -b /dev/vdb ]; do sleep 0.2; done
  {PATTERN_CMD} >/tmp/pattern
  dd if=/tmp/pattern of=/dev/vdb bs=64k conv=fsync 2>/dev/null
  rc=$?
  sync
  echo "{MARK} wrote rc=$rc md5 $(md5sum </tmp/pattern | cut -d' ' -f1)" >/dev/console
) &
"""

READER = f"""#!/bin/sh
(
  n=0
  while :; do
    while [ ! -b /dev/vdb ]; do sleep 0.2; done
    n=$((n+1))
    sum=$(dd if=/dev/vdb bs=64k count=16 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
    echo "{MARK} read $n serial $(cat /sys/block/vdb/serial) md5 $sum" >/dev/console
    while [ -b /dev/vdb ]; do sleep 0.2; done
  done
) &
"""

VOL = {"OpenStack-API-Version": "volume 3.70"}


async def until_line(cloud: QemuCloud, sid: str, prefix: str,
                     timeout: float = 150.0) -> str:
    """The first console line with ``MARK prefix``: what follows the prefix."""
    deadline = time.monotonic() + timeout
    while True:
        for line in (await cloud.console(sid)).splitlines():
            if f"{MARK} {prefix}" in line:
                return line.split(f"{MARK} {prefix}", 1)[1].strip()
        if time.monotonic() > deadline:
            raise AssertionError(f"{prefix!r} not on the console of {sid}:\n"
                                 f"{(await cloud.console(sid))[-2000:]}")
        await asyncio.sleep(0.5)


async def wait_volume(cloud: QemuCloud, path: str, status: str,
                      timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = await cloud.api("GET", path, headers=VOL)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = next(iter(r.json().values()))
        if body["status"] == status:
            return body
        assert body["status"] != "error", body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)


async def boot(cloud: QemuCloud, name: str, user_data: str, image: str, flavor: str) -> str:
    r = await cloud.api("POST", "/compute/v2.1/servers", json={"server": {
        "name": name, "imageRef": image, "flavorRef": flavor, "networks": "none",
        "user_data": base64.b64encode(user_data.encode()).decode()}})
    assert r.status_code == 202, r.text
    return str(r.json()["server"]["id"])


async def attach(cloud: QemuCloud, sid: str, vid: str) -> None:
    r = await cloud.api("POST", f"/compute/v2.1/servers/{sid}/os-volume_attachments",
                        json={"volumeAttachment": {"volumeId": vid}})
    assert r.status_code == 200, r.text
    await wait_volume(cloud, f"/volume/v3/volumes/{vid}", "in-use")


async def detach(cloud: QemuCloud, sid: str, vid: str) -> None:
    r = await cloud.api("DELETE", f"/compute/v2.1/servers/{sid}/os-volume_attachments/{vid}")
    assert r.status_code == 202, r.text
    await wait_volume(cloud, f"/volume/v3/volumes/{vid}", "available")


async def new_volume(cloud: QemuCloud, **fields: Any) -> str:
    r = await cloud.api("POST", "/volume/v3/volumes", json={"volume": {"size": 1, **fields}},
                        headers=VOL)
    assert r.status_code == 202, r.text
    vid = str(r.json()["volume"]["id"])
    await wait_volume(cloud, f"/volume/v3/volumes/{vid}", "available")
    return vid


async def test_volume_data_moves_between_vms_and_snapshots() -> None:
    root = Path(tempfile.mkdtemp(prefix="vguest-"))
    want = hashlib.md5(PATTERN).hexdigest()
    try:
        async with volume_cloud(root) as cloud:
            image = await cloud.image_id("stackling-tiny")
            flavor = await cloud.flavor("qemu.data", 128, 0)
            vm1 = await boot(cloud, "writer", WRITER, image, flavor)
            vm2 = await boot(cloud, "reader", READER, image, flavor)
            vid = await new_volume(cloud)
            await cloud.wait_status(vm1, "ACTIVE")
            await until_line(cloud, vm1, "ready")
            await attach(cloud, vm1, vid)
            assert await until_line(cloud, vm1, "wrote ") == f"rc=0 md5 {want}"
            await detach(cloud, vm1, vid)
            await cloud.delete(vm1)

            await cloud.wait_status(vm2, "ACTIVE")
            await until_line(cloud, vm2, "ready")
            await attach(cloud, vm2, vid)
            assert await until_line(cloud, vm2, "read 1 ") == f"serial {vid[:20]} md5 {want}"
            await detach(cloud, vm2, vid)

            # snapshot -> new volume -> the same bytes
            r = await cloud.api("POST", "/volume/v3/snapshots", headers=VOL,
                                json={"snapshot": {"volume_id": vid, "name": "data"}})
            assert r.status_code == 202, r.text
            snap = str(r.json()["snapshot"]["id"])
            await wait_volume(cloud, f"/volume/v3/snapshots/{snap}", "available")
            copy = await new_volume(cloud, snapshot_id=snap)
            await attach(cloud, vm2, copy)
            assert await until_line(cloud, vm2, "read 2 ") == f"serial {copy[:20]} md5 {want}"
            await detach(cloud, vm2, copy)
            await cloud.delete(vm2)
    finally:
        shutil.rmtree(root, ignore_errors=True)
