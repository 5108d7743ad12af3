"""Routers: a namespace ``qrouter-<id>`` with one interface per subnet (``qr-``) in that
network's bridge, a gateway (``qg-``) in the external network's bridge, and nftables NAT.

:func:`render_nat` is pure. NAT in the namespace's ``table ip stackling``:

* floating IPs: ``DNAT floating -> fixed`` on the way in, ``SNAT fixed -> floating`` on the
  way out through the gateway (the floating address is also put on ``qg-`` as a /32 so the
  router answers ARP for it);
* the gateway: everything else leaving through ``qg-`` is SNATed to the gateway address
  when ``enable_snat`` (Neutron's default), nothing otherwise;
* traffic between the router's own subnets is routed, never NATed.

IPv6 router advertisements (:func:`ra_argv`): a dnsmasq in the router namespace that only
advertises (``--port=0``, answers no DHCP request), for the subnets with an
``ipv6_ra_mode``: ``slaac`` -> autonomous flag (``ra-only``), ``dhcpv6-stateless`` -> plus
the other-config flag (``ra-stateless``), ``dhcpv6-stateful`` -> the managed flag (the
addresses come from the network's DHCP namespace).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from stackling.network.dataplane.linuxbridge.names import gateway_if, router_if
from stackling.network.rpcapi import NetworkState, RouterState, SubnetState

NAT_TABLE = "stackling"


def render_nat(router: RouterState) -> str:
    lines = [f"table ip {NAT_TABLE}", f"delete table ip {NAT_TABLE}", f"table ip {NAT_TABLE} {{"]
    lines.append("  chain prerouting {")
    lines.append("    type nat hook prerouting priority dstnat; policy accept;")
    gw = router.gateway
    fips = sorted(router.floating_ips, key=lambda f: f.floating_ip_address) if gw else []
    for fip in fips:
        if ":" in fip.floating_ip_address:
            continue
        lines.append(f"    ip daddr {fip.floating_ip_address} dnat to {fip.fixed_ip_address}")
    lines.append("  }")
    lines.append("  chain output {")  # the router itself reaching a floating IP
    lines.append("    type nat hook output priority -100; policy accept;")
    for fip in fips:
        if ":" not in fip.floating_ip_address:
            lines.append(f"    ip daddr {fip.floating_ip_address} dnat to "
                         f"{fip.fixed_ip_address}")
    lines.append("  }")
    lines.append("  chain postrouting {")
    lines.append("    type nat hook postrouting priority srcnat; policy accept;")
    if gw is not None and ":" not in gw.ip_address:
        qg = gateway_if(gw.port_id)
        for fip in fips:
            if ":" not in fip.floating_ip_address:
                lines.append(f'    oifname "{qg}" ip saddr {fip.fixed_ip_address} '
                             f"snat to {fip.floating_ip_address}")
        if gw.enable_snat:
            lines.append(f'    oifname "{qg}" snat to {gw.ip_address}')
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


_RA_MODES = {"slaac": "ra-only", "dhcpv6-stateless": "ra-stateless", "dhcpv6-stateful": "static"}


def ra_subnets(router: RouterState, networks: dict[str, NetworkState]
               ) -> list[tuple[str, SubnetState]]:
    """(qr- interface, subnet) for each IPv6 router interface whose subnet wants RAs."""
    out = []
    for itf in router.interfaces:
        net = networks.get(itf.network_id)
        subnet = next((s for s in net.subnets if s.id == itf.subnet_id), None) if net else None
        if subnet is not None and subnet.ip_version == 6 and subnet.ipv6_ra_mode in _RA_MODES:
            out.append((router_if(itf.port_id), subnet))
    return out


def ra_argv(router: RouterState, networks: dict[str, NetworkState], workdir: Path,
            binary: str = "dnsmasq") -> list[str] | None:
    """The advertising dnsmasq's command line, or ``None`` when nothing is advertised."""
    wanted = ra_subnets(router, networks)
    if not wanted:
        return None
    argv = [binary, "--no-hosts", "--no-resolv", "--port=0", "--conf-file=/dev/null",
            f"--pid-file={workdir / 'pid'}", "--user=root", f"--log-facility={workdir / 'log'}",
            "--enable-ra", "--bind-interfaces", "--dhcp-ignore=tag:!known",
            f"--dhcp-hostsfile={workdir / 'host'}", f"--dhcp-optsfile={workdir / 'opts'}",
            f"--dhcp-leasefile={workdir / 'leases'}"]
    for device in sorted({d for d, _ in wanted}):
        argv.append(f"--interface={device}")
    for device, subnet in wanted:
        prefixlen = ipaddress.ip_network(subnet.cidr, strict=False).prefixlen
        argv.append(f"--dhcp-range=::,constructor:{device},{_RA_MODES[subnet.ipv6_ra_mode or '']},"
                    f"{prefixlen},1h")
    return argv
