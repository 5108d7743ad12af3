"""IP address management arithmetic: CIDRs, gateways, allocation pools, free addresses.

Pure functions, no database: :mod:`stackling.network.service.ports` takes a candidate from
:func:`candidates` and inserts it under the ``(subnet_id, ip_address)`` unique constraint,
which is what makes an address impossible to hand out twice.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from stackling.common.errors import BadRequest, Conflict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = Any  # IPv4Address | IPv6Address (compared only within one version)
Pool = tuple[str, str]


def parse_cidr(cidr: object, ip_version: int) -> IPNetwork:
    """The subnet's network; 400 in Neutron's words for anything else."""
    if not isinstance(cidr, str):
        raise BadRequest(f"Invalid input for cidr. Reason: '{cidr}' is not a valid IP subnet.")
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise BadRequest(
            f"Invalid input for cidr. Reason: '{cidr}' is not a valid IP subnet.") from None
    if "/" not in cidr:
        raise BadRequest(f"Invalid input for cidr. Reason: '{cidr}' is not a valid IP subnet.")
    if str(net) != cidr and str(net) != _compressed(cidr):
        raise BadRequest(f"Invalid input for cidr. Reason: '{cidr}' isn't a recommended CIDR, "
                         f"'{net}' should be used instead.")
    if net.version != ip_version:
        raise BadRequest(f"Cidr {cidr} does not match ip_version {ip_version}")
    if (net.version == 4 and net.prefixlen > 30) or (net.version == 6 and net.prefixlen > 126):
        raise BadRequest(f"Invalid input for cidr. Reason: '{cidr}' is too small a subnet.")
    return net


def _compressed(cidr: str) -> str:
    addr, _, plen = cidr.partition("/")
    try:
        return f"{ipaddress.ip_address(addr).compressed}/{plen}"
    except ValueError:
        return cidr


def parse_ip(value: object, field: str = "ip_address") -> IPAddress:
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for {field}. Reason: '{value}' is not a valid IP "
                         "address.")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise BadRequest(f"Invalid input for {field}. Reason: '{value}' is not a valid IP "
                         "address.") from None


def default_gateway(net: IPNetwork) -> str:
    return str(net.network_address + 1)


def _last(net: IPNetwork) -> IPAddress:
    """The last usable address (IPv4 keeps the broadcast out)."""
    return net.broadcast_address - 1 if net.version == 4 else net.broadcast_address


def default_pools(net: IPNetwork, gateway: str | None) -> list[Pool]:
    """The whole range minus network/broadcast and the gateway (Neutron's default)."""
    first: IPAddress = net.network_address + 1
    last: IPAddress = _last(net)
    pools: list[Pool] = []
    gw: IPAddress = ipaddress.ip_address(gateway) if gateway else None
    if gw is not None and first <= gw <= last:
        if gw > first:
            pools.append((str(first), str(gw - 1)))
        if gw < last:
            pools.append((str(gw + 1), str(last)))
    else:
        pools.append((str(first), str(last)))
    return pools


def check_pools(raw: Iterable[object], net: IPNetwork, gateway: str | None) -> list[Pool]:
    """Parse ``[{"start","end"}]``: inside the subnet, ordered, no overlaps, no gateway."""
    pools: list[tuple[IPAddress, IPAddress]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"start", "end"}:
            raise BadRequest("Invalid input for allocation_pools. Reason: Invalid data "
                             f"format for IP pool: '{item}'.")
        start, end = parse_ip(item["start"], "start"), parse_ip(item["end"], "end")
        if (start.version != net.version or end.version != net.version
                or start not in net or end not in net or start > end
                or start == net.network_address
                or (net.version == 4 and end == net.broadcast_address)):
            raise BadRequest(f"The allocation pool {start}-{end} spans beyond the subnet "
                             f"cidr {net}.")
        pools.append((start, end))
    pools.sort()
    for (_, end_a), (start_b, end_b) in itertools.pairwise(pools):
        if start_b <= end_a:
            raise BadRequest(f"Found overlapping allocation pools: {start_b}-{end_b} and a "
                             "preceding pool.")
    if gateway:
        gw = ipaddress.ip_address(gateway)
        for start, end in pools:
            if start <= gw <= end:
                raise Conflict(f"Gateway ip {gateway} conflicts with allocation pool "
                               f"{start}-{end}.")
    return [(str(s), str(e)) for s, e in pools]


def in_pools(ip: IPAddress, pools: Sequence[Sequence[str]]) -> bool:
    return any(ipaddress.ip_address(p[0]) <= ip <= ipaddress.ip_address(p[1]) for p in pools)


def pool_size(pools: Sequence[Sequence[str]]) -> int:
    return sum(int(ipaddress.ip_address(p[1])) - int(ipaddress.ip_address(p[0])) + 1
               for p in pools)


def candidates(pools: Sequence[Sequence[str]], used: set[str]) -> Iterator[str]:
    """Free addresses in pool order (lowest first, as Neutron's IPAM hands them out)."""
    for start, end in pools:
        first, last = int(ipaddress.ip_address(start)), int(ipaddress.ip_address(end))
        for value in range(first, last + 1):
            addr = str(ipaddress.ip_address(value))
            if addr not in used:
                yield addr


def eui64(net: IPNetwork, mac: str) -> str:
    """SLAAC address of ``mac`` on a /64 (RFC 4291 modified EUI-64)."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    value = int(net.network_address) | int.from_bytes(bytes(iid), "big")
    return str(ipaddress.IPv6Address(value))


def normalize(ip: str) -> str:
    return str(ipaddress.ip_address(ip))


def prefixlen(cidr: str) -> int:
    return ipaddress.ip_network(cidr, strict=False).prefixlen


def contains(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def overlaps(a: str, b: str) -> bool:
    na, nb = ipaddress.ip_network(a, strict=False), ipaddress.ip_network(b, strict=False)
    return na.version == nb.version and na.overlaps(nb)  # type: ignore[arg-type]
