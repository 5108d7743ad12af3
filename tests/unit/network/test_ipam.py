"""IPAM arithmetic: CIDR checks, default pools, pool validation, candidate order, SLAAC."""

from __future__ import annotations

import ipaddress

import pytest

from stackling.common.errors import BadRequest, Conflict
from stackling.network import ipam


def test_parse_cidr_refuses_host_bits_and_wrong_version() -> None:
    assert str(ipam.parse_cidr("10.0.0.0/24", 4)) == "10.0.0.0/24"
    with pytest.raises(BadRequest, match="recommended CIDR"):
        ipam.parse_cidr("10.0.0.5/24", 4)
    with pytest.raises(BadRequest, match="does not match ip_version"):
        ipam.parse_cidr("2001:db8::/64", 4)
    with pytest.raises(BadRequest):
        ipam.parse_cidr("not-a-cidr", 4)
    with pytest.raises(BadRequest):
        ipam.parse_cidr("10.0.0.1", 4)


def test_default_pools_skip_network_broadcast_and_gateway() -> None:
    net = ipam.parse_cidr("10.0.0.0/29", 4)
    assert ipam.default_pools(net, "10.0.0.1") == [("10.0.0.2", "10.0.0.6")]
    assert ipam.default_pools(net, "10.0.0.4") == [("10.0.0.1", "10.0.0.3"),
                                                  ("10.0.0.5", "10.0.0.6")]
    assert ipam.default_pools(net, None) == [("10.0.0.1", "10.0.0.6")]
    v6 = ipam.parse_cidr("2001:db8::/126", 6)
    assert ipam.default_pools(v6, "2001:db8::1") == [("2001:db8::2", "2001:db8::3")]


def test_check_pools() -> None:
    net = ipam.parse_cidr("10.0.0.0/24", 4)
    assert ipam.check_pools([{"start": "10.0.0.10", "end": "10.0.0.20"}], net, "10.0.0.1") \
        == [("10.0.0.10", "10.0.0.20")]
    with pytest.raises(BadRequest, match="spans beyond"):
        ipam.check_pools([{"start": "10.0.0.10", "end": "10.0.1.20"}], net, None)
    with pytest.raises(BadRequest, match="overlapping"):
        ipam.check_pools([{"start": "10.0.0.10", "end": "10.0.0.20"},
                          {"start": "10.0.0.15", "end": "10.0.0.30"}], net, None)
    with pytest.raises(Conflict):
        ipam.check_pools([{"start": "10.0.0.1", "end": "10.0.0.20"}], net, "10.0.0.5")


def test_candidates_lowest_first_and_skip_used() -> None:
    pools = [("10.0.0.2", "10.0.0.4"), ("10.0.0.8", "10.0.0.8")]
    assert list(ipam.candidates(pools, {"10.0.0.3"})) == ["10.0.0.2", "10.0.0.4", "10.0.0.8"]
    assert ipam.pool_size(pools) == 4


def test_eui64() -> None:
    net = ipaddress.IPv6Network("2001:db8::/64")
    assert ipam.eui64(net, "fa:16:3e:12:34:56") == "2001:db8::f816:3eff:fe12:3456"
