"""``stackling serve <service>`` and ``stackling node``: what a split process needs, said
plainly when missing (the working deployment is tests/integration/test_compute_scale_out.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stackling.cli.main import build_parser, config_from_args, main
from stackling.cli.node import role_table


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("STACKLING_"):
            monkeypatch.delenv(name)


def test_node_roles_are_the_components_agents() -> None:
    assert {role: cls.name for role, cls in role_table().items()} == {
        "compute": "compute", "network-agent": "network", "volume": "volume"}


def test_node_flags_reach_the_config(tmp_path: Path) -> None:
    args = build_parser().parse_args([
        "node", "--data-dir", str(tmp_path), "--roles", "compute", "--hostname", "cn7",
        "--identity-url", "http://ctl:8780/identity", "--bus-url", "amqp://u:p@ctl:5672/"])
    config = config_from_args(args)
    assert config.auth.identity_url == "http://ctl:8780/identity"
    assert config.bus.url == "amqp://u:p@ctl:5672/"
    assert (config.compute.host, config.network_agent.host, config.volume.host) == (
        "cn7", "cn7", "cn7")


def test_node_rejects_unknown_roles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["node", "--data-dir", str(tmp_path), "--roles", "compute,dhcp",
                 "--bus-url", "amqp://u:p@127.0.0.1:1/"]) == 2
    assert "unknown role(s) dhcp" in capsys.readouterr().err


def test_node_needs_a_shared_bus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["node", "--data-dir", str(tmp_path), "--roles", "compute"]) == 2
    assert "needs a shared bus" in capsys.readouterr().err


def test_serve_needs_the_identity_url(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "image", "--data-dir", str(tmp_path), "--port", "0"]) == 2
    assert "identity_url" in capsys.readouterr().err


def test_serve_needs_the_service_users_passwords(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "service-users.yaml").write_text("glance: not-this-one\n")
    monkeypatch.setenv("STACKLING_AUTH__IDENTITY_URL", "http://127.0.0.1:1/identity")
    assert main(["serve", "compute", "--data-dir", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "no password for service user 'nova'" in err and "not-this-one" not in err
