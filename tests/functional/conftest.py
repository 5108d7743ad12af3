"""In-process cloud for functional tests: real identity service on a temp SQLite database,
driven over ASGI (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackling.cli.cloudsyaml import read_passwords
from stackling.cli.up import build_root_app, prepare
from stackling.common.config import Config, load_config


class Cloud:
    def __init__(self, config: Config, client: httpx.AsyncClient, passwords: dict[str, str],
                 identity: Any) -> None:
        self.config = config
        self.client = client
        self.passwords = passwords
        self.identity = identity

    async def token(self, user: str = "admin", project: str | None = "admin",
                    password: str | None = None, scope: Any = None) -> str:
        body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {
            "user": {"name": user, "domain": {"id": "default"},
                     "password": password or self.passwords[user]}}}}}
        if scope is not None:
            body["auth"]["scope"] = scope
        elif project is not None:
            body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        response = await self.client.post("/identity/v3/auth/tokens", json=body)
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]


@pytest.fixture
def cloud_config(tmp_path: Path) -> Config:
    # cheap bcrypt in functional tests: the cost is measured in bench/, not here
    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 0},
    })


@pytest.fixture
async def cloud(cloud_config: Config) -> AsyncIterator[Cloud]:
    identity = await prepare(cloud_config)
    app = build_root_app(identity, cloud_config)
    passwords = read_passwords(cloud_config.data_dir / "clouds.yaml")
    assert passwords is not None
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Cloud(cloud_config, client, passwords, identity)
    await identity.close()
