"""Real VMs on real ports: ``stackling up --virt qemu --dataplane linuxbridge`` runs inside a
namespace (``cnet<random>-host``, entered with ``nsenter --net``; its bridges, taps,
``qdhcp-``/``qrouter-`` namespaces and nft tables all live there), and two tiny guests (TCG,
128 MB) boot on ``private`` through the compute API. Each gets its port's address by DHCP
(the guest's ``ip <addr> on eth0`` marker), and pings the other from its user-data script
(read from the metadata service through the network's metadata proxy), which prints the
outcome on the console. A third guest on a second network cannot reach them until a router
joins the two networks."""

from __future__ import annotations

import base64
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.integration.netns_up import NamespacedUp

TOOLS = ("ip", "nft", "dnsmasq", "nsenter", "qemu-system-x86_64", "qemu-img")
missing = [t for t in TOOLS if shutil.which(t) is None]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(bool(missing), reason=f"missing tools: {missing}"),
]

API_PORT = 18610
NODE = "cnet-node"
MARK = "stackling-tiny:"

PING_SCRIPT = """#!/bin/sh
i=0
while [ $i -lt 40 ]; do
  if ping -c 1 -W 1 {peer} >/dev/null 2>&1; then
    echo "{mark} ping {peer} ok" >/dev/console
    exit 0
  fi
  i=$((i + 1))
  sleep 1
done
echo "{mark} ping {peer} failed" >/dev/console
exit 1
"""

# first one try (no route yet: it must fail), then until the router joins the networks
LATE_PING_SCRIPT = """#!/bin/sh
if ping -c 2 -W 1 {peer} >/dev/null 2>&1; then
  echo "{mark} early ping {peer} answered" >/dev/console
else
  echo "{mark} early ping {peer} unanswered" >/dev/console
fi
i=0
while [ $i -lt 120 ]; do
  if ping -c 1 -W 1 {peer} >/dev/null 2>&1; then
    echo "{mark} ping {peer} ok" >/dev/console
    exit 0
  fi
  i=$((i + 1))
  sleep 1
done
echo "{mark} ping {peer} failed" >/dev/console
exit 1
"""


class Cloud(NamespacedUp):
    def __init__(self) -> None:
        super().__init__("cnet", API_PORT, ["--virt", "qemu", "--dataplane", "linuxbridge"], {
            "STACKLING_NETWORK_AGENT__HOST": NODE, "STACKLING_COMPUTE__HOST": NODE,
            "STACKLING_QEMU__ACCEL": "tcg",
            # no config drive: the guests use the metadata service
            "STACKLING_QEMU__FORCE_CONFIG_DRIVE": "false",
            "STACKLING_COMPUTE__VIF_PLUGGING_TIMEOUT": "120"})
        self.tokens: dict[str, str] = {}

    def wait_healthy(self, timeout: float = 180) -> None:
        super().wait_healthy(timeout)
        self.tokens = {"admin": self.login("stackling"), "demo": self.login("stackling-demo")}

    def api(self, method: str, path: str, body: dict[str, Any] | None = None,
            user: str = "demo", ok: tuple[int, ...] = (200, 201, 202, 204)) -> Any:
        resp = self.run(lambda: httpx.request(
            method, f"{self.url}{path}", json=body, timeout=60,
            headers={"X-Auth-Token": self.tokens[user],
                     "OpenStack-API-Version": "compute 2.37"}))
        assert resp.status_code in ok, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else {}

    def until(self, check: Callable[[], Any], what: str, timeout: float = 120,
              interval: float = 0.5) -> Any:
        return super().until(check, what, timeout, interval)

    def server(self, sid: str) -> dict[str, Any]:
        return dict(self.api("GET", f"/compute/v2.1/servers/{sid}")["server"])

    def markers(self, sid: str) -> list[str]:
        answer = self.api("POST", f"/compute/v2.1/servers/{sid}/action",
                          {"os-getConsoleOutput": {}}, ok=(200, 409))
        out = answer.get("output", "")  # 409 while it is not on a host yet
        return [line.split(MARK, 1)[1].strip() for line in out.splitlines() if MARK in line]

    def kill_started(self) -> None:
        # QEMUs started under this test's data dir (by pid, nothing else), then dnsmasqs
        for pidfile in (self.data / "instances").glob("*/pid"):
            try:
                pid = int(pidfile.read_text())
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if str(self.data).encode() in fh.read():
                        os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        super().kill_started()


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    the_cloud = Cloud()
    try:
        the_cloud.wait_healthy()
        yield the_cloud
    finally:
        the_cloud.close()


def test_two_vms_on_private_get_dhcp_and_ping_each_other(cloud: Cloud) -> None:
    private = cloud.until(lambda: cloud.api("GET", "/network/v2.0/networks?name=private")[
        "networks"], "the bootstrap's private network")[0]
    image = cloud.until(lambda: [i for i in cloud.api("GET", "/image/v2/images?name="
                                                      "stackling-tiny")["images"]
                                 if i["status"] == "active"], "the tiny guest image",
                        timeout=600)[0]["id"]
    flavor = cloud.api("POST", "/compute/v2.1/flavors", {"flavor": {
        "name": "cnet.tiny", "ram": 128, "vcpus": 1, "disk": 0}}, user="admin")["flavor"]["id"]
    # the user's own ports first, so each guest knows the other's address at boot
    ports = [cloud.api("POST", "/network/v2.0/ports", {"port": {
        "network_id": private["id"], "name": f"cnet-{n}"}})["port"] for n in ("a", "b")]
    ips = [p["fixed_ips"][0]["ip_address"] for p in ports]
    sids = []
    # they read their user data from the metadata service (169.254.169.254 -> the proxy in
    # the network's namespace -> compute's metadata service, signed with the shared secret
    # `stackling up` generated): no config drive
    for name, port, peer in (("a", ports[0], ips[1]), ("b", ports[1], ips[0])):
        script = PING_SCRIPT.format(peer=peer, mark=MARK).encode()
        sids.append(cloud.api("POST", "/compute/v2.1/servers", {"server": {
            "name": f"cnet-{name}", "imageRef": image, "flavorRef": flavor,
            "networks": [{"port": port["id"]}],
            "user_data": base64.b64encode(script).decode()}})["server"]["id"])
    for sid in sids:
        server = cloud.until(lambda s=sid: (lambda v: v if v["status"] in ("ACTIVE", "ERROR")
                                            else None)(cloud.server(s)), "ACTIVE")
        assert server["status"] == "ACTIVE", server.get("fault")
    for sid, ip, port in zip(sids, ips, ports, strict=True):
        addresses = cloud.server(sid)["addresses"]
        assert addresses == {"private": [{"version": 4, "addr": ip,
                                          "OS-EXT-IPS:type": "fixed",
                                          "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]}]}
        # DHCP gave the guest its port's address
        cloud.until(lambda s=sid, i=ip: f"ip {i} on eth0" in cloud.markers(s),
                    f"the DHCP lease of {ip}", timeout=240)
    for sid, peer in zip(sids, reversed(ips), strict=True):
        done = cloud.until(lambda s=sid, p=peer: [m for m in cloud.markers(s)
                                                  if m.startswith(f"ping {p} ")],
                           f"the ping of {peer}", timeout=120)
        assert done == [f"ping {peer} ok"], cloud.markers(sid)
    sources = [[m for m in cloud.markers(sid) if m.startswith("metadata from ")]
               for sid in sids]
    assert sources == [["metadata from http://169.254.169.254/openstack/latest"]] * 2
    # a third guest on another network: cut off until a router joins the two networks
    second = cloud.api("POST", "/network/v2.0/networks", {"network": {
        "name": "cnet-second"}})["network"]
    subnet = cloud.api("POST", "/network/v2.0/subnets", {"subnet": {
        "network_id": second["id"], "cidr": "10.0.5.0/24", "ip_version": 4,
        "name": "cnet-second-v4"}})["subnet"]
    script = LATE_PING_SCRIPT.format(peer=ips[0], mark=MARK).encode()
    third = cloud.api("POST", "/compute/v2.1/servers", {"server": {
        "name": "cnet-c", "imageRef": image, "flavorRef": flavor,
        "networks": [{"uuid": second["id"]}],
        "user_data": base64.b64encode(script).decode()}})["server"]["id"]
    early = cloud.until(lambda: [m for m in cloud.markers(third) if m.startswith("early ")],
                        "the third guest's first ping", timeout=240)
    assert early == [f"early ping {ips[0]} unanswered"]
    shown = cloud.server(third)
    assert [a["addr"].startswith("10.0.5.") for a in shown["addresses"]["cnet-second"]] == \
        [True]
    router = cloud.api("GET", "/network/v2.0/routers?name=router1")["routers"][0]
    cloud.api("PUT", f"/network/v2.0/routers/{router['id']}/add_router_interface",
              {"subnet_id": subnet["id"]})
    done = cloud.until(lambda: [m for m in cloud.markers(third)
                                if m.startswith(f"ping {ips[0]} ")],
                       "the routed ping", timeout=180)
    assert done == [f"ping {ips[0]} ok"], cloud.markers(third)
    # a delete frees the port compute made for the third guest
    cloud.api("DELETE", f"/compute/v2.1/servers/{third}")
    cloud.until(lambda: cloud.api("GET", f"/network/v2.0/ports?device_id={third}",
                                  user="admin")["ports"] == [], "the third guest's port to go")
    # a delete gives the user's ports back (unbound, address kept)
    for sid in sids:
        cloud.api("DELETE", f"/compute/v2.1/servers/{sid}")
    for port in ports:
        cloud.until(lambda p=port: cloud.api("GET", f"/network/v2.0/ports/{p['id']}")[
            "port"]["device_id"] == "", "the port to be unbound", timeout=60)
