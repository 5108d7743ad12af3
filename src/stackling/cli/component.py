"""How a service plugs into the all-in-one process (and ``stackling serve``).

Each service (image, compute, ...) provides one :class:`Component`; ``cli/components.py``
lists them explicitly. ``stackling up`` starts identity and the bus first, bootstraps the
catalog entry and service user every component declares, then starts each component and
mounts its ASGI app under its prefix on the shared port.

Split deployments start the parts separately: ``stackling serve <service>`` calls
:meth:`Component.start_api` (the API and the control-plane workers that belong with it),
``stackling node --roles ...`` calls :meth:`Component.start_role` for each of the node's
roles a component declares in :attr:`Component.node_roles` (agents: no API, no port).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import ClassVar

import httpx
from starlette.types import ASGIApp

from stackling.bus import Transport
from stackling.clients.identity import ServiceCredentials
from stackling.common.config import Config
from stackling.web.auth import TokenValidator


@dataclass
class Runtime:
    """What every component gets when it starts."""

    config: Config
    bus: Transport
    validator: TokenValidator  # validates X-Auth-Token (in-process identity in the all-in-one)
    identity_url: str  # public identity root, e.g. http://127.0.0.1:8780/identity
    stack: AsyncExitStack  # register cleanups here; they run in reverse on shutdown
    service_users: dict[str, ServiceCredentials] = field(default_factory=dict)
    # for REST calls to other services; None: each service session opens its own. The
    # all-in-one passes one that reaches its own APIs in process (clients.local).
    http: httpx.AsyncClient | None = None


class Component(ABC):
    name: ClassVar[str]  # "image"
    prefix: ClassVar[str]  # "/image"
    service_type: ClassVar[str]  # catalog type, "image"
    service_name: ClassVar[str]  # catalog name, "glance"
    description: ClassVar[str] = ""
    service_user: ClassVar[str | None] = None  # "glance": created in project "service"
    # more catalog entries at the same URL: (type, name), e.g. ("volumev3", "cinderv3")
    catalog_aliases: ClassVar[tuple[tuple[str, str], ...]] = ()
    # ``stackling node --roles`` names this component runs (e.g. "compute", "network-agent")
    node_roles: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    async def start(self, runtime: Runtime) -> ASGIApp:
        """Migrate, start workers (as tasks registered on ``runtime.stack``), and return the
        ASGI app to mount at :attr:`prefix`. Raise to abort the whole start."""

    async def start_api(self, runtime: Runtime) -> ASGIApp:
        """``stackling serve``: the API and its control-plane workers, without this host's
        agents. Components that have none (:attr:`node_roles` empty) start as in ``up``."""
        if self.node_roles:
            raise NotImplementedError(f"{self.name} does not split its API from its agents")
        return await self.start(runtime)

    async def start_role(self, role: str, runtime: Runtime) -> None:
        """``stackling node``: start one of :attr:`node_roles` (workers registered on
        ``runtime.stack``)."""
        raise NotImplementedError(f"{self.name} has no node role {role!r}")

    @abstractmethod
    async def health(self) -> str:
        """``"ok"``, or a short reason (never a secret)."""

    def catalog_url(self, public_url: str) -> str:
        return f"{public_url}{self.prefix}"
