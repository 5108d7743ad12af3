"""``stackling up``: compose every service into one process on one port, and run it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from stackling.bus import Transport, create_transport
from stackling.bus.url import redact_url
from stackling.cli import cloudsyaml
from stackling.clients.identity import announce_revocation, follow_revocations
from stackling.common.config import Config
from stackling.common.ids import new_secret
from stackling.common.logging import configure_logging
from stackling.identity.api.app import create_app as create_identity_app
from stackling.identity.service.bootstrap import Account, CatalogEntry, bootstrap
from stackling.identity.service.identity import Identity
from stackling.web.metrics import metrics_app

UNAVAILABLE = {
    ("virt", "qemu"): "--virt qemu: the QEMU driver is not in this release yet; use --virt fake",
    ("dataplane", "linuxbridge"): "--dataplane linuxbridge: the Linux bridge data plane is not "
                                  "in this release yet; use --dataplane noop",
}


def say(message: str) -> None:
    print(f"stackling: {message}", file=sys.stderr, flush=True)


def check_choices(config: Config) -> str | None:
    for (name, value), message in UNAVAILABLE.items():
        if getattr(config, name) == value:
            return message
    return None


def catalog_for(config: Config) -> list[CatalogEntry]:
    base = config.public_url()
    return [CatalogEntry("identity", "keystone", f"{base}/identity", "Identity (stackling)")]


async def _health(identity: Identity) -> dict[str, str]:
    from sqlalchemy import text

    try:
        async with identity.store.read() as session:
            await session.execute(text("SELECT 1"))
        return {"identity": "ok"}
    except Exception as exc:  # report, don't crash the health endpoint
        return {"identity": f"error: {type(exc).__name__}"}


def build_root_app(identity: Identity, config: Config) -> Starlette:
    identity_app = create_identity_app(identity, config.identity.policy_file or
                                       config.policy_file)

    async def health(request: Request) -> JSONResponse:
        services = await _health(identity)
        ok = all(v == "ok" for v in services.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "services": services},
                            status_code=200 if ok else 503)

    async def index(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"stackling": {"services": {
            "identity": f"{base}/identity"}}})

    return Starlette(routes=[
        Route("/", index),
        Route("/healthz", health),
        Mount("/metrics", metrics_app()),
        Mount("/identity", identity_app),
    ])


async def prepare(config: Config) -> Identity:
    """Migrate, bootstrap and write clouds.yaml. Returns the started identity service."""
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
    say("identity: bootstrapping region, domain, projects, users, catalog"
        if fresh else "identity: reusing existing state")
    await bootstrap(identity.store, identity.hasher, region=config.region,
                    catalog=catalog_for(config), accounts=[
                        Account("admin", "admin", "admin",
                                passwords["admin"] if fresh else None, system=True),
                        Account("demo", "demo", "member", passwords["demo"] if fresh else None),
                    ])
    cloudsyaml.write(clouds, f"{config.public_url()}/identity", config.region, passwords)
    return identity


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
    sock = socket.socket(family, socket.SOCK_STREAM)
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


async def serve_app(app: Starlette, config: Config, sock: socket.socket) -> None:
    server = _Server(uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", server_header=False,
        proxy_headers=True, forwarded_allow_ips="*",
    ))
    await server.serve(sockets=[sock])


async def run_up(config: Config) -> int:
    configure_logging(config.log.level, config.log.json_format)
    problem = check_choices(config)
    if problem:
        say(problem)
        return 2
    try:
        sock = bind(config)
    except PortUnavailable as exc:
        say(str(exc))
        return 1
    async with AsyncExitStack() as stack:
        stack.callback(sock.close)
        identity = await prepare(config)
        stack.push_async_callback(identity.close)
        await start_bus(config, identity, stack)
        app = build_root_app(identity, config)
        runfile = _write_runfile(config)
        stack.callback(runfile.unlink, missing_ok=True)
        clouds = config.data_dir / "clouds.yaml"
        say(f"serving on {config.public_url()} (identity at /identity)")
        print(f"export OS_CLIENT_CONFIG_FILE={clouds} OS_CLOUD=stackling", flush=True)
        await serve_app(app, config, sock)
    say("stopped")
    return 0


async def run_serve(config: Config, service: str) -> int:
    """Split deployment: one service's API alone (no bootstrap beyond migrations)."""
    configure_logging(config.log.level, config.log.json_format)
    try:
        sock = bind(config)
    except PortUnavailable as exc:
        say(str(exc))
        return 1
    async with AsyncExitStack() as stack:
        stack.callback(sock.close)
        identity = Identity(config)
        stack.push_async_callback(identity.close)
        await identity.start()
        await start_bus(config, identity, stack)
        app = create_identity_app(identity, config.identity.policy_file or config.policy_file)
        say(f"{service} serving on {config.public_url()}")
        await serve_app(Starlette(routes=[Mount("/identity", app)]), config, sock)
    return 0
