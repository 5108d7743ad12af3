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


def test_acceptance_flows_as_admin_and_demo(running_cloud: RunningCloud) -> None:
    """The issue's acceptance list, with the stock CLI."""
    c = running_cloud
    project, user, group, role = uniq("proj"), uniq("user"), uniq("grp"), uniq("role")
    c.openstack_json("project", "create", "--domain", "default", project)
    c.openstack_json("user", "create", "--domain", "default", "--password", "s3cret-Pass1",
                     "--project", project, user)
    c.openstack_json("group", "create", "--domain", "default", group)
    c.openstack("group", "add", "user", group, user)
    c.openstack_json("role", "create", role)
    c.openstack("role", "add", "--user", user, "--project", project, "member")
    c.openstack("role", "add", "--group", group, "--project", project, role)
    rows = c.openstack_json("role", "assignment", "list", "--names", "--effective",
                            "--user", user)
    names = {(r["Role"], r["Project"]) for r in rows}
    assert ("member", f"{project}@Default") in names
    assert (role, f"{project}@Default") in names  # through the group, effective
    assert ("reader", f"{project}@Default") in names  # implied by member

    # application credential, then authenticate with it
    cred = c.openstack_json("application", "credential", "create", uniq("ac"))
    env = {k: v for k, v in c.env().items() if k != "OS_CLOUD"}
    auth_url = c.url + "/identity"
    env.update(OS_AUTH_TYPE="v3applicationcredential", OS_AUTH_URL=auth_url,
               OS_APPLICATION_CREDENTIAL_ID=cred["ID"],
               OS_APPLICATION_CREDENTIAL_SECRET=cred["Secret"], OS_IDENTITY_API_VERSION="3")
    env.pop("OS_CLIENT_CONFIG_FILE")
    token = c.openstack("token", "issue", "-f", "json", env=env)
    assert '"project_id"' in token.stdout

    ec2 = c.openstack_json("ec2", "credentials", "create")
    assert ec2["access"] and ec2["secret"]

    # demo: member of demo only -> 403 where Keystone's defaults say so
    denied = c.openstack("project", "create", uniq("nope"), cloud="stackling-demo", check=False)
    assert denied.returncode != 0 and "403" in denied.stderr
    denied = c.openstack("user", "list", cloud="stackling-demo", check=False)
    assert denied.returncode != 0 and "403" in denied.stderr
    assert c.openstack_json("token", "issue", cloud="stackling-demo")["id"]
    demo_ec2 = c.openstack_json("ec2", "credentials", "create", cloud="stackling-demo")
    assert demo_ec2["access"]
