"""``stackling up`` generates the ``[metadata] shared_secret`` the metadata proxy and the
metadata service share: once, kept in the data dir (mode 0600), reused by the next start,
never printed; a configured secret wins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackling.cli.up import prepare_all
from stackling.common.config import Config, load_config


def _config(data: Path, secret: str | None = None) -> Config:
    overrides: dict[str, Any] = {"data_dir": str(data), "identity": {"password_hash_rounds": 4}}
    if secret is not None:
        overrides["metadata"] = {"shared_secret": secret}
    return load_config(env={}, overrides=overrides)


async def test_generated_once_kept_and_reused(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    first = _config(data)
    assert first.metadata.shared_secret is None
    prepared = await prepare_all(first, [])
    await prepared.identity.close()
    secret = first.metadata.shared_secret
    assert secret and len(secret) >= 24
    path = data / "metadata-secret.yaml"
    assert path.stat().st_mode & 0o777 == 0o600
    again = _config(data)
    prepared = await prepare_all(again, [])
    await prepared.identity.close()
    assert again.metadata.shared_secret == secret
    out = capsys.readouterr()
    assert secret not in out.out and secret not in out.err
    # a configured secret is used as it is
    chosen = _config(data, "chosen-secret")
    prepared = await prepare_all(chosen, [])
    await prepared.identity.close()
    assert chosen.metadata.shared_secret == "chosen-secret"
