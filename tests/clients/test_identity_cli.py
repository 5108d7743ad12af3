"""The issue's acceptance flows, with the stock openstack CLI and openstacksdk."""

from __future__ import annotations

import stat
import uuid

import pytest

from tests.clients.conftest import RunningCloud, start_cloud, stop_cloud

pytestmark = pytest.mark.clients


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_clouds_yaml_is_private(running_cloud: RunningCloud) -> None:
    mode = stat.S_IMODE(running_cloud.clouds_yaml.stat().st_mode)
    assert mode == 0o600


def test_token_issue_and_catalog(running_cloud: RunningCloud) -> None:
    token = running_cloud.openstack_json("token", "issue")
    assert token["id"] and token["project_id"]
    catalog = running_cloud.openstack_json("catalog", "list")
    assert any(s["Type"] == "identity" for s in catalog)
    demo = running_cloud.openstack_json("token", "issue", cloud="stackling-demo")
    assert demo["project_id"] != token["project_id"]


def test_token_revoke(running_cloud: RunningCloud) -> None:
    token = running_cloud.openstack_json("token", "issue")["id"]
    running_cloud.openstack("token", "revoke", token)
    env = running_cloud.env()
    env.update(OS_AUTH_TYPE="token", OS_TOKEN=token)
    result = running_cloud.openstack("project", "list", env=env, check=False)
    assert result.returncode != 0


def test_sdk_sees_identity(running_cloud: RunningCloud) -> None:
    conn = running_cloud.sdk()
    assert conn.identity.get_endpoint_data().url.endswith("/identity/v3/")
    assert conn.current_project_id
    assert conn.auth_token


def test_second_start_reuses_state(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {"STACKLING_IDENTITY__PASSWORD_HASH_ROUNDS": "4"}
    first = start_cloud(tmp_path / "data", env)
    try:
        project = first.openstack_json("token", "issue")["project_id"]
    finally:
        assert stop_cloud(first) == 0
    second = start_cloud(tmp_path / "data", env)
    try:
        assert second.openstack_json("token", "issue")["project_id"] == project
    finally:
        assert stop_cloud(second) == 0
