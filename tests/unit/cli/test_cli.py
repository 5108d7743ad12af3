from __future__ import annotations

from pathlib import Path

import pytest

from stackling.cli.main import main
from stackling.common.config import load_config


def test_qemu_without_its_tools_fails_clearly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("stackling.cli.up.qemu_missing_tools", lambda: ["qemu-img"])
    assert main(["up", "--data-dir", str(tmp_path), "--virt", "qemu"]) == 2
    assert "--virt qemu needs qemu-img" in capsys.readouterr().err


def test_up_picks_what_the_machine_has(monkeypatch: pytest.MonkeyPatch) -> None:
    from stackling.cli import up
    from stackling.common.config import load_config

    monkeypatch.setattr(up, "qemu_missing_tools", lambda: [])
    monkeypatch.setattr(up, "dataplane_missing_tools", lambda: ["root"])
    resolved = up.resolve_defaults(load_config(env={}, overrides={}))
    assert (resolved.virt, resolved.dataplane) == ("qemu", "noop")
    monkeypatch.setattr(up, "qemu_missing_tools", lambda: ["qemu-system-x86_64"])
    monkeypatch.setattr(up, "dataplane_missing_tools", lambda: [])
    resolved = up.resolve_defaults(load_config(env={}, overrides={}))
    assert (resolved.virt, resolved.dataplane) == ("fake", "linuxbridge")
    # said anywhere (flag, file, environment): kept as said
    said = load_config(env={"STACKLING_VIRT": "fake"}, overrides={"dataplane": "noop"})
    assert up.resolve_defaults(said) is said


def test_linuxbridge_without_its_tools_fails_clearly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("stackling.cli.up.dataplane_missing_tools", lambda: ["root", "dnsmasq"])
    assert main(["up", "--data-dir", str(tmp_path), "--dataplane", "linuxbridge"]) == 2
    assert "needs root, dnsmasq" in capsys.readouterr().err


def test_db_upgrade_and_rotate_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "--data-dir", str(tmp_path), "upgrade"]) == 0
    assert (tmp_path / "identity.sqlite").exists()
    assert (tmp_path / "image.sqlite").exists()
    assert main(["identity", "--data-dir", str(tmp_path), "rotate-keys"]) == 0
    assert sorted(p.name for p in (tmp_path / "fernet-keys").iterdir()) == ["0", "1", "2"]
    assert "primary key is now 2" in capsys.readouterr().out


def test_status_when_not_running(tmp_path: Path) -> None:
    assert main(["status", "--data-dir", str(tmp_path)]) == 1


def test_bad_config_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKLING_API__PORT", "not-a-port")
    assert main(["status", "--data-dir", str(tmp_path)]) == 2
    assert "invalid configuration" in capsys.readouterr().err


def test_config_file_and_env_override(tmp_path: Path) -> None:
    conf = tmp_path / "stackling.toml"
    conf.write_text('region = "Elsewhere"\n[identity]\ntoken_expiration = 900\n')
    config = load_config(conf, {"STACKLING_IDENTITY__TOKEN_EXPIRATION": "1200"})
    assert config.region == "Elsewhere"
    assert config.identity.token_expiration == 1200
    with pytest.raises(ValueError):
        load_config(None, {"STACKLING_IDENTITY__NO_SUCH_KEY": "1"})


def test_busy_port_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["up", "--data-dir", str(tmp_path), "--port", str(port)]) == 1
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
