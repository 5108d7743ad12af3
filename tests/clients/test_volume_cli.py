"""Block storage with the stock ``openstack`` CLI (volume, snapshot, type, backup, quota,
transfer, service commands)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.clients.conftest import RunningCloud

pytestmark = pytest.mark.clients


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait(cli: RunningCloud, kind: str, ref: str, status: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        shown = cli.openstack_json(*kind.split(), "show", ref)
        if shown["status"] == status:
            return shown
        if shown["status"].startswith("error") or time.monotonic() > deadline:
            raise AssertionError(f"{kind} {ref} is {shown['status']}, not {status}")
        time.sleep(0.3)


def gone(cli: RunningCloud, kind: str, ref: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while cli.openstack(*kind.split(), "show", ref, check=False).returncode == 0:
        assert time.monotonic() < deadline, f"{kind} {ref} is still there"
        time.sleep(0.3)


def test_volume_lifecycle(running_cloud: RunningCloud) -> None:
    cli = running_cloud
    name = uniq("vol")
    made = cli.openstack_json("volume", "create", "--size", "1", "--property", "a=b",
                              "--description", "first", name)
    assert made["size"] == 1 and made["name"] == name
    vol = wait(cli, "volume", name, "available")
    assert vol["properties"] in ({"a": "b"}, "a='b'")
    listed = cli.openstack_json("volume", "list", "--name", name)
    assert [v["ID"] for v in listed] == [made["id"]]
    cli.openstack("volume", "set", "--size", "2", "--property", "c=d", "--bootable", name)
    vol = wait(cli, "volume", name, "available")
    assert vol["size"] == 2 and vol["bootable"] in ("true", True)
    cli.openstack("volume", "unset", "--property", "a", name)
    assert "a" not in str(cli.openstack_json("volume", "show", name)["properties"])
    # snapshot -> volume from snapshot, and a clone
    snap = cli.openstack_json("volume", "snapshot", "create", "--volume", name,
                              uniq("snap"))
    wait(cli, "volume snapshot", snap["id"], "available")
    from_snap = cli.openstack_json("volume", "create", "--snapshot", snap["id"],
                                   "--size", "3", uniq("fromsnap"))
    clone = cli.openstack_json("volume", "create", "--source", name, uniq("clone"))
    assert wait(cli, "volume", from_snap["id"], "available")["size"] == 3
    assert wait(cli, "volume", clone["id"], "available")["source_volid"] == made["id"]
    result = cli.openstack("volume", "delete", name, check=False)
    assert result.returncode != 0  # it has a snapshot
    cli.openstack("volume", "snapshot", "delete", snap["id"])
    gone(cli, "volume snapshot", snap["id"])
    cli.openstack("volume", "delete", name, from_snap["id"], clone["id"])
    for ref in (made["id"], from_snap["id"], clone["id"]):
        gone(cli, "volume", ref)
    result = cli.openstack("volume", "show", made["id"], check=False)
    assert "No Volume found" in result.stderr


def test_types_quotas_services(running_cloud: RunningCloud) -> None:
    cli = running_cloud
    tname = uniq("type")
    vtype = cli.openstack_json("volume", "type", "create", "--property",
                               "volume_backend_name=file", tname)
    assert vtype["name"] == tname
    vol = cli.openstack_json("volume", "create", "--size", "1", "--type", tname, uniq("typed"))
    assert wait(cli, "volume", vol["id"], "available")["type"] == tname
    bad = cli.openstack_json("volume", "type", "create", "--property",
                             "volume_backend_name=nowhere", uniq("bad"))
    failed = cli.openstack_json("volume", "create", "--size", "1", "--type", bad["id"],
                                uniq("nohost"))
    deadline = time.monotonic() + 30
    while cli.openstack_json("volume", "show", failed["id"])["status"] != "error":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    cli.openstack("volume", "delete", vol["id"], failed["id"])
    services = cli.openstack_json("volume", "service", "list")
    assert {s["Binary"] for s in services} >= {"cinder-volume", "cinder-scheduler",
                                                "cinder-backup"}
    assert all(s["State"] == "up" for s in services)
    zones = cli.openstack_json("availability", "zone", "list", "--volume")
    assert zones[0]["Zone Name"] == "nova"
    # quota: at most 1 more volume in project demo
    demo = cli.openstack_json("project", "show", "demo")["id"]
    cli.openstack("quota", "set", "--volumes", "1", demo)
    quota = cli.openstack_json("quota", "show", demo)
    if isinstance(quota, list):
        assert {"Resource": "volumes", "Limit": 1}.items() <= next(
            q for q in quota if q.get("Resource") == "volumes").items()
    else:
        assert quota["volumes"] == 1
    first = cli.openstack_json("volume", "create", "--size", "1", uniq("q1"),
                               cloud="stackling-demo")
    result = cli.openstack("volume", "create", "--size", "1", uniq("q2"), cloud="stackling-demo",
                           check=False)
    assert result.returncode != 0 and "VolumeLimitExceeded" in result.stderr
    wait(cli, "volume", first["id"], "available")
    cli.openstack("volume", "delete", first["id"], cloud="stackling-demo")
    cli.openstack("quota", "set", "--volumes", "10", demo)
    gone(cli, "volume", first["id"])
    cli.openstack("volume", "type", "delete", bad["id"])


def test_backup_restore_and_transfer(running_cloud: RunningCloud) -> None:
    cli = running_cloud
    vol = cli.openstack_json("volume", "create", "--size", "1", "--property", "k=v",
                             uniq("src"))
    wait(cli, "volume", vol["id"], "available")
    backup = cli.openstack_json("volume", "backup", "create", "--name", uniq("bk"), vol["id"])
    done = wait(cli, "volume backup", backup["id"], "available")
    assert done["size"] == 1 and done["volume_id"] == vol["id"]
    target = cli.openstack_json("volume", "create", "--size", "1", uniq("target"))
    wait(cli, "volume", target["id"], "available")
    cli.openstack("volume", "backup", "restore", "--force", backup["id"], target["id"])
    restored = wait(cli, "volume", target["id"], "available")
    assert "k" in str(restored["properties"])
    cli.openstack("volume", "backup", "delete", backup["id"])
    gone(cli, "volume backup", backup["id"])
    # transfer the volume from admin to demo
    req = cli.openstack_json("volume", "transfer", "request", "create", vol["id"])
    assert wait(cli, "volume", vol["id"], "awaiting-transfer")
    cli.openstack("volume", "transfer", "request", "accept", "--auth-key", req["auth_key"],
                  req["id"], cloud="stackling-demo")
    mine = cli.openstack_json("volume", "show", vol["id"], cloud="stackling-demo")
    assert mine["status"] == "available"
    cli.openstack("volume", "delete", vol["id"], cloud="stackling-demo")
    cli.openstack("volume", "delete", target["id"])
    gone(cli, "volume", target["id"])
