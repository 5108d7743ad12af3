"""Identity on real PostgreSQL and MariaDB: migrations, bootstrap, tokens, conflicts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stackling.cli.cloudsyaml import read_passwords
from stackling.cli.up import build_root_app, prepare
from stackling.common.config import load_config
from stackling.db.migrate import current, head
from stackling.identity.service.identity import MIGRATIONS, VERSION_TABLE
from tests.integration import databases

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgresql":
        if databases.postgres_bin() is None:
            pytest.skip("postgresql is not installed; tools/test installs it")
        with databases.postgres_server() as url:
            yield url
    else:
        if databases.mariadb_bin() is None:
            pytest.skip("mariadb-server is not installed; tools/test installs it")
        with databases.mariadb_server() as url:
            yield url


async def test_identity_runs_on_server_database(database_url: str, tmp_path: Path) -> None:
    config = load_config(env={}, overrides={
        "data_dir": str(tmp_path), "database": {"url": database_url},
        "identity": {"password_hash_rounds": 4},
    })
    identity = await prepare(config)
    try:
        assert await current(identity.engine, VERSION_TABLE) == head(MIGRATIONS, VERSION_TABLE)
        # a second start migrates nothing and bootstraps nothing twice
        await identity.close()
        identity = await prepare(config)
        passwords = read_passwords(tmp_path / "clouds.yaml")
        assert passwords is not None
        app = build_root_app(identity, config)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"},
                "password": passwords["admin"]}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
            responses = await asyncio.gather(*(
                client.post("/identity/v3/auth/tokens", json=body) for _ in range(8)))
            assert all(r.status_code == 201 for r in responses)
            token = responses[0].headers["X-Subject-Token"]
            headers = {"X-Auth-Token": token, "X-Subject-Token": token}
            r = await client.get("/identity/v3/auth/tokens", headers=headers)
            assert r.status_code == 200
            assert {x["name"] for x in r.json()["token"]["roles"]} >= {"admin", "reader"}
            victim = responses[1].headers["X-Subject-Token"]
            r = await client.delete("/identity/v3/auth/tokens", headers={
                "X-Auth-Token": token, "X-Subject-Token": victim})
            assert r.status_code == 204
            r = await client.get("/identity/v3/auth/tokens", headers={
                "X-Auth-Token": token, "X-Subject-Token": victim})
            assert r.status_code == 404
    finally:
        await identity.close()
