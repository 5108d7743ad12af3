"""Neutron's attribute rules by name, overridable with a policy file."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackling.common.config import Config, load_config
from tests.functional.network.conftest import NetCloud


@pytest.fixture
def network_config(tmp_path: Path) -> Config:
    policy = tmp_path / "network-policy.yaml"
    policy.write_text('"create_network:shared": "role:member"\n'
                      '"get_port:binding:host_id": "role:member"\n')
    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 0},
        "network": {"notify_delay": 0.0, "policy_file": str(policy)},
        "network_agent": {"host": "node-1", "heartbeat_interval": 0.2},
    })


async def test_policy_file_overrides_defaults(net_cloud: NetCloud) -> None:
    shared = (await net_cloud.ok("POST", "/v2.0/networks", 201, user="demo", json={
        "network": {"name": "s", "shared": True}}))["network"]
    assert shared["shared"] is True
    r = await net_cloud.request("POST", "/v2.0/networks", user="demo", json={
        "network": {"router:external": True}})
    assert r.status_code == 403  # still admin-only
    port = (await net_cloud.ok("POST", "/v2.0/ports", 201, user="demo", json={
        "port": {"network_id": shared["id"]}}))["port"]
    assert "binding:host_id" in port and "binding:vif_type" not in port
