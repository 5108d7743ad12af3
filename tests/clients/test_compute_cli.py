"""The stock ``openstack`` CLI against compute: boot with --wait, list, show, actions,
delete; flavors and keypairs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.clients.conftest import RunningCloud

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def image(running_cloud: RunningCloud, tmp_path_factory: pytest.TempPathFactory) -> str:
    data = tmp_path_factory.mktemp("img") / "disk.raw"
    data.write_bytes(b"\0" * 4096)
    created = running_cloud.openstack_json(
        "image", "create", "--disk-format", "raw", "--container-format", "bare",
        "--file", str(data), "--public", "cli-compute-image")
    return str(created["id"])


def wait_status(cloud: RunningCloud, server: str, status: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = cloud.openstack_json("server", "show", server)
        if shown["status"] == status and not shown.get("OS-EXT-STS:task_state"):
            return dict(shown)
        assert time.monotonic() < deadline, shown
        time.sleep(0.2)


def test_server_lifecycle(running_cloud: RunningCloud, image: str, tmp_path: Path) -> None:
    cloud = running_cloud
    created = cloud.openstack_json("server", "create", "--image", image, "--flavor",
                                   "m1.tiny", "--no-network", "--wait", "cli-vm")
    assert created["status"] == "ACTIVE"
    assert created["name"] == "cli-vm"
    listed = cloud.openstack_json("server", "list")
    assert [s["Name"] for s in listed if s["ID"] == created["id"]] == ["cli-vm"]
    row = next(s for s in listed if s["ID"] == created["id"])
    assert row["Status"] == "ACTIVE" and row["Flavor"] == "m1.tiny"
    shown = cloud.openstack_json("server", "show", "cli-vm")
    assert shown["id"] == created["id"] and shown["OS-EXT-STS:vm_state"] == "active"
    cloud.openstack("server", "stop", "cli-vm")
    assert wait_status(cloud, "cli-vm", "SHUTOFF")["OS-EXT-STS:power_state"] in (4, "Shutdown")
    result = cloud.openstack("server", "start", "cli-vm")
    assert result.returncode == 0
    wait_status(cloud, "cli-vm", "ACTIVE")
    cloud.openstack("server", "reboot", "--hard", "--wait", "cli-vm")
    cloud.openstack("server", "pause", "cli-vm")
    wait_status(cloud, "cli-vm", "PAUSED")
    failed = cloud.openstack("server", "suspend", "cli-vm", check=False)
    assert failed.returncode != 0 and "409" in failed.stderr
    cloud.openstack("server", "unpause", "cli-vm")
    wait_status(cloud, "cli-vm", "ACTIVE")
    cloud.openstack("server", "resize", "--flavor", "m1.small", "--wait", "cli-vm")
    assert wait_status(cloud, "cli-vm", "VERIFY_RESIZE")["flavor"]["name"] == "m1.small"
    cloud.openstack("server", "resize", "confirm", "cli-vm")
    wait_status(cloud, "cli-vm", "ACTIVE")
    snap = cloud.openstack_json("server", "image", "create", "--name", "cli-snap", "--wait",
                                "cli-vm")
    assert snap["status"] == "active"
    cloud.openstack("image", "delete", "cli-snap")
    log = cloud.openstack("console", "log", "show", "cli-vm").stdout
    assert "booted from image" in log
    cloud.openstack("server", "set", "--name", "cli-vm2", "cli-vm")
    cloud.openstack("server", "delete", "--wait", "cli-vm2")
    assert created["id"] not in {s["ID"] for s in cloud.openstack_json("server", "list")}
    missing = cloud.openstack("server", "show", created["id"], check=False)
    assert missing.returncode != 0


def test_flavors_and_keypairs(running_cloud: RunningCloud, tmp_path: Path) -> None:
    cloud = running_cloud
    names = {f["Name"] for f in cloud.openstack_json("flavor", "list")}
    assert {"m1.tiny", "m1.small", "m1.medium"} <= names
    made = cloud.openstack_json("flavor", "create", "--ram", "256", "--vcpus", "1",
                                "--disk", "1", "--private", "--property", "hw:x=y",
                                "cli-flavor")
    assert made["os-flavor-access:is_public"] is False
    shown = cloud.openstack_json("flavor", "show", "cli-flavor")
    assert shown["properties"] == {"hw:x": "y"}
    cloud.openstack("flavor", "set", "--project", "demo", "cli-flavor")
    cloud.openstack("flavor", "delete", "cli-flavor")
    assert "cli-flavor" not in {f["Name"] for f in cloud.openstack_json("flavor", "list",
                                                                        "--all")}
    generated = cloud.openstack("keypair", "create", "cli-key").stdout
    assert "PRIVATE KEY" in generated
    key_file = tmp_path / "id.pub"
    key_file.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDvKL+qiI+0QSd4qKBX0T2yoRCLoJOC"
                        "qs1+8s9BvE30A me@host\n")
    cloud.openstack("keypair", "create", "--public-key", str(key_file), "cli-imported")
    keys = {k["Name"] for k in cloud.openstack_json("keypair", "list")}
    assert {"cli-key", "cli-imported"} <= keys
    cloud.openstack("keypair", "delete", "cli-key", "cli-imported")
    assert not {"cli-key", "cli-imported"} & {k["Name"] for k in
                                              cloud.openstack_json("keypair", "list")}
