"""A volume hot-plugged into a real VM (QEMU, TCG): the block storage service's file
backend exports it, the agent plugs it over QMP (blockdev-add + virtio-blk), the tiny guest
sees a new virtio disk with the volume's serial, still there after a stop/start, then the
detach unplugs it (the guest
releases the device) and the volume is available again. Then a second guest boots from a
volume made from the tiny image (delete_on_termination: the volume goes with it).

The guest's user data (run from the config drive) watches /sys/block in the background and
prints what it sees on the serial console."""

from __future__ import annotations

import asyncio
import base64
import json
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

# the guest reports each disk that appears or goes (vda is its root, vdb the volume)
WATCH = f"""#!/bin/sh
(
  seen=""
  for i in $(seq 1 900); do
    now=$(ls /sys/block | grep '^vd' | tr '\\n' ' ')
    if [ "$now" != "$seen" ]; then
      for d in $now; do
        case " $seen " in *" $d "*) ;; *)
          echo "{MARK} disk $d serial $(cat /sys/block/$d/serial 2>/dev/null)" \
            "size $(cat /sys/block/$d/size)" >/dev/console ;;
        esac
      done
      for d in $seen; do
        case " $now " in *" $d "*) ;; *) echo "{MARK} disk $d gone" >/dev/console ;; esac
      done
      seen="$now"
    fi
    sleep 0.2
  done
) &
"""


async def _until(cloud: QemuCloud, sid: str, text: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in await cloud.console(sid):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not on the console of {sid}:\n"
                                 f"{(await cloud.console(sid))[-2000:]}")
        await asyncio.sleep(0.3)


async def _volume(cloud: QemuCloud, volume_id: str) -> dict[str, Any]:
    r = await cloud.api("GET", f"/volume/v3/volumes/{volume_id}",
                        headers={"OpenStack-API-Version": "volume 3.70"})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()["volume"]
    return body


async def test_hotplug_volume_into_tiny_guest() -> None:
    # a short path: QMP's unix socket path must stay under 108 bytes
    root = Path(tempfile.mkdtemp(prefix="cvol-"))
    try:
        async with volume_cloud(root) as cloud:
            await _scenario(cloud)
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _scenario(cloud: QemuCloud) -> None:
    image = await cloud.image_id("stackling-tiny")
    flavor = await cloud.flavor("qemu.vol", 128, 0)
    r = await cloud.api("POST", "/compute/v2.1/servers", json={"server": {
        "name": "vol-vm", "imageRef": image, "flavorRef": flavor, "networks": "none",
        "user_data": base64.b64encode(WATCH.encode()).decode()}})
    assert r.status_code == 202, r.text
    sid = str(r.json()["server"]["id"])
    await cloud.wait_status(sid, "ACTIVE")
    await _until(cloud, sid, f"{MARK} ready")
    await _until(cloud, sid, f"{MARK} disk vda ")

    r = await cloud.api("POST", "/volume/v3/volumes", json={"volume": {"size": 1}},
                        headers={"OpenStack-API-Version": "volume 3.70"})
    assert r.status_code == 202, r.text
    vid = str(r.json()["volume"]["id"])
    for _ in range(100):
        if (await _volume(cloud, vid))["status"] == "available":
            break
        await asyncio.sleep(0.1)

    r = await cloud.api("POST", f"/compute/v2.1/servers/{sid}/os-volume_attachments",
                        json={"volumeAttachment": {"volumeId": vid}})
    assert r.status_code == 200, r.text
    assert r.json()["volumeAttachment"]["device"] == "/dev/vdb"
    assert (await _volume(cloud, vid))["status"] == "in-use"
    # 1 GiB = 2097152 sectors; the serial is the volume id's first 20 characters
    seen = f"{MARK} disk vdb serial {vid[:20]} size 2097152"
    await _until(cloud, sid, seen)
    # the plugged volume is part of the VM now: a stop/start keeps it
    launch = json.loads((cloud.instance_dir(sid) / "launch.json").read_text())
    assert [v["volume_id"] for v in launch["volumes"]] == [vid]
    await cloud.action(sid, {"os-stop": None})
    await cloud.wait_status(sid, "SHUTOFF")
    await cloud.action(sid, {"os-start": None})
    await cloud.wait_status(sid, "ACTIVE")
    deadline = time.monotonic() + 120
    while (await cloud.console(sid)).count(seen) < 2:
        assert time.monotonic() < deadline, (await cloud.console(sid))[-2000:]
        await asyncio.sleep(0.3)
    # a rebuild makes a new guest (with a fresh console log) and plugs the volume into it
    await cloud.action(sid, {"rebuild": {"imageRef": image}})
    await cloud.wait_status(sid, "ACTIVE")
    await _until(cloud, sid, seen)
    launch = json.loads((cloud.instance_dir(sid) / "launch.json").read_text())
    assert [v["volume_id"] for v in launch["volumes"]] == [vid]

    r = await cloud.api("DELETE", f"/compute/v2.1/servers/{sid}/os-volume_attachments/{vid}")
    assert r.status_code == 202, r.text
    await _until(cloud, sid, f"{MARK} disk vdb gone")
    launch = json.loads((cloud.instance_dir(sid) / "launch.json").read_text())
    assert launch["volumes"] == []
    assert (await _volume(cloud, vid))["status"] == "available"
    await cloud.delete(sid)

    # boot from a volume made from the tiny guest's image: QEMU's root disk is the volume
    r = await cloud.api("POST", "/compute/v2.1/servers", json={"server": {
        "name": "bfv-vm", "flavorRef": flavor, "networks": "none",
        "block_device_mapping_v2": [{"boot_index": 0, "source_type": "image",
                                     "destination_type": "volume", "uuid": image,
                                     "volume_size": 1, "delete_on_termination": True}]}})
    assert r.status_code == 202, r.text
    sid = str(r.json()["server"]["id"])
    await cloud.wait_status(sid, "ACTIVE")
    await _until(cloud, sid, f"{MARK} ready")
    r = await cloud.api("GET", f"/compute/v2.1/servers/{sid}/os-volume_attachments")
    (att,) = r.json()["volumeAttachments"]
    assert att["device"] == "/dev/vda"
    assert not (cloud.instance_dir(sid) / "disk.qcow2").exists()
    await cloud.delete(sid)
    r = await cloud.api("GET", f"/volume/v3/volumes/{att['volumeId']}")
    for _ in range(100):
        if r.status_code == 404:
            break
        await asyncio.sleep(0.1)
        r = await cloud.api("GET", f"/volume/v3/volumes/{att['volumeId']}")
    assert r.status_code == 404, r.text
