"""The stock ``openstack`` CLI attaching block storage volumes to servers (fake hypervisor,
the volume service's own backend): ``server add volume`` / ``server volume list`` /
``server remove volume``, and delete_on_termination through a server delete."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.clients.conftest import RunningCloud

pytestmark = pytest.mark.clients


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_volume(cli: RunningCloud, ref: str, status: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = cli.openstack("volume", "show", ref, "-f", "json", check=False)
        if status == "gone" and result.returncode != 0:
            return None
        if result.returncode == 0:
            shown = json.loads(result.stdout)
            if shown["status"] == status:
                return shown
        assert time.monotonic() < deadline, f"volume {ref}: {result.stdout}{result.stderr}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def server(running_cloud: RunningCloud, tmp_path_factory: pytest.TempPathFactory) -> str:
    data = tmp_path_factory.mktemp("img") / "disk.raw"
    data.write_bytes(b"\0" * 4096)
    image = running_cloud.openstack_json(
        "image", "create", "--disk-format", "raw", "--container-format", "bare",
        "--file", str(data), "--public", uniq("vol-image"))
    created = running_cloud.openstack_json(
        "server", "create", "--image", image["id"], "--flavor", "m1.tiny", "--no-network",
        "--wait", uniq("vol-vm"))
    assert created["status"] == "ACTIVE"
    return str(created["id"])


def test_add_list_remove_volume(running_cloud: RunningCloud, server: str) -> None:
    cli = running_cloud
    name = uniq("data")
    cli.openstack_json("volume", "create", "--size", "1", name)
    volume = wait_volume(cli, name, "available")
    cli.openstack("--os-compute-api-version", "2.79", "server", "add", "volume",
                  "--tag", "data", server, name)
    attached = wait_volume(cli, name, "in-use")
    assert attached["attachments"][0]["server_id"] == server
    listed = cli.openstack_json("--os-compute-api-version", "2.89", "server", "volume",
                                "list", server)
    assert len(listed) == 1
    row = listed[0]
    assert row["Volume ID"] == volume["id"] and row["Device"] == "/dev/vdb"
    assert row["Tag"] == "data" and row["Delete On Termination?"] is False
    # attaching it again is refused with the API's reason
    again = cli.openstack("server", "add", "volume", server, name, check=False)
    assert again.returncode != 0 and "already attached" in again.stderr
    cli.openstack("server", "remove", "volume", server, name)
    wait_volume(cli, name, "available")
    assert cli.openstack_json("server", "volume", "list", server) == []
    cli.openstack("volume", "delete", name)


def test_delete_on_termination(running_cloud: RunningCloud,
                               tmp_path_factory: pytest.TempPathFactory) -> None:
    cli = running_cloud
    images = cli.openstack_json("image", "list")
    vm = cli.openstack_json("server", "create", "--image", images[0]["ID"], "--flavor",
                            "m1.tiny", "--no-network", "--wait", uniq("vol-doomed"))
    keep, doom = uniq("keep"), uniq("doom")
    for name in (keep, doom):
        cli.openstack_json("volume", "create", "--size", "1", name)
        wait_volume(cli, name, "available")
    cli.openstack("server", "add", "volume", vm["id"], keep)
    cli.openstack("--os-compute-api-version", "2.79", "server", "add", "volume",
                  "--enable-delete-on-termination", vm["id"], doom)
    wait_volume(cli, doom, "in-use")
    cli.openstack("server", "delete", "--wait", vm["id"])
    wait_volume(cli, keep, "available")
    wait_volume(cli, doom, "gone")
    cli.openstack("volume", "delete", keep)


def test_boot_from_volume(running_cloud: RunningCloud, server: str) -> None:
    cli = running_cloud
    image = cli.openstack_json("server", "show", server)["image"]
    image_id = image["id"] if isinstance(image, dict) else str(image).split("(")[-1].strip(")")
    name = uniq("bfv")
    created = cli.openstack_json("server", "create", "--image", image_id,
                                 "--boot-from-volume", "1", "--flavor", "m1.tiny",
                                 "--no-network", "--wait", name)
    assert created["status"] == "ACTIVE"
    (att,) = cli.openstack_json("server", "volume", "list", name)
    assert att["Device"] == "/dev/vda"
    volume = wait_volume(cli, att["Volume ID"], "in-use")
    assert volume["size"] == 1 and volume["bootable"] in ("true", True)
    assert volume["attachments"][0]["server_id"] == created["id"]
    # the root volume stays attached
    detach = cli.openstack("server", "remove", "volume", name, att["Volume ID"], check=False)
    assert detach.returncode != 0 and "root device" in detach.stderr
    cli.openstack("server", "delete", "--wait", name)
    # OSC's --boot-from-volume keeps the volume (delete_on_termination false)
    wait_volume(cli, att["Volume ID"], "available")
    cli.openstack("volume", "delete", att["Volume ID"])
