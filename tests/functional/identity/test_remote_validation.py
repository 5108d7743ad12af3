"""Services outside identity: REST validation, the TTL cache, and revocation over the bus."""

from __future__ import annotations

import httpx
import pytest

from stackling.bus import create_transport
from stackling.clients.identity import (
    RemoteTokenValidator,
    ServiceCredentials,
    announce_revocation,
    follow_revocations,
)
from stackling.common.errors import NotFound, Unauthorized
from stackling.web.auth import CachingValidator
from tests.functional.conftest import Cloud


@pytest.fixture
async def remote(cloud: Cloud) -> RemoteTokenValidator:
    app_client = httpx.AsyncClient(transport=cloud.client._transport,
                                   base_url="http://testserver")
    return RemoteTokenValidator(
        "http://testserver/identity",
        ServiceCredentials("admin", cloud.passwords["admin"], project_name="admin"),
        client=app_client,
    )


async def test_remote_validation_gives_context(cloud: Cloud,
                                               remote: RemoteTokenValidator) -> None:
    token = await cloud.token("demo", "demo")
    ctx = await remote.validate_context(token, "req-1")
    assert ctx.user_name == "demo" and ctx.project_name == "demo"
    assert "member" in ctx.roles and "admin" not in ctx.roles
    with pytest.raises((NotFound, Unauthorized)):
        await remote.validate_context(token[:-3] + "xyz", "req-2")
    assert "password" not in repr(remote.credentials).lower().replace("password=", "")


async def test_cache_forgets_on_revocation_announcement(
        cloud: Cloud, remote: RemoteTokenValidator) -> None:
    transport = create_transport("memory://")
    await transport.start()
    try:
        cache = CachingValidator(remote, ttl=300, size=100)
        await follow_revocations(transport, cache.forget_all)

        async def announce() -> None:
            await announce_revocation(transport)

        cloud.identity.revocations.listeners.append(announce)
        admin = await cloud.token()
        victim = await cloud.token("demo", "demo")
        assert (await cache.validate_context(victim, "r")).user_name == "demo"
        r = await cloud.client.delete("/identity/v3/auth/tokens", headers={
            "X-Auth-Token": admin, "X-Subject-Token": victim})
        assert r.status_code == 204
        # the fanout is delivered asynchronously; give the consumer a moment
        import asyncio

        for _ in range(50):
            if not cache._cache:
                break
            await asyncio.sleep(0.01)
        with pytest.raises((NotFound, Unauthorized)):
            await cache.validate_context(victim, "r")
    finally:
        await transport.close()
