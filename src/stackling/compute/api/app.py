"""The compute ASGI app (mounted at ``/compute`` in the all-in-one cloud)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from stackling.compute.api import (
    addresses,
    aggregates,
    assisted_snapshots,
    events,
    extensions,
    flavors,
    floating_ips,
    hosts,
    images,
    instance_actions,
    interfaces,
    keypairs,
    networks,
    os_hosts,
    quotas,
    remote_consoles,
    security_groups,
    server_actions,
    server_groups,
    server_meta,
    server_password,
    servers,
    usage,
    versions,
    volume_attachments,
    volumes,
)
from stackling.compute.api.microversion import MicroversionMiddleware
from stackling.compute.policies import default_rules
from stackling.compute.service.compute import ComputeService
from stackling.web.app import create_service_app
from stackling.web.auth import TokenValidator
from stackling.web.errors import nova_error
from stackling.web.policy import PolicyEnforcer

# Starlette tries routers in this order and no two of them share a path, so the busiest
# (servers: every boot, delete and poll) goes first
ROUTERS = [servers.router, server_actions.router, versions.router, flavors.router,
           keypairs.router, server_meta.router, instance_actions.router,
           security_groups.router, floating_ips.router, networks.router,
           hosts.router, quotas.router, server_groups.router,
           aggregates.router, extensions.router,
           os_hosts.router, usage.router, events.router, images.router,
           remote_consoles.router,
           volume_attachments.router, interfaces.router, addresses.router,
           volumes.router, server_password.router, assisted_snapshots.router]


def create_app(svc: ComputeService, validator: TokenValidator | None,
               policy_file: Path | None = None) -> FastAPI:
    app = create_service_app(
        "compute", ROUTERS, formatter=nova_error, validator=validator,
        max_body_bytes=svc.config.api.max_body_bytes,
        state={"compute": svc, "enforcer": PolicyEnforcer(default_rules(), policy_file)})
    app.add_middleware(MicroversionMiddleware)
    return app
