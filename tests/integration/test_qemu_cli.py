"""`stackling up --virt qemu` driven by the stock `openstack` CLI: a real VM from create
--wait to delete --wait, its console log, noVNC/serial console URLs, stop/start."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.clients.conftest import RunningCloud, free_port
from tests.integration.qemu_cloud import kill_all_qemu

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or
                       shutil.which("openstack") is None,
                       reason="needs qemu-system-x86 and python-openstackclient"),
]


@pytest.fixture(scope="module")
def qemu_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    data_dir = tmp_path_factory.mktemp("qemu-cli") / "data"
    log = data_dir.parent / "up.log"
    port = free_port()
    env = {**os.environ, "STACKLING_IDENTITY__PASSWORD_HASH_ROUNDS": "4",
           "STACKLING_QEMU__ACCEL": "tcg"}
    process = subprocess.Popen(
        [sys.executable, "-m", "stackling.cli.main", "up", "--data-dir", str(data_dir),
         "--host", "127.0.0.1", "--port", str(port), "--virt", "qemu",
         "--dataplane", "noop"],  # never the host's own networking from a test
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        cloud = RunningCloud(url, data_dir, data_dir / "clouds.yaml", process, log)
        for _ in range(120):  # the image component builds and registers the tiny guest
            if "stackling-tiny" in cloud.openstack("image", "list", "-f", "value", "-c",
                                                   "Name").stdout.split():
                break
            time.sleep(1)
        yield cloud
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        kill_all_qemu(data_dir)


def wait_console(cloud: RunningCloud, name: str, text: str, count: int = 1) -> str:
    for _ in range(300):
        log = cloud.openstack("console", "log", "show", name).stdout
        if log.count(text) >= count:
            return log
        time.sleep(0.5)
    raise AssertionError(f"no {count}x {text!r} on the console of {name}")


def test_server_lifecycle_with_the_stock_cli(qemu_up: RunningCloud) -> None:
    cloud = qemu_up
    cloud.openstack("flavor", "create", "--ram", "128", "--disk", "0", "--vcpus", "1",
                    "qemu.cli")
    server = cloud.openstack_json("server", "create", "--image", "stackling-tiny",
                                  "--flavor", "qemu.cli", "--no-network", "--wait", "vm-cli")
    assert server["status"] == "ACTIVE"
    assert cloud.openstack_json("hypervisor", "list")[0]["Hypervisor Type"] == "QEMU"
    log = wait_console(cloud, "vm-cli", "stackling-tiny: ready")
    assert f"instance {server['id']} hostname vm-cli" in log  # from the config drive

    novnc = cloud.openstack_json("console", "url", "show", "--novnc", "vm-cli")
    assert novnc["url"].startswith(f"{cloud.url}/console/vnc_lite.html?path=")
    serial = cloud.openstack_json("console", "url", "show", "--serial", "vm-cli")
    assert serial["url"].startswith(f"ws://127.0.0.1:{cloud.url.rsplit(':', 1)[1]}"
                                    "/console/serial?token=")

    time.sleep(1.0)  # busybox init has taken over from /init: acpid listens
    cloud.openstack("server", "stop", "vm-cli")
    for _ in range(300):
        shown = cloud.openstack_json("server", "show", "vm-cli")
        if shown["status"] == "SHUTOFF" and not shown.get("OS-EXT-STS:task_state"):
            break
        time.sleep(0.2)
    assert shown["status"] == "SHUTOFF"
    cloud.openstack("server", "start", "vm-cli")
    wait_console(cloud, "vm-cli", "stackling-tiny: up", count=2)

    cloud.openstack("server", "delete", "--wait", "vm-cli")
    assert not (cloud.data_dir / "instances" / server["id"]).exists()
