"""Kernel object names: Neutron's linuxbridge conventions (15-character interface names).

Everything the data plane creates is recognisable by these prefixes, which is how a
reconcile finds stale objects of ours without touching anybody else's."""

from __future__ import annotations

from stackling.network.rpcapi import tap_name

__all__ = ["bridge_name", "dhcp_ns", "router_ns", "tap_name", "vxlan_name"]

BRIDGE_PREFIX = "brq"
VXLAN_PREFIX = "vxlan-"
DHCP_IF_PREFIX = "ns-"  # the DHCP port inside its namespace
ROUTER_IF_PREFIX = "qr-"  # a router interface inside the router namespace
GATEWAY_IF_PREFIX = "qg-"  # the router's external gateway inside the router namespace
TAP_PREFIX = "tap"  # VM taps and the bridge-side ends of our veth pairs
NFT_TABLE = "stackling"


def bridge_name(network_id: str) -> str:
    return (BRIDGE_PREFIX + network_id)[:14]


def vxlan_name(vni: int) -> str:
    return f"{VXLAN_PREFIX}{vni}"


def _short(prefix: str, port_id: str) -> str:
    return (prefix + port_id)[:14]


def dhcp_if(port_id: str) -> str:
    return _short(DHCP_IF_PREFIX, port_id)


def router_if(port_id: str) -> str:
    return _short(ROUTER_IF_PREFIX, port_id)


def gateway_if(port_id: str) -> str:
    return _short(GATEWAY_IF_PREFIX, port_id)


def dhcp_ns(prefix: str, network_id: str) -> str:
    return f"{prefix}qdhcp-{network_id}"


def router_ns(prefix: str, router_id: str) -> str:
    return f"{prefix}qrouter-{router_id}"
