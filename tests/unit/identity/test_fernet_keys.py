from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest

from stackling.common.errors import NotFound
from stackling.common.timeutils import utcnow
from stackling.identity.service.fernet import KeyRepository
from stackling.identity.service.token_format import TokenData, decode, encode, new_audit_id


def _token(repo: KeyRepository) -> str:
    now = utcnow()
    data = TokenData(user_id="a" * 32, methods=("password",), issued_at=now,
                     expires_at=now + timedelta(hours=1), audit_ids=(new_audit_id(),),
                     project_id="b" * 32)
    return encode(data, repo.fernet())


def test_setup_creates_private_staged_and_primary(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    assert repo.setup() is True
    assert sorted(p.name for p in repo.path.iterdir()) == ["0", "1"]
    assert stat.S_IMODE(repo.path.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in repo.path.iterdir())
    assert repo.setup() is False


def test_rotation_keeps_recent_tokens_and_drops_old_keys(tmp_path: Path) -> None:
    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    repo.setup()
    token = _token(repo)
    assert repo.rotate() == 2
    assert decode(token, repo.fernet()).user_id == "a" * 32  # 1 is now a secondary
    assert sorted(int(p.name) for p in repo.path.iterdir()) == [0, 1, 2]
    repo.rotate()  # 1 is purged: staged + primary 3 + secondary 2
    assert sorted(int(p.name) for p in repo.path.iterdir()) == [0, 2, 3]
    with pytest.raises(NotFound):
        decode(token, repo.fernet())


def test_staged_key_decrypts_before_promotion(tmp_path: Path) -> None:
    """Another node may already encrypt with the key we only have staged."""
    a = KeyRepository(tmp_path / "a", max_active_keys=3)
    a.setup()
    b = KeyRepository(tmp_path / "b", max_active_keys=3)
    b.path.mkdir()
    for p in a.path.iterdir():
        (b.path / p.name).write_bytes(p.read_bytes())
    a.rotate()  # a now encrypts with what b has as staged key 0
    assert decode(_token(a), b.fernet()).project_id == "b" * 32


@pytest.mark.parametrize("junk", ["", "not-a-token", "gAAAAA" + "x" * 100, "é" * 10])
def test_garbage_is_not_found(tmp_path: Path, junk: str) -> None:
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    with pytest.raises(NotFound):
        decode(junk, repo.fernet())
