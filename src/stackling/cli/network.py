"""The network service as a component of ``stackling up``: the Neutron v2.0 API, the RPC
server its agents talk to (topic ``network``), this node's network agent (``--dataplane``),
and on a first start the devstack-like topology: an external ``public`` network (flat, on
``network.public_cidr``), and for the demo project ``private`` + ``private-subnet`` +
``router1`` with its gateway on public; default security groups for admin and demo."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
from sqlalchemy import text
from starlette.types import ASGIApp

from stackling.cli.component import Component, Runtime
from stackling.clients.compute import ComputeClient
from stackling.clients.session import ServiceSession
from stackling.common.config import Config
from stackling.common.context import RequestContext
from stackling.network.agent import start_agent
from stackling.network.api.app import create_app
from stackling.network.server import NetworkServer
from stackling.network.service import networks, routers, secgroups, subnets
from stackling.network.service.core import NetworkService

LOG = logging.getLogger(__name__)


async def project_ids(session: ServiceSession, names: list[str],
                      attempts: int = 120) -> dict[str, str]:
    """Project name -> id from identity (retried while the API is not serving yet)."""
    for attempt in range(attempts):
        try:
            out: dict[str, str] = {}
            for name in names:
                response = await session.request(
                    "GET", f"{session.identity_url}/v3/projects", params={"name": name})
                if response.status_code != 200:
                    raise RuntimeError(f"identity answered {response.status_code}")
                found = response.json().get("projects", [])
                if found:
                    out[name] = str(found[0]["id"])
            return out
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    return {}


def _ctx(project_id: str, admin: bool) -> RequestContext:
    return RequestContext(request_id="req-bootstrap", user_id="stackling-bootstrap",
                          project_id=project_id,
                          roles=("admin", "member", "reader") if admin else
                          ("member", "reader"))


async def bootstrap(svc: NetworkService, admin_project: str, demo_project: str | None) -> None:
    """Idempotent: what exists (by name) is kept."""
    conf = svc.conf
    admin = _ctx(admin_project, admin=True)
    existing = {n["name"]: n for n in await networks.list_networks(svc, admin)}
    public = existing.get("public")
    if public is None:
        body: dict[str, Any] = {
            "name": "public", "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": conf.public_physical_network,
            "description": "external network (host-only range)"}
        public = (await networks.create_many(svc, admin, [body]))[0]
        subnet: dict[str, Any] = {"network_id": public["id"], "name": "public-subnet",
                                  "cidr": conf.public_cidr, "enable_dhcp": False,
                                  "gateway_ip": conf.public_gateway}
        if conf.public_pool is not None:
            subnet["allocation_pools"] = [{"start": conf.public_pool[0],
                                           "end": conf.public_pool[1]}]
        await subnets.create_many(svc, admin, [subnet])
    await secgroups.ensure_default_outside(svc, admin_project)
    if demo_project is None:
        return
    demo = _ctx(demo_project, admin=False)
    await secgroups.ensure_default_outside(svc, demo_project)
    mine = {n["name"]: n for n in await networks.list_networks(svc, demo)
            if n["project_id"] == demo_project}
    if "private" in mine:
        return
    private = (await networks.create_many(svc, demo, [{"name": "private"}]))[0]
    sub = (await subnets.create_many(svc, demo, [{
        "network_id": private["id"], "name": "private-subnet", "ip_version": 4,
        "cidr": conf.private_cidr}]))[0]
    router = await routers.create(svc, demo, {
        "name": "router1", "external_gateway_info": {"network_id": public["id"]}})
    await routers.add_interface(svc, demo, router["id"], {"subnet_id": sub["id"]})


class NetworkComponent(Component):
    name = "network"
    prefix = "/network"
    service_type = "network"
    service_name = "neutron"
    description = "Network (stackling)"
    service_user = "neutron"
    node_roles = ("network-agent",)

    def __init__(self, http: httpx.AsyncClient | None = None, *, agent: bool = True) -> None:
        """``http``: the client for REST calls to other services (tests pass one that
        reaches the in-process app). ``agent``: run this node's network agent."""
        self.http = http
        self.run_agent = agent
        self.svc: NetworkService | None = None
        self.server: NetworkServer | None = None
        self.bootstrapped = asyncio.Event()

    async def start(self, runtime: Runtime) -> ASGIApp:
        config = runtime.config
        session = ServiceSession(runtime.identity_url, runtime.service_users[self.service_user],
                                 self.http or runtime.http, region=config.region)
        runtime.stack.push_async_callback(session.close)
        svc = NetworkService(config, runtime.bus)
        await svc.start()
        runtime.stack.push_async_callback(svc.close)
        self.svc = svc
        server = NetworkServer(svc, runtime.bus, ComputeClient(session))
        await server.start()
        runtime.stack.push_async_callback(server.stop)
        self.server = server
        if config.network.bootstrap:
            task = asyncio.create_task(self._bootstrap(svc, session, config))
        else:
            self.bootstrapped.set()
            task = None
        if self.run_agent:
            agent_task = asyncio.create_task(self._agent(runtime))

            async def stop_agent() -> None:
                agent_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    agent = await agent_task
                    await agent.stop()

            runtime.stack.push_async_callback(stop_agent)

        async def stop() -> None:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

        runtime.stack.push_async_callback(stop)
        return create_app(svc, runtime.validator)

    async def start_api(self, runtime: Runtime) -> ASGIApp:
        """The API and the RPC server its agents talk to (``stackling serve network``)."""
        self.run_agent = False
        return await self.start(runtime)

    async def start_role(self, role: str, runtime: Runtime) -> None:
        """This host's network agent over ``--dataplane`` (``stackling node --roles
        network-agent``): it talks to the network server over the bus only."""
        if role != "network-agent":
            await super().start_role(role, runtime)
        agent = await start_agent(runtime.bus, None, None, runtime.config.dataplane,
                                  runtime.config)
        runtime.stack.push_async_callback(agent.stop)

    async def _agent(self, runtime: Runtime) -> Any:
        await self.bootstrapped.wait()
        return await start_agent(runtime.bus, None, None, runtime.config.dataplane,
                                 runtime.config)

    async def _bootstrap(self, svc: NetworkService, session: ServiceSession,
                         config: Config) -> None:
        try:
            ids = await project_ids(session, ["admin", "demo"])
            if "admin" in ids:
                await bootstrap(svc, ids["admin"], ids.get("demo"))
        except Exception:
            LOG.exception("network bootstrap failed (public/private networks not created)")
        finally:
            self.bootstrapped.set()

    async def health(self) -> str:
        if self.svc is None:
            return "not started"
        async with self.svc.store.read() as session:
            await session.execute(text("SELECT 1"))
        return "ok"
