"""The metadata service as a component of ``stackling up``, mounted at ``/metadata``: the
network's metadata proxy forwards a guest's ``http://169.254.169.254/...`` requests to
``<public url>/metadata/...`` with the signed ``X-Instance-ID`` headers. Instances are
looked up through the compute conductor over the bus (no database of its own)."""

from __future__ import annotations

import socket

from starlette.types import ASGIApp

from stackling.cli.component import Component, Runtime
from stackling.compute.metadata.app import create_app
from stackling.compute.rpcapi import ConductorAPI, InstanceInfo


class MetadataComponent(Component):
    name = "metadata"
    prefix = "/metadata"
    service_type = "compute-metadata"
    service_name = "nova-metadata"
    description = "Instance metadata (stackling; reached through the metadata proxy)"

    def __init__(self) -> None:
        self.started = False

    async def start(self, runtime: Runtime) -> ASGIApp:
        config = runtime.config
        conductor = ConductorAPI(runtime.bus, config.compute.host or socket.gethostname(),
                                 config.bus.call_timeout)

        async def lookup(uuid: str) -> InstanceInfo | None:
            return await conductor.instance_get(uuid)

        async def set_password(uuid: str, password: str) -> bool | None:
            reply = await conductor.instance_password_set(uuid, password)
            return reply.stored if reply.found else None

        self.started = True
        return create_app(lookup, config.metadata.shared_secret,
                          config.compute.default_availability_zone, set_password)

    async def health(self) -> str:
        return "ok" if self.started else "not started"
