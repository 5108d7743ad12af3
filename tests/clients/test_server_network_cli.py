"""The stock ``openstack`` CLI boots a server on a network (``--network private --wait``):
it gets a port on ``private`` (noop data plane: the agent reports it wired at once, so the
vif-plugged event arrives and the server goes ACTIVE), ``server show`` lists its address,
and a delete frees the port."""

from __future__ import annotations

import pytest

from tests.clients.conftest import RunningCloud

pytestmark = pytest.mark.clients


def test_server_on_a_network_shows_its_address(running_cloud: RunningCloud,
                                               tmp_path_factory: pytest.TempPathFactory
                                               ) -> None:
    cloud = running_cloud
    data = tmp_path_factory.mktemp("img") / "disk.raw"
    data.write_bytes(b"\0" * 4096)
    image = cloud.openstack_json("image", "create", "--disk-format", "raw",
                                 "--container-format", "bare", "--file", str(data),
                                 "--public", "cli-net-image")["id"]
    created = cloud.openstack_json("server", "create", "--image", image, "--flavor",
                                   "m1.tiny", "--network", "private", "--wait", "cli-net-vm")
    assert created["status"] == "ACTIVE"
    ports = cloud.openstack_json("port", "list", "--device-id", created["id"], "--long")
    assert len(ports) == 1
    ip = ports[0]["Fixed IP Addresses"][0]["ip_address"]
    assert ports[0]["Status"] == "ACTIVE"
    shown = cloud.openstack_json("server", "show", "cli-net-vm")
    assert shown["addresses"] == {"private": [ip]}
    listed = cloud.openstack_json("server", "list", "--name", "cli-net-vm")
    assert listed[0]["Networks"] == {"private": [ip]}
    cloud.openstack("server", "delete", "--wait", "cli-net-vm")
    assert cloud.openstack_json("port", "list", "--device-id", created["id"]) == []
    cloud.openstack("image", "delete", image)
