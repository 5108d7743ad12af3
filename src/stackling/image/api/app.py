"""The image ASGI app (mounted at ``/image`` in the all-in-one cloud)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from stackling.image.api import data, images, info, members, metadefs, schemas, tasks, versions
from stackling.image.policies import default_rules
from stackling.image.service.glance import ImageService
from stackling.web.app import create_service_app
from stackling.web.auth import TokenValidator
from stackling.web.errors import glance_error
from stackling.web.policy import PolicyEnforcer

ROUTERS = [versions.router, images.router, data.router, members.router, schemas.router,
           info.router, tasks.router, metadefs.router]


def create_app(svc: ImageService, validator: TokenValidator, policy_file: Path | None = None
               ) -> FastAPI:
    enforcer = PolicyEnforcer(default_rules(), policy_file)
    return create_service_app(
        "image", ROUTERS, formatter=glance_error, validator=validator,
        max_body_bytes=svc.config.api.max_body_bytes,
        state={"images": svc, "enforcer": enforcer},
        body_limit_exempt=data.streams_body)
