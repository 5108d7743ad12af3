"""The block storage ASGI app (mounted at ``/volume`` in the all-in-one cloud)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from stackling.volume.api import (
    actions,
    admin,
    attachments,
    backups,
    groups,
    qos_messages,
    snapshots,
    transfers,
    types,
    versions,
    volumes,
)
from stackling.volume.api.microversion import MicroversionMiddleware
from stackling.volume.policies import default_rules
from stackling.volume.service.cinder import VolumeService
from stackling.web.app import create_service_app
from stackling.web.auth import TokenValidator
from stackling.web.errors import cinder_error
from stackling.web.policy import PolicyEnforcer

ROUTERS = [versions.router, volumes.router, actions.router, snapshots.router, types.router,
           admin.router, backups.router, transfers.router, attachments.router,
           qos_messages.router, groups.router]


def create_app(svc: VolumeService, validator: TokenValidator | None,
               policy_file: Path | None = None) -> FastAPI:
    app = create_service_app(
        "volume", ROUTERS, formatter=cinder_error, validator=validator,
        service_types=("block-storage", "volumev3", "volume"),
        max_body_bytes=svc.config.api.max_body_bytes,
        state={"volumes": svc, "enforcer": PolicyEnforcer(default_rules(), policy_file)})
    app.add_middleware(MicroversionMiddleware)
    return app
