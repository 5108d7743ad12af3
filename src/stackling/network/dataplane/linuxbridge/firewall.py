"""Security groups as nftables rules (rendering only; :func:`render` is a pure function).

Why two tables (docs/decisions.md, "security groups on the bridge"): this kernel has no
``nf_conntrack_bridge``, so a ``bridge`` family table cannot be stateful. ``br_netfilter`` is
built in: with ``net.bridge.bridge-nf-call-iptables=1`` bridged IPv4/IPv6 traffic also
passes the ``inet`` forward hook, where conntrack works, but there the in/out devices are the
bridge, not the port. So:

* ``table bridge stackling`` (stateless, L2): per VM tap, anti-spoofing of MAC, ARP and
  source IP (allowed address pairs honoured), and it *marks* every frame with the index of
  the port it came from (low 16 bits) and the port it goes to (high 16 bits).
* ``table inet stackling`` (stateful): ``ct state established,related accept``; then the
  egress rules of the source port and the ingress rules of the destination port, found by
  the marks through verdict maps. No match = drop (default deny ingress; egress only as the
  rules allow). DHCP and IPv6 ND are always allowed; a VM may not act as a DHCP server or
  send router advertisements.

Both tables are replaced atomically on every apply (``nft -f`` is one transaction).
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stackling.network.rpcapi import PortState, SecurityGroupRuleState, SecurityGroupState

TABLE = "stackling"
MAX_PORTS = 0xFFFE

_PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132,
                  "gre": 47, "esp": 50, "ah": 51, "udplite": 136, "igmp": 2}


@dataclass(frozen=True)
class FirewalledPort:
    """A VM port on this host with port security on, and its mark index (1..MAX_PORTS)."""

    index: int
    port: PortState
    device: str  # the tap


def _set_name(family: int, group_id: str) -> str:
    return f"g{family}_" + "".join(c if c.isalnum() else "_" for c in group_id)


def _elements(values: Iterable[str]) -> str:
    return ", ".join(sorted(set(values)))


def _split_ips(values: Iterable[str]) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for value in values:
        net = ipaddress.ip_network(value, strict=False)
        text = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
        (v4 if net.version == 4 else v6).append(text)
    return v4, v6


def port_addresses(port: PortState) -> tuple[list[str], list[str], list[str]]:
    """(MACs, IPv4 addresses/prefixes, IPv6 ...) the port may send from."""
    macs = {port.mac_address.lower()}
    ips = [f.ip_address for f in port.fixed_ips]
    for ip, mac in port.allowed_address_pairs:
        ips.append(ip)
        if mac:
            macs.add(mac.lower())
    v4, v6 = _split_ips(ips)
    return sorted(macs), v4, v6


def _proto_match(rule: SecurityGroupRuleState, v6: bool) -> str | None:
    """The nft match for protocol and ports; ``None`` when the rule cannot match this family."""
    proto = (rule.protocol or "").lower()
    if proto in ("", "any", "all"):
        return ""
    if proto.isdigit():
        number = int(proto)
        name = next((n for n, num in _PROTO_NUMBERS.items() if num == number), None)
        proto = name if name in ("tcp", "udp", "icmp", "icmpv6") else proto
    if proto == "ipv6-icmp":
        proto = "icmpv6"
    if proto == "icmp" and v6:
        proto = "icmpv6"
    if proto == "icmpv6" and not v6:
        return None
    lo, hi = rule.port_range_min, rule.port_range_max
    if proto in ("tcp", "udp"):
        if lo is None and hi is None:
            return f"meta l4proto {proto}"
        lo = lo if lo is not None else 1
        hi = hi if hi is not None else 65535
        return f"{proto} dport {lo}" if lo == hi else f"{proto} dport {lo}-{hi}"
    if proto in ("icmp", "icmpv6"):
        match = f"meta l4proto {'ipv6-icmp' if proto == 'icmpv6' else 'icmp'}"
        if lo is not None:
            match += f" {proto} type {lo}"
            if hi is not None:
                match += f" {proto} code {hi}"
        return match
    if proto.isdigit():
        return f"meta l4proto {int(proto)}"
    if proto in _PROTO_NUMBERS:
        return f"meta l4proto {_PROTO_NUMBERS[proto]}"
    return None  # unknown protocol name: matches nothing rather than everything


def render_rule(rule: SecurityGroupRuleState, known_groups: set[str]) -> str | None:
    """One security group rule as an nft rule ending in ``return`` (= allowed), or ``None``
    when it can never match (e.g. a remote group this host has no member list for)."""
    v6 = rule.ethertype == "IPv6"
    parts = ["meta nfproto ipv6" if v6 else "meta nfproto ipv4"]
    proto = _proto_match(rule, v6)
    if proto is None:
        return None
    if proto:
        parts.append(proto)
    addr = "ip6" if v6 else "ip"
    side = "saddr" if rule.direction == "ingress" else "daddr"
    if rule.remote_ip_prefix:
        net = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
        if (net.version == 6) != v6:
            return None
        if net.prefixlen:
            parts.append(f"{addr} {side} {net}")
    elif rule.remote_group_id:
        if rule.remote_group_id not in known_groups:
            return None
        parts.append(f"{addr} {side} @{_set_name(6 if v6 else 4, rule.remote_group_id)}")
    parts.append("return")
    return " ".join(parts)


def _group_sets(groups: Sequence[SecurityGroupState]) -> list[str]:
    out = []
    for group in groups:
        v4, v6 = _split_ips(group.member_ips)
        for family, members, kind in ((4, v4, "ipv4_addr"), (6, v6, "ipv6_addr")):
            out.append(f"  set {_set_name(family, group.id)} {{")
            out.append(f"    type {kind}; flags interval;")
            if members:
                out.append(f"    elements = {{ {_elements(members)} }}")
            out.append("  }")
    return out


def _bridge_table(ports: Sequence[FirewalledPort]) -> list[str]:
    lines = [f"table bridge {TABLE} {{"]
    lines.append("  chain prerouting {")
    lines.append("    type filter hook prerouting priority -300; policy accept;")
    if ports:
        vmap = ", ".join(f'"{fp.device}" : jump from_{fp.index}' for fp in ports)
        lines.append(f"    iifname vmap {{ {vmap} }}")
    lines.append("  }")
    lines.append("  chain forward {")
    lines.append("    type filter hook forward priority -300; policy accept;")
    if ports:
        vmap = ", ".join(f'"{fp.device}" : jump to_{fp.index}' for fp in ports)
        lines.append(f"    oifname vmap {{ {vmap} }}")
    lines.append("  }")
    for fp in ports:
        macs, v4, v6 = port_addresses(fp.port)
        lines.append(f"  chain from_{fp.index} {{")
        lines.append(f"    ether saddr != {{ {_elements(macs)} }} drop")
        lines.append(f"    ether type arp arp saddr ether != {{ {_elements(macs)} }} drop")
        if v4:
            lines.append(f"    ether type arp arp saddr ip != {{ 0.0.0.0, {_elements(v4)} }} drop")
            lines.append("    ether type ip ip saddr 0.0.0.0 udp dport 67 meta mark set "
                         f"{fp.index} accept")
            lines.append(f"    ether type ip ip saddr != {{ {_elements(v4)} }} drop")
        else:
            lines.append("    ether type arp drop")
            lines.append("    ether type ip ip saddr != 0.0.0.0 drop")
        lines.append("    ether type ip6 ip6 saddr != { ::, fe80::/10"
                     + (f", {_elements(v6)}" if v6 else "") + " } drop")
        lines.append(f"    meta mark set {fp.index}")
        lines.append("  }")
        lines.append(f"  chain to_{fp.index} {{")
        lines.append(f"    meta mark set meta mark or {fp.index << 16:#x}")
        lines.append("  }")
    lines.append("}")
    return lines


def _port_rules(fp: FirewalledPort, direction: str, groups: dict[str, SecurityGroupState]
                ) -> list[str]:
    rules: list[str] = []
    for gid in fp.port.security_group_ids:
        group = groups.get(gid)
        if group is None:
            continue
        for rule in sorted(group.rules, key=lambda r: r.id):
            if rule.direction != direction:
                continue
            rendered = render_rule(rule, set(groups))
            if rendered is not None and rendered not in rules:
                rules.append(rendered)
    return rules


def conntrack_zone(network_id: str, segmentation_id: int | None) -> int:
    """A stable conntrack zone (1..65535) per network, so two projects' overlapping
    addresses on one host never share connection state (collisions only share a zone)."""
    if segmentation_id and segmentation_id < 65536:
        return segmentation_id
    return zlib.crc32(network_id.encode()) % 65535 + 1


def _inet_table(ports: Sequence[FirewalledPort], groups: dict[str, SecurityGroupState],
                zones: dict[str, int]) -> list[str]:
    lines = [f"table inet {TABLE} {{"]
    lines += _group_sets(list(groups.values()))
    if zones:  # bridged packets arrive on the bridge itself here (br_netfilter)
        zmap = ", ".join(f'"{br}" : {zone}' for br, zone in sorted(zones.items()))
        lines.append("  chain prerouting {")
        lines.append("    type filter hook prerouting priority raw; policy accept;")
        lines.append(f"    ct zone set iifname map {{ {zmap} }}")
        lines.append("  }")
    lines.append("  chain forward {")
    lines.append("    type filter hook forward priority 0; policy accept;")
    if ports:
        lines.append("    meta mark and 0xffffffff == 0 accept")
        lines.append("    ct state established,related accept")
        lines.append("    ct state invalid drop")
        egress = ", ".join(f"{fp.index} : jump egress_{fp.index}" for fp in ports)
        ingress = ", ".join(f"{fp.index << 16:#x} : jump ingress_{fp.index}" for fp in ports)
        lines.append(f"    meta mark and 0xffff vmap {{ {egress} }}")
        lines.append(f"    meta mark and 0xffff0000 vmap {{ {ingress} }}")
        lines.append("    accept")
    lines.append("  }")
    for fp in ports:
        lines.append(f"  chain egress_{fp.index} {{")
        lines.append("    udp sport 68 udp dport 67 return")
        lines.append("    udp sport 546 udp dport 547 return")
        lines.append("    udp sport 67 drop")
        lines.append("    udp sport 547 drop")
        lines.append("    icmpv6 type nd-router-advert drop")
        lines.append("    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, "
                     "nd-neighbor-advert, mld-listener-report, mld2-listener-report } return")
        lines += [f"    {r}" for r in _port_rules(fp, "egress", groups)]
        lines.append("    drop")
        lines.append("  }")
        lines.append(f"  chain ingress_{fp.index} {{")
        lines.append("    udp sport 67 udp dport 68 return")
        lines.append("    udp sport 547 udp dport 546 return")
        lines.append("    icmpv6 type { nd-router-advert, nd-neighbor-solicit, "
                     "nd-neighbor-advert, mld-listener-query } return")
        lines += [f"    {r}" for r in _port_rules(fp, "ingress", groups)]
        lines.append("    drop")
        lines.append("  }")
    lines.append("}")
    return lines


def firewalled_ports(ports: Iterable[PortState], devices: dict[str, str]) -> list[FirewalledPort]:
    """Number the ports with port security (sorted by id so the numbering is stable for a
    given set). ``devices``: port id -> tap."""
    chosen = sorted((p for p in ports if p.port_security_enabled and p.id in devices),
                    key=lambda p: p.id)
    if len(chosen) > MAX_PORTS:
        raise ValueError(f"more than {MAX_PORTS} firewalled ports on one host")
    return [FirewalledPort(i, p, devices[p.id]) for i, p in enumerate(chosen, start=1)]


def render(ports: Sequence[FirewalledPort], groups: Sequence[SecurityGroupState],
           zones: dict[str, int] | None = None) -> str:
    """The nft script that replaces both ``stackling`` tables in one transaction.
    ``zones``: bridge -> conntrack zone (see :func:`conntrack_zone`)."""
    by_id = {g.id: g for g in groups}
    lines = [f"table bridge {TABLE}", f"delete table bridge {TABLE}",
             f"table inet {TABLE}", f"delete table inet {TABLE}"]
    lines += _bridge_table(ports)
    lines += _inet_table(ports, by_id, zones or {})
    return "\n".join(lines) + "\n"


def render_delete() -> str:
    return (f"table bridge {TABLE}\ndelete table bridge {TABLE}\n"
            f"table inet {TABLE}\ndelete table inet {TABLE}\n")
