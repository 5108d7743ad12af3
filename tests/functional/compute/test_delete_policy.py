"""A delete the policy refuses changes nothing (the check runs inside the transaction that
starts the delete, which is rolled back)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackling.common.config import Config, load_config
from tests.functional.compute.conftest import ComputeCloud


@pytest.fixture
def compute_config(tmp_path: Path) -> Config:
    policy = tmp_path / "compute-policy.yaml"
    policy.write_text('"os_compute_api:servers:delete": "role:admin"\n')
    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 0},
        "compute": {"host": "node-1", "heartbeat_interval": 0.2,
                    "policy_file": str(policy)},
    })


async def test_a_refused_delete_leaves_the_server_as_it_was(
        compute_cloud: ComputeCloud) -> None:
    c = compute_cloud
    created = await c.boot("kept", user="demo")
    r = await c.request("DELETE", f"/servers/{created['id']}", user="demo")
    assert r.status_code == 403, r.text
    assert r.json()["forbidden"]["message"] == (
        "Policy doesn't allow os_compute_api:servers:delete to be performed.")
    shown = await c.show(created["id"], user="demo")
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-STS:task_state"] is None
    r = await c.request("GET", f"/servers/{created['id']}/os-instance-actions", user="demo")
    assert [a["action"] for a in r.json()["instanceActions"]] == ["create"]
    # another project's server is still 404 before the policy is asked
    theirs = await c.boot("theirs")
    r = await c.request("DELETE", f"/servers/{theirs['id']}", user="demo")
    assert r.status_code == 404
    r = await c.request("DELETE", f"/servers/{created['id']}")  # admin may
    assert r.status_code == 204
    await c.wait_gone(created["id"])
