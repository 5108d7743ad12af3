"""The identity ASGI app (mounted at ``/identity`` in the all-in-one cloud)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from stackling.identity.api import (
    app_creds,
    assignments,
    credentials,
    domain_configs,
    domains,
    ec2,
    endpoint_groups,
    endpoints,
    groups,
    limits,
    oauth1,
    oauth_consumers,
    policies_api,
    projects,
    regions,
    revoke_events,
    roles,
    services,
    tokens,
    trusts,
    users,
    versions,
)
from stackling.identity.policies import default_rules
from stackling.identity.service.identity import Identity
from stackling.web.app import create_service_app
from stackling.web.errors import keystone_error
from stackling.web.policy import PolicyEnforcer

ROUTERS = [versions.router, tokens.router, app_creds.router, credentials.router, ec2.router,
           revoke_events.router]
ROUTERS += [roles.router, assignments.router]
ROUTERS += [regions.router, services.router, endpoints.router, policies_api.router,
            limits.router, endpoint_groups.router, domain_configs.router]
ROUTERS += [domains.router, projects.router, users.router, groups.router]
ROUTERS += [trusts.router, oauth_consumers.router, oauth1.router]


def create_app(svc: Identity, policy_file: Path | None = None) -> FastAPI:
    enforcer = PolicyEnforcer(default_rules(), policy_file)
    return create_service_app(
        "identity", ROUTERS, formatter=keystone_error, validator=svc,
        max_body_bytes=svc.config.api.max_body_bytes,
        state={"identity": svc, "enforcer": enforcer},
    )
