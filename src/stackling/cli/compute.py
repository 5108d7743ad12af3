"""The compute service as a component of ``stackling up``: its API, the scheduler, the
conductor and one compute agent for this host, as asyncio tasks on the shared bus."""

from __future__ import annotations

import asyncio
import socket

import httpx
from sqlalchemy import text
from starlette.types import ASGIApp

from stackling.cli.component import Component, Runtime
from stackling.clients.image import ImageClient
from stackling.clients.network import NetworkClient
from stackling.clients.session import ServiceSession
from stackling.compute.agent.manager import ComputeAgent
from stackling.compute.api.app import create_app
from stackling.compute.conductor import Conductor
from stackling.compute.scheduler.manager import Scheduler
from stackling.compute.service.compute import ComputeService
from stackling.compute.virt import DRIVERS, ComputeDriver, FakeDriver, QemuDriver


class ComputeComponent(Component):
    name = "compute"
    prefix = "/compute"
    service_type = "compute"
    service_name = "nova"
    description = "Compute (stackling)"
    service_user = "nova"
    node_roles = ("compute",)

    def __init__(self, http: httpx.AsyncClient | None = None) -> None:
        """``http``: the client for REST calls to other services (tests pass one that
        reaches the in-process app)."""
        self.http = http
        self.svc: ComputeService | None = None
        self.agents: list[ComputeAgent] = []

    def catalog_url(self, public_url: str) -> str:
        return f"{public_url}{self.prefix}/v2.1"

    async def start(self, runtime: Runtime) -> ASGIApp:
        app = await self.start_api(runtime)
        await self.start_role("compute", runtime)
        return app

    def _session(self, runtime: Runtime) -> ServiceSession:
        session = ServiceSession(runtime.identity_url, runtime.service_users[self.service_user],
                                 self.http or runtime.http, region=runtime.config.region)
        runtime.stack.push_async_callback(session.close)
        return session

    async def start_api(self, runtime: Runtime) -> ASGIApp:
        """The API, the scheduler and the conductor (``stackling serve compute``)."""
        config = runtime.config
        conf = config.compute
        session = self._session(runtime)
        svc = ComputeService(config, runtime.bus, ImageClient(session))
        svc.network = NetworkClient(session)
        await svc.start()
        runtime.stack.push_async_callback(svc.close)
        self.svc = svc
        host = conf.host or socket.gethostname()
        conductor = Conductor(svc, runtime.bus, host)
        await conductor.start()
        runtime.stack.push_async_callback(conductor.stop)
        scheduler = Scheduler(svc, runtime.bus, host)
        await scheduler.start()
        runtime.stack.push_async_callback(scheduler.stop)
        return create_app(svc, runtime.validator, conf.policy_file or config.policy_file)

    async def start_role(self, role: str, runtime: Runtime) -> None:
        """This host's compute agent(s) over ``--virt`` (``stackling node --roles compute``):
        they reach the conductor over the bus, images and ports over REST; no database."""
        if role != "compute":
            await super().start_role(role, runtime)
        config = runtime.config
        conf = config.compute
        session = self._session(runtime)
        images = ImageClient(session)
        network = NetworkClient(session)
        host = conf.host or socket.gethostname()
        names = [host] if conf.fake_hosts == 1 else [
            f"{host}-{i:04d}" for i in range(1, conf.fake_hosts + 1)]
        # ``stackling sim`` stretches the heartbeat with the number of hosts; the other
        # periodic reports follow it
        periodic = max(60.0, conf.heartbeat_interval * 6)
        agents: list[ComputeAgent] = []
        for name in names:
            driver: ComputeDriver
            if DRIVERS[config.virt] is QemuDriver:
                driver = QemuDriver(name, config.qemu, config.data_dir, images)
            else:
                driver = FakeDriver(name, vcpus=conf.fake_vcpus, memory_mb=conf.fake_memory_mb,
                                    local_gb=conf.fake_local_gb,
                                    spawn_delay=conf.fake_spawn_delay)
            agents.append(ComputeAgent(name, runtime.bus, driver, images,
                                       heartbeat_interval=conf.heartbeat_interval,
                                       resource_interval=periodic,
                                       power_sync_interval=periodic,
                                       call_timeout=config.bus.call_timeout,
                                       network=network,
                                       vif_plugging_timeout=conf.vif_plugging_timeout,
                                       vif_plugging_is_fatal=conf.vif_plugging_is_fatal,
                                       default_zone=conf.default_availability_zone))
        # a sim's hosts register a few dozen at a time (each start is a few conductor calls)
        for first in range(0, len(agents), 32):
            batch = agents[first:first + 32]
            for agent in batch:  # stop() is safe on an agent whose start failed
                runtime.stack.push_async_callback(agent.stop)
                self.agents.append(agent)
            await asyncio.gather(*(agent.start() for agent in batch))

    async def health(self) -> str:
        if self.svc is None:
            return "not started"
        async with self.svc.store.read() as session:
            await session.execute(text("SELECT 1"))
        return "ok"
