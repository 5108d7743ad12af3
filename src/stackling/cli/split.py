"""What ``stackling serve <service>`` (without identity in the process) and ``stackling node``
share: the service users' passwords copied from the identity node, token validation over
REST with a cache that the bus's revocation fanout clears, and the catalog entries a service
registers for itself at the URL it is reachable at."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from stackling.bus import Transport
from stackling.cli import service_users
from stackling.cli.component import Component, Runtime
from stackling.clients.identity import (
    RemoteTokenValidator,
    ServiceCredentials,
    follow_revocations,
)
from stackling.clients.session import ServiceSession
from stackling.common.config import Config
from stackling.web.auth import CachingValidator
from stackling.web.metrics import metrics_app
from stackling.web.responses import JSONResponse

LOG = logging.getLogger(__name__)
INTERFACES = ("public", "internal", "admin")


class SplitError(Exception):
    """A split node is missing what it needs (said plainly, never with a secret)."""


def identity_url(config: Config) -> str:
    url = config.auth.identity_url
    if not url:
        raise SplitError("set [auth] identity_url (or STACKLING_AUTH__IDENTITY_URL) to the "
                         "identity service's root, e.g. http://controller:8780/identity")
    return url.rstrip("/")


def load_service_users(config: Config, components: list[Component]) -> dict[
        str, ServiceCredentials]:
    """The passwords of ``components``' service users from DATA_DIR/service-users.yaml (the
    identity node writes it; copy it to every node, mode 0600)."""
    path = config.data_dir / "service-users.yaml"
    passwords, _ = service_users.load_or_create(path, [])
    out: dict[str, ServiceCredentials] = {}
    for component in components:
        user = component.service_user
        if user is None:
            continue
        if user not in passwords:
            raise SplitError(f"no password for service user {user!r} in {path}: copy "
                             "service-users.yaml from the identity node's data dir")
        out[user] = ServiceCredentials(user, passwords[user])
    if not config.metadata.shared_secret:
        secret = config.data_dir / "metadata-secret.yaml"
        if secret.exists():
            loaded, _ = service_users.load_or_create(secret, [])
            config.metadata.shared_secret = loaded.get("shared_secret")
    return out


async def split_runtime(config: Config, bus: Transport, components: list[Component],
                        stack: AsyncExitStack) -> Runtime:
    """A :class:`Runtime` whose validator asks identity over REST (as the first component's
    service user) and forgets its cache on every revocation announced on the bus."""
    url = identity_url(config)
    creds = load_service_users(config, components)
    if not creds:
        raise SplitError("no service user to authenticate to identity with")
    remote = RemoteTokenValidator(url, next(iter(creds.values())))
    stack.push_async_callback(remote.close)
    validator = CachingValidator(remote, ttl=config.auth.cache_ttl, size=config.auth.cache_size)
    await follow_revocations(bus, validator.forget_all)
    return Runtime(config=config, bus=bus, validator=validator, identity_url=url,
                   stack=stack, service_users=creds)


@dataclass
class Entry:
    type: str
    name: str
    url: str
    description: str


def catalog_entries(component: Component, public_url: str) -> list[Entry]:
    url = component.catalog_url(public_url)
    return [Entry(component.service_type, component.service_name, url, component.description),
            *(Entry(kind, name, url, component.description)
              for kind, name in component.catalog_aliases)]


async def register_catalog(session: ServiceSession, region: str, entries: list[Entry],
                           attempts: int = 120) -> None:
    """Create or update each entry's service and its public/internal/admin endpoints in
    ``region`` through the identity API (the service user has the admin role). Retried
    while identity is not reachable yet."""
    for attempt in range(attempts):
        try:
            for entry in entries:
                await _register(session, region, entry)
            return
        except Exception as exc:
            if attempt == attempts - 1:
                raise SplitError(f"cannot register the catalog with identity: {exc}") from exc
            LOG.info("catalog registration: identity not ready (%s), retrying",
                     type(exc).__name__)
            await asyncio.sleep(1.0)


def _ok(response: object, what: str) -> None:
    status = getattr(response, "status_code", 0)
    if status not in (200, 201, 204):
        raise RuntimeError(f"{what}: HTTP {status}")


async def _register(session: ServiceSession, region: str, entry: Entry) -> None:
    base = session.identity_url
    r = await session.request("GET", f"{base}/v3/services", params={"type": entry.type})
    _ok(r, "list services")
    services = r.json()["services"]
    if services:
        service_id = str(services[0]["id"])
    else:
        r = await session.request("POST", f"{base}/v3/services", json={"service": {
            "type": entry.type, "name": entry.name, "description": entry.description,
            "enabled": True}})
        _ok(r, "create service")
        service_id = str(r.json()["service"]["id"])
    r = await session.request("GET", f"{base}/v3/endpoints",
                              params={"service_id": service_id, "region_id": region})
    _ok(r, "list endpoints")
    current = {e["interface"]: e for e in r.json()["endpoints"]}
    for interface in INTERFACES:
        endpoint = current.get(interface)
        if endpoint is None:
            r = await session.request("POST", f"{base}/v3/endpoints", json={"endpoint": {
                "service_id": service_id, "interface": interface, "region_id": region,
                "url": entry.url, "enabled": True}})
            _ok(r, "create endpoint")
        elif endpoint["url"] != entry.url:
            r = await session.request("PATCH", f"{base}/v3/endpoints/{endpoint['id']}",
                                      json={"endpoint": {"url": entry.url}})
            _ok(r, "update endpoint")


async def _health(component: Component) -> str:
    try:
        return await component.health()
    except Exception as exc:  # report, don't crash the health endpoint
        return f"error: {type(exc).__name__}"


def build_split_app(mounted: list[tuple[Component, ASGIApp]]) -> ASGIApp:
    """The root of a ``stackling serve`` process without identity: the components' apps
    under their prefixes, ``/healthz``, ``/metrics`` and the index."""

    async def health(request: Request) -> JSONResponse:
        services = {c.name: await _health(c) for c, _ in mounted}
        ok = all(v == "ok" for v in services.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "services": services},
                            status_code=200 if ok else 503)

    async def index(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"stackling": {"services": {
            c.name: f"{base}{c.prefix}" for c, _ in mounted}}})

    return Starlette(routes=[
        Route("/", index),
        Route("/healthz", health),
        Mount("/metrics", metrics_app()),
        *(Mount(c.prefix, app) for c, app in mounted),
    ])
