"""The network service object: the database, the revision counter and the agents' fanout.

Every write goes through :meth:`NetworkService.write`: the transaction first bumps the one
``net_revision`` row (so writers run one after another on every backend, which is what
keeps IPAM, quota counts and the lazily created default security group race-free), then
does its work; after the commit the agents are told, coalesced over
``network.notify_delay`` seconds, to fetch their :class:`~stackling.network.rpcapi.HostState`
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from stackling.bus import Transport
from stackling.common.config import Config, NetworkConfig
from stackling.common.context import RequestContext
from stackling.common.errors import Conflict
from stackling.db.engine import create_engine, session_factory
from stackling.db.migrate import upgrade
from stackling.db.store import Store
from stackling.network.models import Revision
from stackling.network.policies import default_rules
from stackling.network.rpcapi import AGENTS_FANOUT, HostStateChanged
from stackling.web.policy import PolicyEnforcer

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSION_TABLE = "alembic_version_network"
LOG = logging.getLogger(__name__)


class NetworkService:
    def __init__(self, config: Config, bus: Transport | None,
                 engine: AsyncEngine | None = None) -> None:
        self.config = config
        self.engine = engine or create_engine(config.database_url("network"),
                                              echo=config.database.echo)
        self.store = Store(session_factory(self.engine))
        self.bus = bus
        self.revision = 0
        self._notify_task: asyncio.Task[None] | None = None
        self._pending_hosts: set[str] | None = set()
        self._closed = False
        self.enforcer = PolicyEnforcer(default_rules(),
                                       config.network.policy_file or config.policy_file)

    def allowed(self, ctx: RequestContext, rule: str, project_id: str | None = None) -> bool:
        """Whether ``rule`` lets the caller act on a resource of ``project_id`` (default:
        the caller's own project)."""
        target = {"project_id": project_id if project_id is not None else ctx.project_id,
                  "tenant_id": project_id if project_id is not None else ctx.project_id}
        result: bool = self.enforcer.enforce(rule, target, ctx.credentials())
        return result

    @property
    def conf(self) -> NetworkConfig:
        return self.config.network

    async def start(self) -> None:
        await upgrade(self.engine, MIGRATIONS, VERSION_TABLE)
        async with self.store.read() as session:
            row = await session.get(Revision, 1)
        if row is None:
            with contextlib.suppress(Conflict):
                async with self.store.write() as session:
                    session.add(Revision(id=1, value=0))
        async with self.store.read() as session:
            row = await session.get(Revision, 1)
            self.revision = row.value if row else 0

    async def close(self) -> None:
        self._closed = True
        task = self._notify_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def write(self, conflict: str | None = None, *,
                    notify: bool = True) -> AsyncIterator[AsyncSession]:
        """A write transaction, serialised behind the revision row (see the module doc)."""
        async with self.store.write(conflict) as session:
            await session.execute(update(Revision).where(Revision.id == 1)
                                  .values(value=Revision.value + 1)
                                  .execution_options(synchronize_session=False))
            yield session
            value = (await session.execute(select(Revision.value).where(
                Revision.id == 1))).scalar_one()
        self.revision = max(self.revision, int(value))
        if notify:
            self.changed()

    async def current_revision(self) -> int:
        async with self.store.read() as session:
            value = (await session.execute(select(Revision.value).where(
                Revision.id == 1))).scalar_one_or_none()
        return int(value or 0)

    # -- telling the agents ---------------------------------------------------------------
    def changed(self, hosts: list[str] | None = None) -> None:
        """Something the data plane realises changed: fan out ``HostStateChanged`` soon."""
        if self.bus is None or self._closed:
            return
        if hosts is None:
            self._pending_hosts = None
        elif self._pending_hosts is not None:
            self._pending_hosts.update(hosts)
        if self._notify_task is None or self._notify_task.done():
            self._notify_task = asyncio.create_task(self._notify(), name="network notify")

    async def _notify(self) -> None:
        await asyncio.sleep(self.conf.notify_delay)
        hosts, self._pending_hosts = self._pending_hosts, set()
        if self.bus is None:
            return
        try:
            await self.bus.fanout(AGENTS_FANOUT, HostStateChanged(
                revision=self.revision, hosts=sorted(hosts or [])))
        except Exception:  # agents reconcile on their own schedule too
            LOG.warning("could not announce network state revision %s", self.revision,
                        exc_info=True)
