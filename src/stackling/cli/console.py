"""The console proxy as a component of ``stackling up``, mounted at ``/console`` (Nova's
novncproxy + serialproxy): websockets with a one-time token, to the VM's console socket
that the instance's agent names over the bus."""

from __future__ import annotations

from starlette.types import ASGIApp

from stackling.cli.component import Component, Runtime
from stackling.compute.console.proxy import create_app
from stackling.compute.console.tokens import ConsoleAuth, Grant, load_secret
from stackling.compute.rpcapi import ComputeAgentAPI


class ConsoleComponent(Component):
    name = "console"
    prefix = "/console"
    service_type = "compute-console"
    service_name = "nova-novncproxy"
    description = "Remote console proxy (stackling)"

    def __init__(self) -> None:
        self.started = False

    async def start(self, runtime: Runtime) -> ASGIApp:
        config = runtime.config
        auth = ConsoleAuth(load_secret(config.data_dir), config.console.token_ttl)
        agents = ComputeAgentAPI(runtime.bus)

        async def locate(grant: Grant, kind: str) -> str:
            return await agents.get_console_connect(grant.host, grant.instance_uuid, kind)

        self.started = True
        return create_app(auth, locate)

    async def health(self) -> str:
        return "ok" if self.started else "not started"
