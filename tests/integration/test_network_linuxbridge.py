"""The Linux bridge data plane for real: bridges, nftables, dnsmasq, router namespaces.

Everything happens in namespaces this module creates, all named ``sl<random>-...``: a
"host" namespace where the data plane runs (``netdp_runner.py`` under ``nsenter --net``, so
even its bridges and nft tables are inside it, and the namespaces it adds are visible to
the test), one namespace per "VM" whose ``eth0`` is a veth whose other end, named like the
VM's tap, sits in the host namespace, and the
``qdhcp-``/``qrouter-`` namespaces the data plane makes (with the same prefix). The root
namespace is never touched; every namespace is deleted at the end.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackling.network.rpcapi import (
    FixedIP,
    FloatingIPState,
    HostState,
    NetworkState,
    PortState,
    RouterGatewayState,
    RouterInterfaceState,
    RouterState,
    SecurityGroupRuleState,
    SecurityGroupState,
    SubnetState,
    tap_name,
)

TOOLS = ("ip", "nft", "dnsmasq", "busybox", "bridge")
missing = [t for t in TOOLS if shutil.which(t) is None]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(bool(missing), reason=f"missing tools: {missing} (tools/test installs "
                                             "dnsmasq-base, nftables, busybox-static)"),
]

RUNNER = Path(__file__).with_name("netdp_runner.py")
UPSTREAM_PORT = 18301
HOST = "node1"

UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    echo "ip=$ip router=$router staticroutes=$(echo $staticroutes | tr ' ' ,)" > "$LEASE_FILE"
    ;;
esac
exit 0
"""


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


class Lab:
    def __init__(self, tunnel_ip: str | None = None) -> None:
        self.tunnel_ip = tunnel_ip
        self.prefix = f"sl{secrets.token_hex(2)}-"
        self.host = self.prefix + "host"
        self.tmp = Path(tempfile.mkdtemp(prefix="netdp-"))
        self.vms: dict[str, str] = {}  # name -> namespace
        self.bg: list[subprocess.Popen[str]] = []
        sh("ip", "netns", "add", self.host)
        self.in_host("ip", "link", "set", "lo", "up")
        self.runner: subprocess.Popen[str] | None = None
        self.start_runner()

    # -- the data plane -----------------------------------------------------------------
    def start_runner(self) -> None:
        self.runner = subprocess.Popen(
            # nsenter, not ``ip netns exec``: that one also gives the child its own mount
            # namespace, and the namespaces the data plane adds would stay invisible here
            ["nsenter", f"--net=/run/netns/{self.host}", sys.executable, str(RUNNER),
             self.prefix, str(self.tmp / "data"), str(UPSTREAM_PORT),
             *([self.tunnel_ip] if self.tunnel_ip else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop_runner(self) -> None:
        if self.runner is not None:
            self.request({"op": "quit"}, answer=False)
            self.runner.wait(timeout=30)
            self.runner = None

    def request(self, req: dict[str, Any], answer: bool = True) -> dict[str, Any]:
        assert self.runner is not None and self.runner.stdin and self.runner.stdout
        self.runner.stdin.write(json.dumps(req) + "\n")
        self.runner.stdin.flush()
        if not answer:
            return {}
        line = self.runner.stdout.readline()
        assert line, "the data plane runner died"
        result: dict[str, Any] = json.loads(line)
        return result

    def apply(self, state: HostState) -> dict[str, Any]:
        report = self.request({"op": "apply", "state": state.model_dump(mode="json")})
        assert report["errors"] == [] and report["failed"] == {}, report
        return report

    # -- namespaces ----------------------------------------------------------------------
    def in_host(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.host, *argv, check=check)

    def vm(self, name: str, port: PortState, address: str | None = None,
           gateway: str | None = None) -> str:
        """A namespace standing in for a VM: eth0 with the port's MAC, its tap in the host."""
        ns = self.prefix + name
        sh("ip", "netns", "add", ns)
        self.vms[name] = ns
        sh("ip", "link", "add", "name", tap_name(port.id), "netns", self.host, "type", "veth",
           "peer", "name", "eth0", "address", port.mac_address, "netns", ns)
        self.in_vm(name, "ip", "link", "set", "lo", "up")
        self.in_vm(name, "ip", "link", "set", "eth0", "up")
        if address:
            self.in_vm(name, "ip", "addr", "add", address, "dev", "eth0")
        if gateway:
            self.in_vm(name, "ip", "route", "add", "default", "via", gateway)
        return ns

    def in_vm(self, name: str, *argv: str, check: bool = True
              ) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.vms[name], *argv, check=check)

    def ping(self, name: str | None, ip: str, tries: int = 3) -> bool:
        """One echo answered within ``tries`` attempts (the first may wait for ARP through a
        router that just came up; a negative answer costs ``tries`` seconds)."""
        argv = ("busybox", "ping", "-c", str(tries), "-W", "1", "-w", str(tries + 1), ip)
        result = self.in_vm(name, *argv, check=False) if name else self.in_host(*argv,
                                                                               check=False)
        return result.returncode == 0

    def dhcp(self, name: str) -> dict[str, str]:
        script = self.tmp / "udhcpc.sh"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
        lease = self.tmp / f"lease-{name}"
        self.in_vm(name, "env", f"LEASE_FILE={lease}", "busybox", "udhcpc", "-i", "eth0", "-n",
                   "-q", "-O", "staticroutes", "-t", "5", "-T", "1", "-s", str(script))
        return dict(kv.split("=", 1) for kv in lease.read_text().split() if "=" in kv)

    def serve_http(self, name: str, port: int) -> None:
        www = self.tmp / f"www-{name}"
        www.mkdir(exist_ok=True)
        (www / "index.html").write_text(f"hello from {name}\n")
        self.bg.append(subprocess.Popen(
            ["ip", "netns", "exec", self.vms[name], "busybox", "httpd", "-f", "-p", str(port),
             "-h", str(www)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def http_get(self, name: str, url: str) -> str | None:
        # (busybox-static's wget crashes in a namespace without /etc/hosts lookups working)
        code = ("import sys, urllib.request\n"
                "print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode(), end='')")
        result = self.in_vm(name, sys.executable, "-c", code, url, check=False)
        return result.stdout if result.returncode == 0 else None

    # -- what is left --------------------------------------------------------------------
    def our_namespaces(self) -> set[str]:
        out = sh("ip", "netns", "list").stdout
        return {line.split()[0] for line in out.splitlines()
                if line.startswith(self.prefix)} - {self.host, *self.vms.values()}

    def host_links(self) -> dict[str, dict[str, Any]]:
        out = self.in_host("ip", "-json", "-details", "link", "show").stdout
        return {rec["ifname"]: rec for rec in json.loads(out)}

    def nft_tables(self) -> str:
        return self.in_host("nft", "list", "tables").stdout.strip()

    def dnsmasq_pids(self) -> list[str]:
        out = sh("pgrep", "-f", f"dnsmasq.*{self.tmp}", check=False).stdout
        return out.split()

    def close(self) -> None:
        for proc in self.bg:
            proc.kill()
            proc.wait()
        if self.runner is not None and self.runner.poll() is None:
            self.request({"op": "teardown"})
            self.stop_runner()
        for pid in self.dnsmasq_pids():
            sh("kill", pid, check=False)
        out = sh("ip", "netns", "list").stdout
        for line in out.splitlines():
            if line.startswith(self.prefix):
                sh("ip", "netns", "del", line.split()[0], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def lab() -> Iterator[Lab]:
    the_lab = Lab()
    try:
        yield the_lab
    finally:
        the_lab.close()


# -- desired states ----------------------------------------------------------------------
def new_id() -> str:
    return str(uuid.uuid4())


def mac(n: int) -> str:
    return f"fa:16:3e:00:{n // 256:02x}:{n % 256:02x}"


def network(vni: int, cidr: str, gateway: str) -> NetworkState:
    net_id = new_id()
    return NetworkState(id=net_id, segmentation_id=vni, subnets=[SubnetState(
        id=new_id(), network_id=net_id, cidr=cidr, gateway_ip=gateway)])


def port(net: NetworkState, ip: str, n: int, *, groups: list[str],
         owner: str = "compute:nova") -> PortState:
    return PortState(id=new_id(), network_id=net.id, project_id="proj1", mac_address=mac(n),
                     fixed_ips=[FixedIP(subnet_id=net.subnets[0].id, ip_address=ip)],
                     device_owner=owner, device_id=new_id(), host=HOST,
                     security_group_ids=groups)


def dhcp_port(net: NetworkState, ip: str, n: int) -> PortState:
    return port(net, ip, n, groups=[], owner="network:dhcp").model_copy(
        update={"port_security_enabled": False})


def group(gid: str, *rules: SecurityGroupRuleState, members: list[str] | None = None
          ) -> SecurityGroupState:
    return SecurityGroupState(id=gid, rules=list(rules), member_ips=members or [])


def rule(direction: str, **kw: Any) -> SecurityGroupRuleState:
    return SecurityGroupRuleState(id=new_id(), direction=direction, **kw)


EGRESS_ANY = rule("egress")


# -- the tests ---------------------------------------------------------------------------
def test_two_ports_on_one_network_dhcp_metadata_and_anti_spoofing(lab: Lab) -> None:
    net = network(101, "10.1.0.0/24", "10.1.0.1")
    vm1 = port(net, "10.1.0.11", 11, groups=["default"])
    vm2 = port(net, "10.1.0.12", 12, groups=["default"])
    dhcp = dhcp_port(net, "10.1.0.2", 2)
    default = group("default", EGRESS_ANY, rule("ingress", remote_group_id="default"),
                    members=["10.1.0.11", "10.1.0.12"])
    state = HostState(host=HOST, revision=1, networks=[net], ports=[vm1, vm2, dhcp],
                      security_groups=[default])
    lab.vm("vm1", vm1)
    report = lab.apply(state)
    assert report["wired"] == [vm1.id] and report["pending"] == [vm2.id]
    lab.vm("vm2", vm2)  # the hypervisor creates the tap a moment later
    assert lab.request({"op": "refresh"})["wired"] == sorted([vm1.id, vm2.id])

    lease1, lease2 = lab.dhcp("vm1"), lab.dhcp("vm2")
    assert lease1["ip"] == "10.1.0.11" and lease2["ip"] == "10.1.0.12"
    assert lease1["router"] == "10.1.0.1"
    assert "169.254.169.254/32,10.1.0.2" in lease1["staticroutes"]
    assert lab.ping("vm1", "10.1.0.12") and lab.ping("vm2", "10.1.0.11")

    # the metadata proxy: the instance is known by its source address
    lab.in_vm("vm1", "ip", "route", "add", "169.254.169.254/32", "via", "10.1.0.2")
    body = lab.http_get("vm1", "http://169.254.169.254/latest/meta-data/instance-id")
    assert body is not None
    seen = json.loads(body)
    assert seen["path"] == "/latest/meta-data/instance-id"
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["x-instance-id"] == vm1.device_id
    assert headers["x-tenant-id"] == "proj1"
    assert headers["x-forwarded-for"] == "10.1.0.11"
    assert headers["x-instance-id-signature"] == hmac.new(
        b"s3cret", vm1.device_id.encode(), hashlib.sha256).hexdigest()

    # anti-spoofing: another source address gets nowhere
    lab.in_vm("vm1", "ip", "addr", "del", "10.1.0.11/24", "dev", "eth0")
    lab.in_vm("vm1", "ip", "addr", "add", "10.1.0.50/24", "dev", "eth0")
    assert not lab.ping("vm1", "10.1.0.12")
    # ... unless it is an allowed address pair
    vm1_pair = vm1.model_copy(update={"allowed_address_pairs": [("10.1.0.50", None)]})
    members = default.model_copy(update={"member_ips": [*default.member_ips, "10.1.0.50"]})
    lab.apply(state.model_copy(update={"ports": [vm1_pair, vm2, dhcp],
                                       "security_groups": [members]}))
    assert lab.ping("vm1", "10.1.0.12")


def test_security_group_blocks_icmp_and_tcp_until_a_rule_allows(lab: Lab) -> None:
    net = network(102, "10.2.0.0/24", "10.2.0.1")
    client = port(net, "10.2.0.11", 21, groups=["default"])
    server = port(net, "10.2.0.12", 22, groups=["web"])
    default = group("default", EGRESS_ANY, rule("ingress", remote_group_id="default"),
                    members=["10.2.0.11"])
    closed = group("web", EGRESS_ANY, members=["10.2.0.12"])
    lab.vm("client", client, "10.2.0.11/24")
    lab.vm("server", server, "10.2.0.12/24")
    lab.serve_http("server", 8080)
    state = HostState(host=HOST, networks=[net], ports=[client, server],
                      security_groups=[default, closed])
    lab.apply(state)
    assert not lab.ping("client", "10.2.0.12")
    assert lab.http_get("client", "http://10.2.0.12:8080/") is None
    assert not lab.ping("server", "10.2.0.11")  # not in "default": its ingress denies

    icmp = closed.model_copy(update={"rules": [EGRESS_ANY, rule("ingress", protocol="icmp")]})
    lab.apply(state.model_copy(update={"security_groups": [default, icmp]}))
    assert lab.ping("client", "10.2.0.12")
    assert lab.http_get("client", "http://10.2.0.12:8080/") is None

    web = icmp.model_copy(update={"rules": [*icmp.rules, rule(
        "ingress", protocol="tcp", port_range_min=8080, port_range_max=8080,
        remote_ip_prefix="10.2.0.0/24")]})
    lab.apply(state.model_copy(update={"security_groups": [default, web]}))
    assert lab.http_get("client", "http://10.2.0.12:8080/") == "hello from server\n"
    # stateful: the server's replies pass although its egress to the client is not new
    lab.apply(state.model_copy(update={"security_groups": [default, icmp]}))
    assert lab.http_get("client", "http://10.2.0.12:8080/") is None


def test_router_joins_networks_and_floating_ip_reaches_the_host(lab: Lab) -> None:
    net_a = network(103, "10.3.0.0/24", "10.3.0.1")
    net_b = network(104, "10.4.0.0/24", "10.4.0.1")
    ext = NetworkState(id=new_id(), network_type="flat", physical_network="public",
                       router_external=True, mtu=1500, subnets=[])
    open_all = group("open", EGRESS_ANY, rule("ingress"))
    vm_a = port(net_a, "10.3.0.11", 31, groups=["open"])
    vm_b = port(net_b, "10.4.0.11", 41, groups=["open"])
    lab.vm("a", vm_a, "10.3.0.11/24", "10.3.0.1")
    lab.vm("b", vm_b, "10.4.0.11/24", "10.4.0.1")
    # the host side of the public network (``stackling up`` makes this on a real host)
    lab.in_host("ip", "link", "add", "br-ex", "type", "bridge")
    lab.in_host("ip", "addr", "add", "172.24.4.1/24", "dev", "br-ex")
    lab.in_host("ip", "link", "set", "br-ex", "up")
    state = HostState(host=HOST, networks=[net_a, net_b, ext], ports=[vm_a, vm_b],
                      security_groups=[open_all])
    lab.apply(state)
    assert not lab.ping("a", "10.4.0.11")  # isolated

    def itf(net: NetworkState, ip: str, n: int) -> RouterInterfaceState:
        return RouterInterfaceState(port_id=new_id(), network_id=net.id,
                                    subnet_id=net.subnets[0].id, ip_address=ip, prefixlen=24,
                                    mac_address=mac(n))

    router = RouterState(id=new_id(), interfaces=[itf(net_a, "10.3.0.1", 91),
                                                  itf(net_b, "10.4.0.1", 92)])
    lab.apply(state.model_copy(update={"routers": [router]}))
    assert lab.ping("a", "10.4.0.11") and lab.ping("b", "10.3.0.11")
    assert not lab.ping(None, "10.3.0.11")  # the host has no route in

    gateway = RouterGatewayState(port_id=new_id(), network_id=ext.id, ip_address="172.24.4.10",
                                 prefixlen=24, mac_address=mac(93), gateway_ip="172.24.4.1")
    fip = FloatingIPState(id=new_id(), floating_ip_address="172.24.4.20",
                          fixed_ip_address="10.3.0.11", port_id=vm_a.id)
    routed = router.model_copy(update={"gateway": gateway, "floating_ips": [fip]})
    lab.apply(state.model_copy(update={"routers": [routed]}))
    assert lab.ping(None, "172.24.4.20")  # the floating IP, from the host
    assert lab.ping("b", "172.24.4.1")  # SNAT out through the gateway
    # disassociating the floating IP takes it away again
    lab.apply(state.model_copy(update={"routers": [routed.model_copy(
        update={"floating_ips": []})]}))
    assert not lab.ping(None, "172.24.4.20")


def test_restart_reconciles_and_deleting_everything_leaves_nothing(lab: Lab) -> None:
    net_a = network(105, "10.5.0.0/24", "10.5.0.1")
    net_b = network(106, "10.6.0.0/24", "10.6.0.1")
    default = group("default", EGRESS_ANY, rule("ingress", remote_group_id="default"),
                    members=["10.5.0.11", "10.5.0.12"])
    vm1 = port(net_a, "10.5.0.11", 51, groups=["default"])
    vm2 = port(net_a, "10.5.0.12", 52, groups=["default"])
    router = RouterState(id=new_id(), interfaces=[RouterInterfaceState(
        port_id=new_id(), network_id=net_b.id, subnet_id=net_b.subnets[0].id,
        ip_address="10.6.0.1", prefixlen=24, mac_address=mac(94))])
    state = HostState(host=HOST, networks=[net_a, net_b], security_groups=[default],
                      ports=[vm1, vm2, dhcp_port(net_a, "10.5.0.2", 53),
                             dhcp_port(net_b, "10.6.0.2", 54)], routers=[router])
    lab.vm("vm1", vm1)
    lab.vm("vm2", vm2, "10.5.0.12/24")
    lab.apply(state)
    assert len(lab.our_namespaces()) == 3 and len(lab.dnsmasq_pids()) == 2

    # a restarted agent adopts what is there and removes what is no longer wanted
    lab.stop_runner()
    lab.in_host("ip", "link", "set", tap_name(vm2.id), "nomaster")  # drifted while away
    lab.start_runner()
    smaller = state.model_copy(update={"networks": [net_a], "routers": [],
                                       "ports": state.ports[:3]})
    assert lab.apply(smaller)["wired"] == sorted([vm1.id, vm2.id])
    assert lab.our_namespaces() == {f"{lab.prefix}qdhcp-{net_a.id}"}
    assert len(lab.dnsmasq_pids()) == 1
    assert lab.dhcp("vm1")["ip"] == "10.5.0.11"
    assert lab.ping("vm1", "10.5.0.12")
    assert not any(name.startswith("brq" + net_b.id[:11]) for name in lab.host_links())

    # DHCP switched off on the subnet: its namespace and dnsmasq go, the ports stay wired
    no_dhcp = net_a.model_copy(update={"subnets": [net_a.subnets[0].model_copy(
        update={"enable_dhcp": False})]})
    assert lab.apply(smaller.model_copy(update={"networks": [no_dhcp]}))["wired"] == sorted(
        [vm1.id, vm2.id])
    assert lab.our_namespaces() == set() and lab.dnsmasq_pids() == []

    # everything deleted: nothing of ours is left, the VM taps are only detached
    lab.apply(HostState(host=HOST))
    lab.request({"op": "teardown"})
    assert lab.our_namespaces() == set()
    assert lab.dnsmasq_pids() == []
    assert lab.nft_tables() == ""
    links = lab.host_links()
    assert set(links) == {"lo", tap_name(vm1.id), tap_name(vm2.id)}
    assert all("master" not in rec for rec in links.values())


def test_vxlan_joins_two_hosts(lab: Lab) -> None:
    """Two hosts (two data planes in two namespaces) on one underlay link: one VNI, unicast
    FDB entries to the peer, the VMs on either side talk; without the peer they do not."""
    lab.close()  # this test wants two hosts with tunnel addresses
    one, two = Lab("192.168.77.1"), Lab("192.168.77.2")
    try:
        sh("ip", "link", "add", "name", "underlay", "netns", one.host, "type", "veth", "peer",
           "name", "underlay", "netns", two.host)
        for side, addr in ((one, "192.168.77.1/24"), (two, "192.168.77.2/24")):
            side.in_host("ip", "addr", "add", addr, "dev", "underlay")
            side.in_host("ip", "link", "set", "underlay", "up")
        net = network(4242, "10.42.0.0/24", "10.42.0.1")
        net = net.model_copy(update={"mtu": 1450})
        sg = group("default", EGRESS_ANY, rule("ingress", remote_group_id="default"),
                   members=["10.42.0.11", "10.42.0.12"])
        vm1 = port(net, "10.42.0.11", 111, groups=["default"])
        vm2 = port(net, "10.42.0.12", 112, groups=["default"])
        one.vm("vm1", vm1, "10.42.0.11/24")
        two.vm("vm2", vm2, "10.42.0.12/24")
        for side, vm, peer in ((one, vm1, "192.168.77.2"), (two, vm2, "192.168.77.1")):
            side.apply(HostState(host=HOST, networks=[net], ports=[vm], security_groups=[sg],
                                 tunnel_peers={"other": peer, "me": side.tunnel_ip or ""}))
        links = one.host_links()
        assert links["vxlan-4242"]["linkinfo"]["info_data"]["id"] == 4242
        assert one.ping("vm1", "10.42.0.12") and two.ping("vm2", "10.42.0.11")
        fdb = one.in_host("bridge", "fdb", "show", "dev", "vxlan-4242").stdout
        assert "00:00:00:00:00:00 dst 192.168.77.2" in fdb
        # the peer leaves: its FDB entry goes, and with it the path
        one.apply(HostState(host=HOST, networks=[net], ports=[vm1], security_groups=[sg]))
        assert "192.168.77.2" not in one.in_host("bridge", "fdb", "show", "dev",
                                                 "vxlan-4242").stdout
        assert not one.ping("vm1", "10.42.0.12", tries=1)
    finally:
        one.close()
        two.close()


def test_ipv6_security_groups_and_anti_spoofing(lab: Lab) -> None:
    """Dual stack: IPv6 rules by remote group, neighbour discovery through the filters, and
    a source address the port does not own dropped. (DHCPv6 is served statefully from the
    same host entries; busybox-static has no udhcpc6 to prove it here.)"""
    net = network(107, "10.7.0.0/24", "10.7.0.1")
    v6 = SubnetState(id=new_id(), network_id=net.id, cidr="fd42::/64", ip_version=6,
                     gateway_ip="fd42::1")
    net = net.model_copy(update={"subnets": [*net.subnets, v6]})

    def dual(ip4: str, ip6: str, n: int, groups: list[str]) -> PortState:
        p = port(net, ip4, n, groups=groups)
        return p.model_copy(update={"fixed_ips": [
            *p.fixed_ips, FixedIP(subnet_id=v6.id, ip_address=ip6)]})

    vm1 = dual("10.7.0.11", "fd42::11", 71, ["default"])
    vm2 = dual("10.7.0.12", "fd42::12", 72, ["default"])
    vm3 = dual("10.7.0.13", "fd42::13", 73, ["other"])
    default = group("default", EGRESS_ANY, rule("egress", ethertype="IPv6"),
                    rule("ingress", ethertype="IPv6", remote_group_id="default"),
                    members=["10.7.0.11", "10.7.0.12", "fd42::11", "fd42::12"])
    other = group("other", rule("egress", ethertype="IPv6"), members=["fd42::13"])
    for name, vm, ip6 in (("vm1", vm1, "fd42::11"), ("vm2", vm2, "fd42::12"),
                          ("vm3", vm3, "fd42::13")):
        lab.vm(name, vm)
        lab.in_vm(name, "ip", "addr", "add", f"{ip6}/64", "dev", "eth0", "nodad")
    lab.apply(HostState(host=HOST, networks=[net], ports=[vm1, vm2, vm3],
                        security_groups=[default, other]))

    def ping6(name: str, ip: str, source: str | None = None) -> bool:
        extra = ["-I", source] if source else []
        return lab.in_vm(name, "busybox", "ping6", "-c", "3", "-W", "1", "-w", "4", *extra, ip,
                         check=False).returncode == 0

    assert ping6("vm1", "fd42::12")
    assert not ping6("vm3", "fd42::12")  # not a member of "default"
    lab.in_vm("vm1", "ip", "addr", "add", "fd42::99/64", "dev", "eth0", "nodad")
    assert not ping6("vm1", "fd42::12", source="fd42::99")


def eui64(prefix: str, mac_address: str) -> str:
    octets = [int(x, 16) for x in mac_address.split(":")]
    octets[0] ^= 0x02
    iid = bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]])
    net = ipaddress.ip_network(prefix)
    return str(ipaddress.IPv6Address(int(net.network_address) | int.from_bytes(iid, "big")))


def test_router_advertisements_give_slaac_and_a_default_route(lab: Lab) -> None:
    net = network(108, "10.8.0.0/24", "10.8.0.1")
    v6 = SubnetState(id=new_id(), network_id=net.id, cidr="fd48::/64", ip_version=6,
                     gateway_ip="fd48::1", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    net = net.model_copy(update={"subnets": [*net.subnets, v6]})
    vm = port(net, "10.8.0.11", 81, groups=["open"])
    address = eui64("fd48::/64", vm.mac_address)
    vm = vm.model_copy(update={"fixed_ips": [*vm.fixed_ips,
                                             FixedIP(subnet_id=v6.id, ip_address=address)]})
    open6 = group("open", rule("egress", ethertype="IPv6"), rule("ingress", ethertype="IPv6"))
    lab.vm("vm", vm)
    router = RouterState(id=new_id(), interfaces=[RouterInterfaceState(
        port_id=new_id(), network_id=net.id, subnet_id=v6.id, ip_address="fd48::1",
        prefixlen=64, mac_address=mac(95))])
    lab.apply(HostState(host=HOST, networks=[net], ports=[vm], security_groups=[open6],
                        routers=[router]))

    def slaac_ready() -> bool:
        addrs = lab.in_vm("vm", "ip", "-6", "addr", "show", "dev", "eth0").stdout
        routes = lab.in_vm("vm", "ip", "-6", "route", "show", "default").stdout
        return address in addrs and "via fe80::" in routes

    deadline = time.monotonic() + 30
    while not slaac_ready() and time.monotonic() < deadline:
        lab.in_vm("vm", "busybox", "ping6", "-c", "1", "-W", "1", "ff02::2", check=False)
    assert slaac_ready()
    assert lab.in_vm("vm", "busybox", "ping6", "-c", "3", "-W", "1", "-w", "4", "fd48::1",
                     check=False).returncode == 0
    # the router goes: its advertising dnsmasq goes with it
    lab.apply(HostState(host=HOST, networks=[net], ports=[vm], security_groups=[open6]))
    assert lab.dnsmasq_pids() == []
