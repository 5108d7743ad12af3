"""Rendering of nftables rules, dnsmasq files and router NAT (pure functions, no root)."""

from __future__ import annotations

from pathlib import Path

from stackling.network.dataplane import DATAPLANES, LinuxBridgeDataplane, NoopDataplane
from stackling.network.dataplane.linuxbridge import firewall
from stackling.network.dataplane.linuxbridge.dhcp import dnsmasq_argv, render_hosts, render_opts
from stackling.network.dataplane.linuxbridge.names import bridge_name, dhcp_ns, vxlan_name
from stackling.network.dataplane.linuxbridge.router import ra_argv, render_nat
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
)

NET = "6a7b8c9d-0000-4000-8000-000000000001"
SUB4 = "5b000000-0000-4000-8000-000000000004"
SUB6 = "5b000000-0000-4000-8000-000000000006"


def network() -> NetworkState:
    return NetworkState(id=NET, segmentation_id=77, subnets=[
        SubnetState(id=SUB4, network_id=NET, cidr="10.0.0.0/24", gateway_ip="10.0.0.1",
                    dns_nameservers=["192.0.2.53"], host_routes=[("192.0.2.0/24", "10.0.0.9")]),
        SubnetState(id=SUB6, network_id=NET, cidr="fd00::/64", ip_version=6,
                    gateway_ip="fd00::1")])


def port(pid: str, ip: str, *, groups: tuple[str, ...] = ("g1",), owner: str = "compute:nova",
         pairs: list[tuple[str, str | None]] | None = None) -> PortState:
    return PortState(id=pid, network_id=NET, mac_address="FA:16:3E:00:00:" + pid[-2:],
                     fixed_ips=[FixedIP(subnet_id=SUB4, ip_address=ip)], device_owner=owner,
                     device_id="inst-" + pid, host="h1", security_group_ids=list(groups),
                     allowed_address_pairs=pairs or [])


def rule(rid: str, direction: str, **kw: object) -> SecurityGroupRuleState:
    return SecurityGroupRuleState(id=rid, direction=direction, **kw)  # type: ignore[arg-type]


def render(ports: list[PortState], groups: list[SecurityGroupState]) -> str:
    return firewall.render(firewall.firewalled_ports(ports, {p.id: p.tap_name for p in ports}),
                           groups)


def chain(script: str, name: str) -> list[str]:
    lines = script.splitlines()
    start = lines.index(f"  chain {name} {{")
    end = lines.index("  }", start)
    return [line.strip() for line in lines[start + 1:end]]


def test_plugin_table_is_explicit() -> None:
    assert DATAPLANES == {"noop": NoopDataplane, "linuxbridge": LinuxBridgeDataplane}


def test_names_fit_the_kernel_limit() -> None:
    assert bridge_name(NET) == "brq6a7b8c9d-00"
    assert len(bridge_name(NET)) <= 15
    assert vxlan_name(16777215) == "vxlan-16777215"
    assert dhcp_ns("slab-", NET) == f"slab-qdhcp-{NET}"


def test_default_group_denies_ingress_except_same_group() -> None:
    p1, p2 = port("p-000000000001", "10.0.0.5"), port("p-000000000002", "10.0.0.6")
    group = SecurityGroupState(id="g1", member_ips=["10.0.0.5", "10.0.0.6"], rules=[
        rule("a", "egress"), rule("b", "egress", ethertype="IPv6"),
        rule("c", "ingress", remote_group_id="g1"),
        rule("d", "ingress", ethertype="IPv6", remote_group_id="g1")])
    script = render([p1, p2], [group])
    ingress = chain(script, "ingress_1")
    assert ingress[-1] == "drop"
    assert "meta nfproto ipv4 ip saddr @g4_g1 return" in ingress
    assert "meta nfproto ipv6 ip6 saddr @g6_g1 return" in ingress
    assert "meta nfproto ipv4 return" in chain(script, "egress_1")
    assert "elements = { 10.0.0.5, 10.0.0.6 }" in script
    forward = chain(script.split("table inet stackling {")[1], "forward")
    assert forward.index("ct state established,related accept") < forward.index(
        "meta mark and 0xffff vmap { 1 : jump egress_1, 2 : jump egress_2 }")
    # ports are numbered by id, so the numbering is stable
    assert '"tapp-000000000" : jump from_1' in script


def test_conntrack_zone_per_bridge() -> None:
    script = firewall.render([], [], {"brqa": 77, "brqb": 9})
    assert 'ct zone set iifname map { "brqa" : 77, "brqb" : 9 }' in script
    assert firewall.conntrack_zone(NET, 77) == 77
    assert 1 <= firewall.conntrack_zone(NET, 16000000) <= 65535
    assert firewall.conntrack_zone(NET, None) == firewall.conntrack_zone(NET, None)


def test_protocols_ports_and_icmp() -> None:
    group = SecurityGroupState(id="g1", rules=[
        rule("a", "ingress", protocol="tcp", port_range_min=22, port_range_max=22,
             remote_ip_prefix="0.0.0.0/0"),
        rule("b", "ingress", protocol="udp", port_range_min=1000, port_range_max=2000,
             remote_ip_prefix="192.0.2.0/24"),
        rule("c", "ingress", protocol="icmp", port_range_min=8, port_range_max=0),
        rule("d", "ingress", protocol="icmp", ethertype="IPv6"),
        rule("e", "ingress", protocol="47"),
        rule("f", "ingress", protocol="tcp", ethertype="IPv6", remote_ip_prefix="10.0.0.0/8"),
        rule("g", "ingress", remote_group_id="unknown-group")])
    ingress = chain(render([port("p-000000000001", "10.0.0.5")], [group]), "ingress_1")
    assert "meta nfproto ipv4 tcp dport 22 return" in ingress
    assert "meta nfproto ipv4 udp dport 1000-2000 ip saddr 192.0.2.0/24 return" in ingress
    assert "meta nfproto ipv4 meta l4proto icmp icmp type 8 icmp code 0 return" in ingress
    assert "meta nfproto ipv6 meta l4proto ipv6-icmp return" in ingress
    assert "meta nfproto ipv4 meta l4proto 47 return" in ingress
    # a v4 prefix on a v6 rule and an unknown remote group can never match: not rendered
    assert not any("10.0.0.0/8" in line or "unknown" in line for line in ingress)


def test_anti_spoofing_honours_allowed_address_pairs() -> None:
    p = port("p-000000000001", "10.0.0.5",
             pairs=[("10.0.0.100/32", None), ("10.0.1.0/24", "fa:16:3e:aa:bb:cc")])
    src = chain(render([p], []), "from_1")
    assert "ether saddr != { fa:16:3e:00:00:01, fa:16:3e:aa:bb:cc } drop" in src
    assert "ether type ip ip saddr != { 10.0.0.100, 10.0.0.5, 10.0.1.0/24 } drop" in src
    assert src[-1] == "meta mark set 1"


def test_port_security_disabled_is_not_filtered() -> None:
    p = port("p-000000000001", "10.0.0.5").model_copy(update={"port_security_enabled": False})
    script = render([p], [])
    assert "from_1" not in script and "ingress_1" not in script
    assert script.startswith("table bridge stackling\ndelete table bridge stackling\n")


def test_dnsmasq_files() -> None:
    net = network()
    dhcp = PortState(id="d-000000000001", network_id=NET, mac_address="fa:16:3e:00:00:02",
                     device_owner="network:dhcp",
                     fixed_ips=[FixedIP(subnet_id=SUB4, ip_address="10.0.0.2")])
    vm = port("p-000000000001", "10.0.0.5").model_copy(update={"fixed_ips": [
        FixedIP(subnet_id=SUB4, ip_address="10.0.0.5"),
        FixedIP(subnet_id=SUB6, ip_address="fd00::5")]})
    hosts = render_hosts(net, [vm, dhcp])
    assert hosts == ("fa:16:3e:00:00:01,host-10-0-0-5,10.0.0.5\n"
                     "fa:16:3e:00:00:01,host-fd00--5,[fd00::5]\n")
    opts = render_opts(net, dhcp).splitlines()
    assert "tag:subnet0,option:router,10.0.0.1" in opts
    assert "tag:subnet0,option:dns-server,192.0.2.53" in opts
    assert ("tag:subnet0,option:classless-static-route,169.254.169.254/32,10.0.0.2,"
            "192.0.2.0/24,10.0.0.9,0.0.0.0/0,10.0.0.1") in opts
    argv = dnsmasq_argv(net, "ns-d-000000000", Path("/tmp/x"), 600)
    assert "--dhcp-range=set:subnet0,10.0.0.0,static,255.255.255.0,600s" in argv
    assert "--dhcp-range=set:subnet1,fd00::,static,64,600s" in argv
    assert "--interface=ns-d-000000000" in argv and "--port=0" in argv


def test_subnet_without_dhcp_is_not_served() -> None:
    net = network().model_copy(update={"subnets": [
        SubnetState(id=SUB4, network_id=NET, cidr="10.0.0.0/24", enable_dhcp=False)]})
    assert render_hosts(net, [port("p-000000000001", "10.0.0.5")]) == ""
    assert not any(a.startswith("--dhcp-range") for a in dnsmasq_argv(net, "x", Path("/"), 60))


def test_router_nat() -> None:
    router = RouterState(
        id="r1", gateway=RouterGatewayState(port_id="g-000000000001", network_id="ext",
                                            ip_address="172.24.4.10", prefixlen=24,
                                            mac_address="fa:16:3e:00:01:01",
                                            gateway_ip="172.24.4.1"),
        interfaces=[RouterInterfaceState(port_id="i1", network_id=NET, subnet_id=SUB4,
                                         ip_address="10.0.0.1", prefixlen=24,
                                         mac_address="fa:16:3e:00:01:02")],
        floating_ips=[FloatingIPState(id="f1", floating_ip_address="172.24.4.20",
                                      fixed_ip_address="10.0.0.5", port_id="p1")])
    nat = render_nat(router)
    assert "ip daddr 172.24.4.20 dnat to 10.0.0.5" in nat
    lines = [line.strip() for line in nat.splitlines()]
    fip = lines.index('oifname "qg-g-000000000" ip saddr 10.0.0.5 snat to 172.24.4.20')
    assert fip < lines.index('oifname "qg-g-000000000" snat to 172.24.4.10')
    no_snat = router.model_copy(update={"gateway": router.gateway.model_copy(  # type: ignore
        update={"enable_snat": False})})
    assert "snat to 172.24.4.10" not in render_nat(no_snat)
    assert "dnat" not in render_nat(router.model_copy(update={"gateway": None}))


async def test_noop_reports_compute_ports_of_its_host() -> None:
    dp = NoopDataplane()
    state = HostState(host="h1", revision=3, ports=[
        port("p-000000000001", "10.0.0.5"),
        port("p-000000000002", "10.0.0.6").model_copy(update={"host": "h2"}),
        port("p-000000000003", "10.0.0.7", owner="network:dhcp"),
        port("p-000000000004", "10.0.0.8").model_copy(update={"admin_state_up": False})])
    report = await dp.apply(state)
    assert report.wired == {"p-000000000001"} and report.revision == 3
    assert dp.last_state == state
    await dp.teardown()
    assert dp.last_state is None


def test_router_advertisements_only_for_subnets_with_an_ra_mode() -> None:
    net = network()
    router = RouterState(id="r1", interfaces=[
        RouterInterfaceState(port_id="i-000000000004", network_id=NET, subnet_id=SUB4,
                             ip_address="10.0.0.1", prefixlen=24, mac_address="fa:16:3e:0:1:1"),
        RouterInterfaceState(port_id="i-000000000006", network_id=NET, subnet_id=SUB6,
                             ip_address="fd00::1", prefixlen=64, mac_address="fa:16:3e:0:1:2")])
    assert ra_argv(router, {NET: net}, Path("/x")) is None  # no ipv6_ra_mode: Neutron's None
    slaac = net.model_copy(update={"subnets": [net.subnets[0], net.subnets[1].model_copy(
        update={"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"})]})
    argv = ra_argv(router, {NET: slaac}, Path("/x"))
    assert argv is not None and "--enable-ra" in argv and "--port=0" in argv
    assert "--interface=qr-i-000000000" in argv
    assert "--dhcp-range=::,constructor:qr-i-000000000,ra-only,64,1h" in argv
