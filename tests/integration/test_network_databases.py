"""The network service on PostgreSQL and MariaDB (private servers): migrations, and IPAM and
quotas under truly parallel transactions (a connection pool, not SQLite's one writer)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackling.common.config import load_config
from stackling.common.context import RequestContext
from stackling.common.errors import StacklingError
from stackling.network.service import networks, ports, quotas, subnets
from stackling.network.service.core import NetworkService
from tests.integration import databases

pytestmark = pytest.mark.integration

ADMIN = RequestContext(user_id="u", project_id="p-admin", roles=("admin", "member", "reader"))
MEMBER = RequestContext(user_id="v", project_id="p-demo", roles=("member", "reader"))


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


async def test_parallel_ports_and_quotas(database_url: str, tmp_path: Path) -> None:
    config = load_config(env={}, overrides={
        "data_dir": str(tmp_path), "database": {"url": database_url}})
    svc = NetworkService(config, None)
    await svc.start()
    try:
        net = (await networks.create_many(svc, ADMIN, [{"name": "n"}]))[0]
        await subnets.create_many(svc, ADMIN, [{
            "network_id": net["id"], "cidr": "10.60.0.0/27", "ip_version": 4,
            "enable_dhcp": False}])

        async def one() -> object:
            try:
                return await ports.create_many(svc, ADMIN, [{"network_id": net["id"]}])
            except StacklingError as exc:
                return exc

        results = await asyncio.gather(*(one() for _ in range(40)))
        made = [r[0] for r in results if isinstance(r, list)]
        failed = [r for r in results if isinstance(r, StacklingError)]
        assert len(made) == 29 and len(failed) == 11
        assert all(getattr(e, "type", "") == "IpAddressGenerationFailure" for e in failed)
        addresses = [p["fixed_ips"][0]["ip_address"] for p in made]
        assert len(set(addresses)) == 29

        await quotas.update(svc, MEMBER.project_id or "", {"network": 3})

        async def mine(i: int) -> object:
            try:
                return await networks.create_many(svc, MEMBER, [{"name": f"q{i}"}])
            except StacklingError as exc:
                return exc

        outcome = await asyncio.gather(*(mine(i) for i in range(10)))
        assert len([o for o in outcome if isinstance(o, list)]) == 3
        owned = [n for n in await networks.list_networks(svc, MEMBER)
                 if n["project_id"] == MEMBER.project_id]
        assert len(owned) == 3
    finally:
        await svc.close()
