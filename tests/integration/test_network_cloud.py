"""The whole chain on the Linux bridge data plane: ``stackling up --dataplane linuxbridge``
runs inside a namespace (``sl<random>-host``, entered with ``nsenter --net``), so its
``br-ex``, bridges, ``qdhcp-``/``qrouter-`` namespaces (prefixed via
``[network_agent] netns_prefix``) and nft tables all live there. The test talks to the API
from a thread that has joined that namespace (``setns``), plays the hypervisor by creating
the port's tap (a veth into a "VM" namespace), and checks the port goes ACTIVE, the VM gets
its address by DHCP, reaches its router, and its floating IP answers from the host side.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from stackling.cli.components import COMPONENTS
from stackling.network.rpcapi import tap_name
from tests.integration.netns_up import NamespacedUp, sh

TOOLS = ("ip", "nft", "dnsmasq", "busybox", "bridge", "nsenter")
missing = [t for t in TOOLS if shutil.which(t) is None]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(bool(missing), reason=f"missing tools: {missing}"),
]

API_PORT = 18310
NODE = "node1"

UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "$router" dev "$interface"
    echo "$ip" > "$LEASE_FILE"
    ;;
esac
exit 0
"""


class Cloud(NamespacedUp):
    """``stackling up`` in the host namespace plus an API client living in it too."""

    def __init__(self) -> None:
        super().__init__("sl", API_PORT, ["--dataplane", "linuxbridge"], {
            "STACKLING_NETWORK_AGENT__HOST": NODE, "STACKLING_COMPUTE__HOST": NODE,
            "STACKLING_IMAGE__BUILD_TINY_IMAGE": "never",
            "STACKLING_METADATA__SHARED_SECRET": secrets.token_hex(16)})
        self.vms: dict[str, str] = {}
        self.token = ""

    def wait_healthy(self, timeout: float = 120) -> None:
        super().wait_healthy(timeout)
        self.token = self.login("stackling")

    def api(self, method: str, path: str, body: dict[str, Any] | None = None
            ) -> dict[str, Any]:
        resp = self.run(lambda: httpx.request(
            method, f"{self.url}/network/v2.0{path}", json=body, timeout=30,
            headers={"X-Auth-Token": self.token}))
        assert resp.status_code < 300, (method, path, resp.status_code, resp.text)
        return resp.json() if resp.content else {}

    def until(self, check: Callable[[], Any], what: str, timeout: float = 60,
              interval: float = 0.2) -> Any:
        return super().until(check, what, timeout, interval)

    def namespaces(self) -> set[str]:
        return {line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines()
                if line.startswith(self.prefix)} - {self.host, *self.vms.values()}

    def vm(self, name: str, port: dict[str, Any]) -> None:
        ns = self.prefix + name
        sh("ip", "netns", "add", ns)
        self.vms[name] = ns
        sh("ip", "link", "add", "name", tap_name(port["id"]), "netns", self.host, "type",
           "veth", "peer", "name", "eth0", "address", port["mac_address"], "netns", ns)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")

    def dhcp(self, name: str) -> str:
        script = self.tmp / "udhcpc.sh"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
        lease = self.tmp / f"lease-{name}"
        sh("ip", "netns", "exec", self.vms[name], "env", f"LEASE_FILE={lease}", "busybox",
           "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10", "-T", "1", "-s", str(script))
        return lease.read_text().strip()

    def dhcp_ip(self, network_id: str) -> str:
        ports = self.api("GET", f"/ports?network_id={network_id}&device_owner=network:dhcp")
        return str(ports["ports"][0]["fixed_ips"][0]["ip_address"])

    def ping(self, ns: str, ip: str) -> bool:
        return sh("ip", "netns", "exec", ns, "busybox", "ping", "-c", "3", "-W", "1", "-w",
                  "4", ip, check=False).returncode == 0

@pytest.fixture
def cloud() -> Iterator[Cloud]:
    the_cloud = Cloud()
    try:
        the_cloud.wait_healthy()
        yield the_cloud
    finally:
        the_cloud.close()


def test_port_goes_active_gets_dhcp_and_a_floating_ip_through_the_api(cloud: Cloud) -> None:
    private = cloud.until(lambda: cloud.api("GET", "/networks?name=private")["networks"],
                          "the bootstrap's private network")[0]
    public = cloud.api("GET", "/networks?name=public")["networks"][0]
    # the agent serves the bootstrap's router and the private network's DHCP
    cloud.until(lambda: {f"{cloud.prefix}qdhcp-{private['id']}"} <= cloud.namespaces()
                and any(ns.startswith(f"{cloud.prefix}qrouter-") for ns in cloud.namespaces()),
                "the qdhcp- and qrouter- namespaces")
    # ``br-ex`` with the public gateway address, made by the agent in its namespace
    addr = sh("ip", "-n", cloud.host, "-br", "addr", "show", "br-ex").stdout
    assert "172.24.4.1/24" in addr

    port = cloud.api("POST", "/ports", {"port": {
        "network_id": private["id"], "device_owner": "compute:nova",
        "device_id": str(uuid.uuid4()), "binding:host_id": NODE,
        "project_id": private["project_id"]}})["port"]
    assert port["status"] == "DOWN"
    cloud.vm("vm", port)  # the hypervisor plugs the tap
    cloud.until(lambda: cloud.api("GET", f"/ports/{port['id']}")["port"]["status"] == "ACTIVE",
                "the port to go ACTIVE")
    assert cloud.dhcp("vm") == port["fixed_ips"][0]["ip_address"]
    subnet = cloud.api("GET", f"/subnets/{port['fixed_ips'][0]['subnet_id']}")["subnet"]
    assert cloud.ping(cloud.vms["vm"], subnet["gateway_ip"])  # its router
    assert cloud.ping(cloud.vms["vm"], "172.24.4.1")  # the host, through SNAT
    # 169.254.169.254 (route from DHCP) -> the proxy in qdhcp- -> the compute metadata
    # service, which accepts the signature and looks the (not booted) instance up
    sh("ip", "netns", "exec", cloud.vms["vm"], "ip", "route", "replace", "169.254.169.254/32",
       "via", cloud.dhcp_ip(private["id"]))
    code = ("import urllib.request, urllib.error\ntry:\n"
            " urllib.request.urlopen('http://169.254.169.254/openstack/latest/meta_data.json',"
            " timeout=5)\nexcept urllib.error.HTTPError as e:\n"
            " print(e.code, e.read().decode())")
    answer = sh("ip", "netns", "exec", cloud.vms["vm"], sys.executable, "-c", code).stdout
    if any(c.name == "metadata" for c in COMPONENTS):
        assert answer.strip() == "404 Instance not found.", answer
    else:  # the metadata service is not mounted yet: the cloud's own 404, not the proxy's
        assert answer.strip() == "404 Not Found", answer

    # a floating IP, reachable from the host once the group lets ICMP in
    group_id = port["security_groups"][0]
    cloud.api("POST", "/security-group-rules", {"security_group_rule": {
        "security_group_id": group_id, "direction": "ingress", "protocol": "icmp",
        "ethertype": "IPv4"}})
    fip = cloud.api("POST", "/floatingips", {"floatingip": {
        "floating_network_id": public["id"], "port_id": port["id"],
        "project_id": private["project_id"]}})["floatingip"]
    cloud.until(lambda: cloud.ping(cloud.host, fip["floating_ip_address"]),
                "the floating IP to answer from the host")

    # deleting the port unplugs it: the tap leaves the bridge
    cloud.api("DELETE", f"/floatingips/{fip['id']}")
    cloud.api("DELETE", f"/ports/{port['id']}")
    cloud.until(lambda: "master" not in sh("ip", "-n", cloud.host, "-d", "link", "show",
                                           tap_name(port["id"])).stdout,
                "the tap to be unplugged")
