"""The image service with the stock ``openstack`` CLI and openstacksdk."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.clients.conftest import RunningCloud

pytestmark = pytest.mark.clients


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def props(image: dict[str, Any]) -> dict[str, Any]:
    value = image.get("properties") or {}
    return value if isinstance(value, dict) else {}


def test_create_list_show_save_delete(running_cloud: RunningCloud, tmp_path: Path) -> None:
    cli = running_cloud
    name = uniq("img")
    data = os.urandom(3 * 1024 * 1024 + 11)
    src = tmp_path / "disk.raw"
    src.write_bytes(data)
    made = cli.openstack_json("image", "create", "--disk-format", "raw", "--container-format",
                              "bare", "--file", str(src), "--property", "os_distro=debian",
                              "--tag", "first", "--min-ram", "64", name)
    assert made["status"] == "active" and made["size"] == len(data)
    assert made["checksum"] == hashlib.md5(data).hexdigest()
    assert props(made)["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert made["tags"] == ["first"] or made["tags"] == "first"
    listed = cli.openstack_json("image", "list", "--name", name)
    assert [i["ID"] for i in listed] == [made["id"]]
    long = cli.openstack_json("image", "list", "--long", "--property", "os_distro=debian")
    assert made["id"] in {i["ID"] for i in long}
    shown = cli.openstack_json("image", "show", name)
    assert shown["min_ram"] == 64 and props(shown)["os_distro"] == "debian"
    out = tmp_path / "saved.raw"
    cli.openstack("image", "save", "--file", str(out), name)
    assert out.read_bytes() == data
    cli.openstack("image", "delete", name)
    result = cli.openstack("image", "show", made["id"], check=False)
    assert result.returncode != 0 and "No Image found" in result.stderr


def test_set_unset_tags_protected_visibility(running_cloud: RunningCloud) -> None:
    cli = running_cloud
    name = uniq("img")
    # without --file the CLI uploads its (empty, not a tty) stdin: raw suits that
    image_id = cli.openstack_json("image", "create", "--disk-format", "raw", name)["id"]
    cli.openstack("image", "set", "--property", "foo=bar", "--property", "hw_disk_bus=virtio",
                  "--tag", "a", "--tag", "b", "--protected", "--min-disk", "3",
                  "--name", name + "-x", image_id)
    shown = cli.openstack_json("image", "show", image_id)
    assert shown["name"] == name + "-x" and shown["protected"] is True
    assert props(shown)["foo"] == "bar" and props(shown)["hw_disk_bus"] == "virtio"
    assert shown["min_disk"] == 3
    tags = shown["tags"] if isinstance(shown["tags"], list) else shown["tags"].split(", ")
    assert sorted(tags) == ["a", "b"]
    result = cli.openstack("image", "delete", image_id, check=False)
    assert result.returncode != 0
    cli.openstack("image", "unset", "--property", "foo", "--tag", "a", image_id)
    shown = cli.openstack_json("image", "show", image_id)
    assert "foo" not in props(shown)
    for flag, expect in (("--public", "public"), ("--private", "private"),
                         ("--community", "community"), ("--shared", "shared")):
        cli.openstack("image", "set", flag, image_id)
        assert cli.openstack_json("image", "show", image_id)["visibility"] == expect
    cli.openstack("image", "set", "--unprotected", image_id)
    cli.openstack("image", "delete", image_id)


def test_deactivate_reactivate(running_cloud: RunningCloud, tmp_path: Path) -> None:
    cli = running_cloud
    src = tmp_path / "d.raw"
    src.write_bytes(b"deactivate me" * 100)
    name = uniq("img")
    image_id = cli.openstack_json("image", "create", "--disk-format", "raw", "--file",
                                  str(src), "--public", name)["id"]
    cli.openstack("image", "set", "--deactivate", image_id)
    assert cli.openstack_json("image", "show", image_id)["status"] == "deactivated"
    result = cli.openstack("image", "save", "--file", str(tmp_path / "x"), image_id,
                           cloud="stackling-demo", check=False)
    assert result.returncode != 0
    cli.openstack("image", "set", "--activate", image_id)
    assert cli.openstack_json("image", "show", image_id)["status"] == "active"
    cli.openstack("image", "save", "--file", str(tmp_path / "y"), image_id,
                  cloud="stackling-demo")
    assert (tmp_path / "y").read_bytes() == src.read_bytes()
    cli.openstack("image", "delete", image_id)


def test_members(running_cloud: RunningCloud) -> None:
    cli = running_cloud
    name = uniq("shared")
    image_id = cli.openstack_json("image", "create", "--disk-format", "raw", "--shared",
                                  name)["id"]
    demo_project = cli.openstack_json("project", "show", "demo")["id"]
    member = cli.openstack_json("image", "add", "project", image_id, "demo")
    assert member["status"] == "pending" and member["member_id"] == demo_project
    demo_ids = {i["ID"] for i in cli.openstack_json("image", "list",
                                                    cloud="stackling-demo")}
    assert image_id not in demo_ids
    cli.openstack("image", "set", "--accept", image_id, cloud="stackling-demo")
    demo_ids = {i["ID"] for i in cli.openstack_json("image", "list",
                                                    cloud="stackling-demo")}
    assert image_id in demo_ids
    members = cli.openstack_json("image", "member", "list", image_id)
    assert [(m["Member ID"], m["Status"]) for m in members] == [(demo_project, "accepted")]
    cli.openstack("image", "set", "--reject", image_id, cloud="stackling-demo")
    assert cli.openstack_json("image", "member", "list", image_id)[0]["Status"] == "rejected"
    cli.openstack("image", "remove", "project", image_id, "demo")
    assert cli.openstack_json("image", "member", "list", image_id) == []
    result = cli.openstack("image", "show", image_id, cloud="stackling-demo", check=False)
    assert result.returncode != 0
    cli.openstack("image", "delete", image_id)


def test_demo_cannot_publicize_or_touch_others(running_cloud: RunningCloud) -> None:
    cli = running_cloud
    result = cli.openstack("image", "create", "--public", uniq("p"), cloud="stackling-demo",
                           check=False)
    assert result.returncode != 0 and "publicize_image" in result.stderr
    image_id = cli.openstack_json("image", "create", "--public", uniq("adm"))["id"]
    result = cli.openstack("image", "set", "--name", "mine", image_id, cloud="stackling-demo",
                           check=False)
    assert result.returncode != 0 and "403" in result.stderr
    cli.openstack("image", "delete", image_id)


def test_unsafe_image_is_refused(running_cloud: RunningCloud, tmp_path: Path) -> None:
    qemu_img = "/usr/bin/qemu-img"
    if not Path(qemu_img).exists():
        pytest.skip("qemu-img not installed")
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(tmp_path / "base.qcow2"),
                    "1M"], check=True)
    subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", "-b", str(tmp_path / "base.qcow2"),
                    "-F", "qcow2", str(tmp_path / "evil.qcow2")], check=True)
    cli = running_cloud
    name = uniq("evil")
    result = cli.openstack("image", "create", "--disk-format", "qcow2", "--file",
                           str(tmp_path / "evil.qcow2"), name, check=False)
    assert result.returncode != 0
    assert "backing file" in result.stderr
    # the image stayed queued with no data, and the SDK deleted it after the failed upload
    assert cli.openstack_json("image", "list", "--name", name) == []
    # a good qcow2 goes through and gets its virtual size
    good = cli.openstack_json("image", "create", "--disk-format", "qcow2", "--file",
                              str(tmp_path / "base.qcow2"), uniq("good"))
    assert good["status"] == "active" and good["virtual_size"] == 1024 * 1024
    cli.openstack("image", "delete", good["id"])


def test_interrupted_upload_over_a_socket(running_cloud: RunningCloud) -> None:
    """A client that dies mid-upload leaves a queued image and no data on disk."""
    cli = running_cloud
    token = cli.openstack("token", "issue", "-f", "value", "-c", "id").stdout.strip()
    made = httpx.post(f"{cli.url}/image/v2/images", headers={"X-Auth-Token": token},
                      json={"name": uniq("cut"), "disk_format": "raw",
                            "container_format": "bare"})
    image_id = made.json()["id"]
    url = urlsplit(cli.url)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80))
    sock.sendall((f"PUT /image/v2/images/{image_id}/file HTTP/1.1\r\n"
                  f"Host: {url.netloc}\r\nX-Auth-Token: {token}\r\n"
                  "Content-Type: application/octet-stream\r\n"
                  f"Content-Length: {64 << 20}\r\n\r\n").encode())
    for _ in range(8):
        sock.sendall(os.urandom(1 << 20))
    time.sleep(0.5)
    sock.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shown = cli.openstack_json("image", "show", image_id)
        if shown["status"] == "queued":
            break
        time.sleep(0.3)
    assert shown["status"] == "queued" and shown.get("size") is None
    store = cli.data_dir / "images"
    assert not (store / image_id).exists()
    assert list((store / ".partial").iterdir()) == []
    cli.openstack("image", "delete", image_id)


def test_sdk(running_cloud: RunningCloud, tmp_path: Path) -> None:
    conn = running_cloud.sdk()
    data = os.urandom(200_000)
    name = uniq("sdk")
    image = conn.image.create_image(name=name, data=data, disk_format="raw",
                                    container_format="bare", os_distro="sdk")
    image = conn.image.get_image(image.id)
    assert image.status == "active" and image.checksum == hashlib.md5(data).hexdigest()
    fetched = conn.image.download_image(image)
    assert fetched.content == data
    conn.image.update_image(image, name=name + "-2", os_version="1")
    again = conn.image.get_image(image.id)
    assert again.name == name + "-2" and again.os_version == "1"
    assert name + "-2" in {i.name for i in conn.image.images()}
    assert json.dumps(conn.image.get_import_info().to_dict())
    stores = [s.id for s in conn.image.stores()]
    assert stores == ["file"]
    conn.image.delete_image(image)
