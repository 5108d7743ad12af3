"""Real VMs through the compute API with the QEMU driver (TCG): the tiny guest boots, its
console markers come back through os-getConsoleOutput, and every server action acts on the
QEMU process. One cloud for the module; at most two VMs run at once."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from stackling.compute import states
from stackling.compute.agent.manager import ComputeAgent
from stackling.compute.metadata.app import sign
from stackling.compute.virt.qemu import QemuDriver
from tests.integration.qemu_cloud import (
    METADATA_SECRET,
    QemuCloud,
    qemu_alive,
    qemu_cloud,
    qemu_config,
)
from tests.unit.compute.asgi_ws import AsgiWebSocket, receive_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or
                       shutil.which("qemu-img") is None,
                       reason="apt-get install qemu-system-x86 qemu-utils"),
    pytest.mark.asyncio(loop_scope="module"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cloud(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[QemuCloud]:
    root = Path(tmp_path_factory.mktemp("qemu-it"))
    async with qemu_cloud(qemu_config(root / "data")) as cloud:
        yield cloud


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def images(cloud: QemuCloud) -> dict[str, str]:
    return {"disk": await cloud.image_id("stackling-tiny"),
            "kernel": await cloud.image_id("stackling-tiny-kernel-boot")}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def flavors(cloud: QemuCloud) -> dict[str, str]:
    return {"small": await cloud.flavor("qemu.small", 128, 0),
            "big": await cloud.flavor("qemu.big", 192, 1, vcpus=2)}


async def wait_text(cloud: QemuCloud, sid: str, text: str, count: int) -> None:
    for _ in range(600):
        if (await cloud.console(sid)).count(text) >= count:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} did not appear {count} times on the console of {sid}")


def spec(cloud: QemuCloud, server_id: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (cloud.instance_dir(server_id) / "launch.json").read_text())
    return data


async def test_boot_console_and_power_actions(cloud: QemuCloud, images: dict[str, str],
                                              flavors: dict[str, str]) -> None:
    sid = await cloud.boot("vm-actions", images["disk"], flavors["small"],
                           user_data=b"#!/bin/sh\necho hello from user data\n")
    server = await cloud.wait_status(sid, "ACTIVE")
    assert server["OS-EXT-STS:power_state"] == states.RUNNING
    markers = await cloud.wait_marker(sid, "ready")
    # the config drive carried the metadata and the user data
    assert f"instance {sid} hostname vm-actions" in markers
    assert "user-data done rc=0" in markers
    assert "hello from user data" in await cloud.console(sid)
    pid = cloud.qemu_pid(sid)
    assert pid is not None

    await cloud.action(sid, {"pause": None})
    server = await cloud.wait_status(sid, "PAUSED")
    assert server["OS-EXT-STS:power_state"] == states.POWER_PAUSED
    await cloud.action(sid, {"unpause": None})
    await cloud.wait_status(sid, "ACTIVE")

    await cloud.action(sid, {"suspend": None})
    server = await cloud.wait_status(sid, "SUSPENDED")
    assert cloud.qemu_pid(sid) is None  # the process ended, its memory is on disk
    assert (cloud.instance_dir(sid) / "state.bin").stat().st_size > 1 << 20
    await cloud.action(sid, {"resume": None})
    server = await cloud.wait_status(sid, "ACTIVE")
    assert server["OS-EXT-STS:power_state"] == states.RUNNING
    assert not (cloud.instance_dir(sid) / "state.bin").exists()
    assert cloud.qemu_pid(sid) not in (None, pid)
    # the same guest continued: no second boot
    assert (await cloud.markers(sid)).count("up") == 1

    # soft reboot while the guest's acpid listens (after "ready"): ACPI, then a reset
    await cloud.action(sid, {"reboot": {"type": "SOFT"}})
    await cloud.wait_status(sid, "ACTIVE")
    markers = await cloud.wait_marker(sid, "ready", count=2)
    assert markers.count("power button: powering off") == 1
    await wait_text(cloud, sid, "/ # ", count=2)  # busybox init took over: acpid listens
    await asyncio.sleep(1.0)

    await cloud.action(sid, {"os-stop": None})
    server = await cloud.wait_status(sid, "SHUTOFF")
    assert server["OS-EXT-STS:power_state"] == states.SHUTDOWN
    assert cloud.qemu_pid(sid) is None
    assert (await cloud.markers(sid)).count("power button: powering off") == 2  # ACPI
    await cloud.action(sid, {"os-start": None})
    await cloud.wait_status(sid, "ACTIVE")
    await cloud.wait_marker(sid, "up", count=3)

    await cloud.action(sid, {"reboot": {"type": "HARD"}})  # a reset: no guest help needed
    await cloud.wait_status(sid, "ACTIVE")
    markers = await cloud.wait_marker(sid, "up", count=4)
    assert markers.count("power button: powering off") == 2

    pid = cloud.qemu_pid(sid)
    await cloud.delete(sid)
    assert pid is not None and not qemu_alive(pid, sid)  # the process is gone
    assert not cloud.instance_dir(sid).exists()


async def test_snapshot_then_boot_from_it(cloud: QemuCloud, images: dict[str, str],
                                          flavors: dict[str, str]) -> None:
    sid = await cloud.boot("vm-snap", images["disk"], flavors["small"])
    await cloud.wait_status(sid, "ACTIVE")
    await cloud.wait_marker(sid, "ready")
    r = await cloud.action(sid, {"createImage": {"name": "tiny-snap"}})
    image_id = r.headers["Location"].rsplit("/", 1)[1]
    await cloud.wait_status(sid, "ACTIVE")
    image = (await cloud.api("GET", f"/image/v2/images/{image_id}")).json()
    assert image["status"] == "active", image
    assert image["size"] > 1 << 20
    await cloud.delete(sid)

    clone = await cloud.boot("vm-from-snap", image_id, flavors["small"])
    await cloud.wait_status(clone, "ACTIVE")
    markers = await cloud.wait_marker(clone, "ready")
    assert f"instance {clone} hostname vm-from-snap" in markers
    await cloud.delete(clone)


async def test_rebuild_and_resize(cloud: QemuCloud, images: dict[str, str],
                                  flavors: dict[str, str]) -> None:
    sid = await cloud.boot("vm-rr", images["disk"], flavors["small"])
    await cloud.wait_status(sid, "ACTIVE")
    await cloud.wait_marker(sid, "ready")
    assert spec(cloud, sid)["kernel"] is None

    await cloud.action(sid, {"rebuild": {"imageRef": images["kernel"]}})
    server = await cloud.wait_status(sid, "ACTIVE")
    assert server["image"]["id"] == images["kernel"]
    assert spec(cloud, sid)["kernel"] is not None  # -kernel/-initrd from kernel_id/ramdisk_id
    await cloud.wait_marker(sid, "ready")  # the console log was started afresh

    await cloud.action(sid, {"resize": {"flavorRef": flavors["big"]}})
    await cloud.wait_status(sid, "VERIFY_RESIZE")
    launched = spec(cloud, sid)
    assert (launched["memory_mb"], launched["vcpus"]) == (192, 2)
    assert (cloud.config.data_dir / "instances" / f"{sid}_resize").is_dir()
    info = await asyncio_run_qemu_img(cloud.instance_dir(sid) / "disk.qcow2")
    assert info["virtual-size"] == 1024**3
    await cloud.wait_marker(sid, "ready")  # the resized guest booted (a new console log)
    await cloud.action(sid, {"confirmResize": None})
    await cloud.wait_status(sid, "ACTIVE")
    # the source host deleted the kept disks before the server left VERIFY_RESIZE
    assert not (cloud.config.data_dir / "instances" / f"{sid}_resize").exists()
    await cloud.delete(sid)


async def asyncio_run_qemu_img(path: Path) -> dict[str, object]:
    from stackling.common.blocking import run_blocking
    from stackling.compute.virt.qemu.imagecache import info
    data: dict[str, object] = await run_blocking(info, path, "qcow2")
    return data


async def test_agent_restart_adopts_then_killed_qemu_is_reported(
        cloud: QemuCloud, images: dict[str, str], flavors: dict[str, str]) -> None:
    sid = await cloud.boot("vm-adopt", images["kernel"], flavors["small"])
    await cloud.wait_status(sid, "ACTIVE")
    await cloud.wait_marker(sid, "ready")
    pid = cloud.qemu_pid(sid)
    assert pid is not None
    await check_consoles_and_metadata(cloud, sid)

    old = cloud.compute.agents[0]
    await old.stop()
    driver = QemuDriver(old.host, cloud.config.qemu, cloud.config.data_dir, old.images)
    agent = ComputeAgent(old.host, old.bus, driver, old.images, heartbeat_interval=1.0,
                         power_sync_interval=3600)
    await agent.start()  # reconcile: the running VM is found and kept
    cloud.compute.agents[0] = agent  # stopped with the cloud
    assert sid in await driver.list_instances()
    assert cloud.qemu_pid(sid) == pid  # adopted, not started again
    server = await cloud.wait_status(sid, "ACTIVE")
    assert server["OS-EXT-STS:power_state"] == states.RUNNING
    await cloud.action(sid, {"pause": None})  # the new agent controls it
    await cloud.wait_status(sid, "PAUSED")
    await cloud.action(sid, {"unpause": None})
    await cloud.wait_status(sid, "ACTIVE")

    os.kill(pid, signal.SIGKILL)
    await agent.sync_power_states()
    server = await cloud.wait_status(sid, "SHUTOFF")
    assert server["OS-EXT-STS:power_state"] == states.CRASHED
    await cloud.action(sid, {"os-start": None})
    await cloud.wait_status(sid, "ACTIVE")
    await cloud.wait_marker(sid, "ready", count=2)
    assert cloud.qemu_pid(sid) not in (None, pid)
    await cloud.delete(sid)


async def test_boot_that_never_reaches_the_guest_ends_in_error(
        cloud: QemuCloud, flavors: dict[str, str], tmp_path: Path) -> None:
    # a blank disk: SeaBIOS finds nothing to boot and the serial console stays silent
    blank = tmp_path / "blank.raw"
    with blank.open("wb") as fh:
        fh.truncate(1 << 20)
    r = await cloud.api("POST", "/image/v2/images", json={
        "name": "blank", "disk_format": "raw", "container_format": "bare"})
    image_id = r.json()["id"]
    r = await cloud.api("PUT", f"/image/v2/images/{image_id}/file",
                        content=blank.read_bytes(),
                        headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    sid = await cloud.boot("vm-blank", image_id, flavors["small"])
    server = await cloud.wait_status(sid, "ERROR", timeout=300)
    fault = server["fault"]
    # retried elsewhere (no other host), so the message is Nova's; the reason is in details
    assert "wrote nothing to its console" in fault["message"] + fault.get("details", ""), fault
    assert not cloud.instance_dir(sid).exists()  # the failed spawn left nothing behind
    await cloud.delete(sid)


async def check_consoles_and_metadata(cloud: QemuCloud, sid: str) -> None:
    """noVNC and serial consoles through the API's one-time URL and the /console proxy;
    the metadata service answers the signed proxy request for this instance."""
    root = cloud.client._transport.app  # type: ignore[attr-defined]
    r = await cloud.api("POST", f"/compute/v2.1/servers/{sid}/remote-consoles",
                        json={"remote_console": {"protocol": "vnc", "type": "novnc"}})
    assert r.status_code == 200, r.text
    url = r.json()["remote_console"]["url"]
    assert url.startswith("http://testserver/console/vnc_lite.html?path=console%2Fwebsockify")
    token = url.rsplit("%3D", 1)[1]
    ws = AsgiWebSocket(root, "/console/websockify", f"token={token}", ["binary"])
    assert (await ws.connect())["type"] == "websocket.accept"
    assert (await receive_until(ws, b"RFB 003.008\n")).startswith(b"RFB")  # QEMU's VNC
    await ws.close()

    r = await cloud.action(sid, {"os-getSerialConsole": {"type": "serial"}})
    url = r.json()["console"]["url"]
    assert url.startswith("ws://testserver/console/serial?token=")
    ws = AsgiWebSocket(root, "/console/serial", url.split("?", 1)[1], [])
    assert (await ws.connect())["type"] == "websocket.accept"
    await ws.send(b"\recho serial-$((6*7))\r")
    await receive_until(ws, b"serial-42")  # the guest's shell ran it
    await ws.close()
    for _ in range(100):  # the console log has it too (written just after the socket)
        if "serial-42\r" in await cloud.console(sid):
            break
        await asyncio.sleep(0.1)
    assert "serial-42\r" in await cloud.console(sid)

    r = await cloud.client.get("/metadata/openstack/latest/meta_data.json", headers={
        "X-Instance-ID": sid, "X-Instance-ID-Signature": sign(METADATA_SECRET, sid)})
    assert r.status_code == 200 and r.json()["uuid"] == sid
    r = await cloud.client.get("/metadata/openstack/latest/meta_data.json", headers={
        "X-Instance-ID": sid, "X-Instance-ID-Signature": sign("wrong", sid)})
    assert r.status_code == 403
