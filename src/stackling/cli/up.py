"""``stackling up``: compose every service into one process on one port, and run it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from stackling.bus import Transport, create_transport
from stackling.bus.url import redact_url
from stackling.cli import cloudsyaml, service_users
from stackling.cli.component import Component, Runtime
from stackling.cli.components import COMPONENTS
from stackling.clients.identity import (
    ServiceCredentials,
    announce_revocation,
    follow_revocations,
)
from stackling.clients.local import LocalClient, LocalTransport
from stackling.clients.session import ServiceSession
from stackling.common import heap
from stackling.common.config import Config
from stackling.common.ids import new_secret
from stackling.common.logging import configure_logging
from stackling.identity.api.app import create_app as create_identity_app
from stackling.identity.api.fastpath import lanes as identity_lanes
from stackling.identity.service.bootstrap import Account, CatalogEntry, bootstrap
from stackling.identity.service.identity import Identity
from stackling.network.dataplane import missing_tools as dataplane_missing_tools
from stackling.web.fastlane import FastLane
from stackling.web.metrics import metrics_app
from stackling.web.protocol import CoalescingHttpToolsProtocol
from stackling.web.responses import JSONResponse

UNAVAILABLE: dict[tuple[str, str], str] = {}


def say(message: str) -> None:
    print(f"stackling: {message}", file=sys.stderr, flush=True)


def qemu_missing_tools() -> list[str]:
    return [tool for tool in ("qemu-system-x86_64", "qemu-img") if shutil.which(tool) is None]


def resolve_defaults(config: Config) -> Config:
    """``stackling up`` without ``--virt``/``--dataplane`` (nor a config file or environment
    saying them) gives the real thing when this machine can: QEMU when it is installed, the
    Linux bridge data plane when running as root with ``ip``, ``nft`` and ``dnsmasq``; the
    fake driver and the no-op data plane otherwise. Code that builds a :class:`Config`
    itself (tests, benchmarks) keeps the model's defaults, fake and noop."""
    chosen: dict[str, str] = {}
    if "virt" not in config.model_fields_set:
        chosen["virt"] = "fake" if qemu_missing_tools() else "qemu"
    if "dataplane" not in config.model_fields_set:
        chosen["dataplane"] = "noop" if dataplane_missing_tools() else "linuxbridge"
    if not chosen:
        return config
    say("using " + ", ".join(f"--{name} {value}" for name, value in chosen.items()) +
        " (found on this machine; pass the flags to choose)")
    return config.model_copy(update=chosen)


def check_choices(config: Config) -> str | None:
    for (name, value), message in UNAVAILABLE.items():
        if getattr(config, name) == value:
            return message
    if config.virt == "qemu" and (missing_qemu := qemu_missing_tools()):
        return (f"--virt qemu needs {', '.join(missing_qemu)} (apt-get install "
                "qemu-system-x86 qemu-utils); or use --virt fake")
    if config.dataplane == "linuxbridge" and (missing := dataplane_missing_tools()):
        return (f"--dataplane linuxbridge needs {', '.join(missing)} (apt-get install "
                "iproute2 nftables dnsmasq-base; run as root); or use --dataplane noop")
    return None


def components_for(config: Config) -> list[Component]:
    return [cls() for cls in COMPONENTS]


def catalog_for(config: Config, components: list[Component]) -> list[CatalogEntry]:
    base = config.public_url()
    return [CatalogEntry("identity", "keystone", f"{base}/identity", "Identity (stackling)"),
            *(CatalogEntry(c.service_type, c.service_name, c.catalog_url(base), c.description)
              for c in components),
            *(CatalogEntry(kind, name, c.catalog_url(base), c.description)
              for c in components for kind, name in c.catalog_aliases)]


async def _identity_health(identity: Identity) -> str:
    try:
        async with identity.store.read() as session:
            await session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # report, don't crash the health endpoint
        return f"error: {type(exc).__name__}"


async def _component_health(component: Component) -> str:
    try:
        return await component.health()
    except Exception as exc:  # report, don't crash the health endpoint
        return f"error: {type(exc).__name__}"


def build_root_app(identity: Identity, config: Config,
                   mounted: list[tuple[Component, ASGIApp]] | None = None) -> ASGIApp:
    mounted = mounted or []
    identity_app = create_identity_app(identity, config.identity.policy_file or
                                       config.policy_file)

    async def health(request: Request) -> JSONResponse:
        services = {"identity": await _identity_health(identity)}
        for component, _ in mounted:
            services[component.name] = await _component_health(component)
        ok = all(v == "ok" for v in services.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "services": services},
                            status_code=200 if ok else 503)

    async def index(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        services = {"identity": f"{base}/identity"}
        services.update({c.name: f"{base}{c.prefix}" for c, _ in mounted})
        return JSONResponse({"stackling": {"services": services}})

    root = Starlette(routes=[
        Route("/", index),
        Route("/healthz", health),
        Mount("/metrics", metrics_app()),
        Mount("/identity", identity_app),
        *(Mount(c.prefix, app) for c, app in mounted),
    ])
    return FastLane(root, identity_lanes("/identity", identity, identity_app.state.enforcer))


@dataclass
class Prepared:
    identity: Identity
    components: list[Component]
    service_users: dict[str, ServiceCredentials]


async def prepare(config: Config, components: list[Component] | None = None) -> Identity:
    """Migrate, bootstrap and write clouds.yaml. Returns the started identity service."""
    return (await prepare_all(config, components or [])).identity


async def prepare_all(config: Config, components: list[Component], *,
                      all_service_users: bool = False) -> Prepared:
    """Identity first: migrate, bootstrap the catalog, admin/demo and the service users of
    ``components`` (of every component with ``all_service_users``: ``stackling serve
    identity``, whose other services run elsewhere), write clouds.yaml."""
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    say(f"data dir {config.data_dir}")
    identity = Identity(config)
    say("identity: migrating database")
    await identity.start()
    clouds = config.data_dir / "clouds.yaml"
    passwords = cloudsyaml.read_passwords(clouds)
    fresh = passwords is None
    if passwords is None:
        passwords = {"admin": new_secret(18), "demo": new_secret(18)}
    users = [c.service_user for c in components if c.service_user]
    if all_service_users:
        users = [u for u in (cls.service_user for cls in COMPONENTS) if u]
    if not config.metadata.shared_secret:
        # the metadata proxy (network agent) and the metadata service share it; generated
        # once and kept in the data dir (mode 0600), never logged
        generated, _ = service_users.load_or_create(config.data_dir / "metadata-secret.yaml",
                                                    ["shared_secret"])
        config.metadata.shared_secret = generated["shared_secret"]
    service_passwords, created = service_users.load_or_create(
        config.data_dir / "service-users.yaml", users)
    say("identity: bootstrapping region, domain, projects, users, catalog"
        if fresh else "identity: reusing existing state")
    accounts = [
        Account("admin", "admin", "admin", passwords["admin"] if fresh else None, system=True),
        Account("demo", "demo", "member", passwords["demo"] if fresh else None),
    ]
    for user in users:
        new = service_passwords[user] if user in created else None
        accounts.append(Account(user, "service", "admin", new))
        accounts.append(Account(user, "service", "service", None))
    await bootstrap(identity.store, identity.hasher, region=config.region,
                    catalog=catalog_for(config, components), accounts=accounts)
    cloudsyaml.write(clouds, f"{config.public_url()}/identity", config.region, passwords)
    creds = {user: ServiceCredentials(user, service_passwords[user]) for user in users}
    return Prepared(identity, components, creds)


async def start_bus(config: Config, identity: Identity, stack: AsyncExitStack) -> Transport:
    """Connect the message bus (in-process, or RabbitMQ in split deployments) and let
    identity announce revocations on it, so other processes' token caches drop them."""
    bus = create_transport(config.bus.url, call_timeout=config.bus.call_timeout)
    say(f"bus: {redact_url(config.bus.url)}")
    await bus.start()
    stack.push_async_callback(bus.close)
    identity.revocations.listeners.append(functools.partial(announce_revocation, bus))
    # other identity processes' revocations: drop our caches at once, not after cache_ttl
    await follow_revocations(bus, identity.store.changed)
    return bus


async def start_components(prepared: Prepared, config: Config, bus: Transport,
                           stack: AsyncExitStack, *, api_only: bool = False,
                           http: httpx.AsyncClient | None = None,
                           ) -> list[tuple[Component, ASGIApp]]:
    """Start each component (``api_only``: without this host's agents, as ``stackling
    serve`` does; ``http``: the client their calls to each other go through)."""
    runtime = Runtime(config=config, bus=bus, validator=prepared.identity,
                      identity_url=f"{config.public_url()}/identity", stack=stack,
                      service_users=prepared.service_users, http=http)
    mounted = []
    for component in prepared.components:
        say(f"{component.name}: starting")
        start = component.start_api if api_only else component.start
        mounted.append((component, await start(runtime)))
    return mounted


def _write_runfile(config: Config) -> Path:
    runfile = config.data_dir / "run.json"
    runfile.write_text(json.dumps({"pid": os.getpid(), "url": config.public_url(),
                                   "host": config.api.host, "port": config.api.port}))
    return runfile


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown, which would kill the
    process before our own cleanup runs; here a signal only asks for a clean stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, self._stop, sig)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    def _stop(self, sig: int) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def bind(config: Config) -> socket.socket:
    """Take the API port before anything else starts, so a busy port is a clear error
    rather than a server that bootstraps and then dies."""
    family = socket.AF_INET6 if ":" in config.api.host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on sockets that say they are TCP,
    # and without it every kept-alive response waits ~40 ms on the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((config.api.host, config.api.port))
    except OSError as exc:
        sock.close()
        raise PortUnavailable(f"cannot listen on {config.api.host}:{config.api.port}: "
                              f"{exc.strerror} (is another stackling running? try --port)"
                              ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class PortUnavailable(Exception):
    pass


def bind_or_say(config: Config) -> socket.socket | None:
    try:
        return bind(config)
    except PortUnavailable as exc:
        say(str(exc))
        return None


async def serve_app(app: ASGIApp, config: Config, sock: socket.socket) -> None:
    server = _Server(uvicorn.Config(
        # X-Forwarded-* is read where URLs are built (stackling.web.urls), not rewritten here
        app, log_config=None, access_log=False, lifespan="off", server_header=False,
        proxy_headers=False, http=CoalescingHttpToolsProtocol,
    ))
    await server.serve(sockets=[sock])


async def run_up(config: Config) -> int:
    configure_logging(config.log.level, config.log.json_format)
    config = resolve_defaults(config)
    problem = check_choices(config)
    if problem:
        say(problem)
        return 2
    sock = bind_or_say(config)
    if sock is None:
        return 1
    async with AsyncExitStack() as stack:
        stack.callback(sock.close)
        prepared = await prepare_all(config, components_for(config))
        identity = prepared.identity
        stack.push_async_callback(identity.close)
        bus = await start_bus(config, identity, stack)
        # the services' calls to each other reach this process's app without a socket
        local = LocalTransport(config.public_url())
        http = LocalClient(local, timeout=30.0)
        stack.push_async_callback(http.aclose)
        mounted = await start_components(prepared, config, bus, stack, http=http)
        app = build_root_app(identity, config, mounted)
        local.attach(app)
        heap.settle()
        runfile = _write_runfile(config)
        stack.callback(runfile.unlink, missing_ok=True)
        clouds = config.data_dir / "clouds.yaml"
        prefixes = ", ".join(["/identity", *(c.prefix for c, _ in mounted)])
        say(f"serving on {config.public_url()} ({prefixes})")
        print(f"export OS_CLIENT_CONFIG_FILE={clouds} OS_CLOUD=stackling", flush=True)
        await serve_app(app, config, sock)
    say("stopped")
    return 0


async def run_serve(config: Config, services: list[str]) -> int:
    """Split deployment: the APIs of ``services`` (and their control-plane workers, not this
    host's agents) on one port. With identity among them, identity runs in process and
    bootstraps (every service user, the catalog of what this process serves); without,
    the process authenticates to ``[auth] identity_url`` and registers its own catalog
    entries at ``[api] public_url``."""
    from stackling.cli import split

    configure_logging(config.log.level, config.log.json_format)
    by_name = {cls.name: cls for cls in COMPONENTS}
    components = [by_name[name]() for name in services if name != "identity"]
    sock = bind_or_say(config)
    if sock is None:
        return 1
    try:
        async with AsyncExitStack() as stack:
            stack.callback(sock.close)
            if "identity" in services:
                prepared = await prepare_all(config, components, all_service_users=True)
                stack.push_async_callback(prepared.identity.close)
                bus = await start_bus(config, prepared.identity, stack)
                mounted = await start_components(prepared, config, bus, stack, api_only=True)
                app = build_root_app(prepared.identity, config, mounted)
            else:
                bus = create_transport(config.bus.url, call_timeout=config.bus.call_timeout)
                say(f"bus: {redact_url(config.bus.url)}")
                await bus.start()
                stack.push_async_callback(bus.close)
                runtime = await split.split_runtime(config, bus, components, stack)
                mounted = []
                for component in components:
                    say(f"{component.name}: starting")
                    mounted.append((component, await component.start_api(runtime)))
                    user = component.service_user
                    assert user is not None
                    session = ServiceSession(runtime.identity_url, runtime.service_users[user],
                                             region=config.region)
                    stack.push_async_callback(session.close)
                    await split.register_catalog(session, config.region, split.catalog_entries(
                        component, config.public_url()))
                app = split.build_split_app(mounted)
            prefixes = ", ".join(
                (["/identity"] if "identity" in services else []) + [c.prefix for c, _ in mounted])
            say(f"serving on {config.public_url()} ({prefixes})")
            heap.settle()
            await serve_app(app, config, sock)
    except split.SplitError as exc:
        say(str(exc))
        return 2
    say("stopped")
    return 0
