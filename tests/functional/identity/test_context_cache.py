"""The in-process validator keeps validated tokens, and drops them on any identity change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackling.common.config import Config, load_config
from stackling.common.errors import NotFound, Unauthorized
from tests.functional.conftest import Cloud


@pytest.fixture
def cloud_config(tmp_path: Path) -> Config:
    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 30},
    })


def counting(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []
    real = cloud.identity.tokens.validate

    async def validate(token: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(token)
        return await real(token, *args, **kwargs)

    monkeypatch.setattr(cloud.identity.tokens, "validate", validate)
    return asked


async def test_a_kept_validation_is_dropped_when_the_token_is_revoked(
        cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    admin, demo = await cloud.token(), await cloud.token("demo", "demo")
    asked = counting(cloud, monkeypatch)
    first = await cloud.identity.validate_context(demo, "req-1")
    second = await cloud.identity.validate_context(demo, "req-2")
    assert asked == [demo]  # the second came from the kept validation
    assert (first.user_name, second.user_name) == ("demo", "demo")
    assert (first.request_id, second.request_id) == ("req-1", "req-2")
    r = await cloud.client.delete("/identity/v3/auth/tokens", headers={
        "X-Auth-Token": admin, "X-Subject-Token": demo})
    assert r.status_code == 204
    with pytest.raises((NotFound, Unauthorized)):
        await cloud.identity.validate_context(demo, "req-3")


async def test_a_kept_validation_is_dropped_when_the_user_is_disabled(
        cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    admin, demo = await cloud.token(), await cloud.token("demo", "demo")
    await cloud.identity.validate_context(demo, "r")
    users = (await cloud.client.get("/identity/v3/users?name=demo",
                                    headers={"X-Auth-Token": admin})).json()["users"]
    r = await cloud.client.patch(f"/identity/v3/users/{users[0]['id']}", headers={
        "X-Auth-Token": admin}, json={"user": {"enabled": False}})
    assert r.status_code == 200, r.text
    with pytest.raises((NotFound, Unauthorized)):
        await cloud.identity.validate_context(demo, "r")


async def test_a_change_made_elsewhere_is_seen_within_the_ttl(
        cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a revision change (another process's write, no announcement) a kept
    validation lives at most identity.cache_ttl seconds."""
    demo = await cloud.token("demo", "demo")
    asked = counting(cloud, monkeypatch)
    await cloud.identity.validate_context(demo, "r")
    clock = [0.0]
    kept = cloud.identity._validations
    real_clock = kept.clock
    monkeypatch.setattr(kept, "clock", lambda: real_clock() + clock[0])
    await cloud.identity.validate_context(demo, "r")
    assert len(asked) == 1
    clock[0] = 31.0
    await cloud.identity.validate_context(demo, "r")
    assert len(asked) == 2
