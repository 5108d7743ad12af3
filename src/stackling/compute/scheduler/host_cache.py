"""The scheduler's in-memory view of the compute hosts (Nova's HostManager, small).

Reading every resource provider, inventory, compute node and service for each request cost
the scheduler tens of milliseconds per thousand hosts. Instead :class:`HostCache` keeps
:class:`~stackling.compute.scheduler.filters.HostState` for every host and:

- reloads everything (plain rows, see :func:`placement.provider_usages`) when it is older
  than ``max_age`` seconds, or than 50 times the last reload took (so reloads take at most
  2 % of the scheduler's time, however many hosts) -- in the background, the scheduler keeps
  using the old view meanwhile -- or when asked to (:meth:`refresh`, before a request is
  declared unplaceable);
- adds the scheduler's own claims to the providers it holds (the claim keeps each
  snapshot's generation exact, see :func:`placement.claim_in`);
- re-reads the one host a request is about to claim on (:meth:`verify`): its service
  (disabled, forced down, heartbeat) and, when the request names a zone, its zone.

Correctness never rests on the cache: the claim in the database is the serialization point
(a stale snapshot only costs a locked claim), the chosen host is verified, and "no valid
host" is only answered after a fresh reload. A stale view can only make the choice among
fitting hosts less even for up to ``max_age`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.timeutils import as_aware, utcnow
from stackling.compute.models import ComputeNode, Service
from stackling.compute.scheduler.filters import HostState
from stackling.compute.service import hosts, placement
from stackling.compute.service.compute import ComputeService

log = logging.getLogger("stackling.compute.scheduler")


class HostCache:
    def __init__(self, svc: ComputeService, max_age: float) -> None:
        self.svc = svc
        self.max_age = max_age
        self.hosts: list[HostState] = []
        self.by_host: dict[str, list[HostState]] = {}
        self.loaded_at: float | None = None
        self.load_seconds = 0.0
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    async def current(self) -> list[HostState]:
        """The hosts as last seen; loads them on first use, reloads in the background when
        they are older than ``max_age``."""
        if self.loaded_at is None:
            await self.refresh()
        elif (time.monotonic() - self.loaded_at > max(self.max_age, 50 * self.load_seconds)
              and (self._background is None or self._background.done())):
            self._background = asyncio.create_task(self._refresh_quietly())
        return self.hosts

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:  # the next request tries again
            log.warning("refreshing the scheduler's host view failed: %s", exc)

    async def refresh(self) -> None:
        """Reload every host from the database (one reload at a time)."""
        started = time.monotonic()
        async with self._lock:
            if self.loaded_at is not None and self.loaded_at >= started:
                return  # someone reloaded while we waited
            began = time.monotonic()
            self._swap(await self._load())
            self.loaded_at = began
            self.load_seconds = time.monotonic() - began
        log.debug("scheduler host view: %d hosts in %.1f ms", len(self.hosts),
                  1000 * self.load_seconds)

    async def _load(self) -> list[HostState]:
        conf = self.svc.conf
        now = utcnow()
        async with self.svc.store.read() as session:
            providers = await placement.provider_usages(session)
            nodes = {name: host for name, host in (await session.execute(select(
                ComputeNode.hypervisor_hostname, ComputeNode.host))).all()}
            services = {row[0]: row[1:] for row in (await session.execute(select(
                Service.host, Service.disabled, Service.forced_down, Service.last_seen_up)
                .where(Service.binary == hosts.COMPUTE_BINARY))).all()}
            zones = await hosts.host_zones(session, conf.default_availability_zone)
        out = []
        down_time = conf.service_down_time
        for i, p in enumerate(providers):
            if i and not i % placement.YIELD_EVERY:
                await asyncio.sleep(0)  # let requests run while ten thousand hosts load
            host = nodes.get(p.name)
            if host is None:
                continue
            service = services.get(host)
            if service is None:
                up, disabled = False, True
            else:
                disabled, forced_down, seen = service
                up = not forced_down and seen is not None and (
                    now - as_aware(seen)).total_seconds() <= down_time
            out.append(HostState(
                host=host, node=p.name, zone=zones.get(host, conf.default_availability_zone),
                up=up, disabled=bool(disabled), provider=p))
        return out

    def _swap(self, states: list[HostState]) -> None:
        by_host: dict[str, list[HostState]] = {}
        for h in states:
            by_host.setdefault(h.host, []).append(h)
        self.hosts, self.by_host = states, by_host

    def candidates(self, requested_host: str | None, limit: int) -> list[HostState]:
        """The hosts a request may look at: the requested host's nodes, or all of them --
        or, with more than ``limit`` hosts, a walk from a random place that the caller
        stops once it has ``limit`` that pass (placement's ``max_placement_results``)."""
        if requested_host:
            return list(self.by_host.get(requested_host, []))
        if len(self.hosts) <= limit:
            return self.hosts
        start = random.randrange(len(self.hosts))  # noqa: S311 - spreading, not secrets
        return self.hosts[start:] + self.hosts[:start]

    async def verify(self, session: AsyncSession, host: HostState, zone: str | None) -> bool:
        """Re-read ``host``'s service (and its zone, when the request names one) in
        ``session`` (the claim's transaction) and update the cached state. True if it still
        takes new servers in ``zone``."""
        conf = self.svc.conf
        service = (await hosts.service_states(session, {host.host})).get(host.host)
        if zone is not None:
            zones = await hosts.host_zones(session, conf.default_availability_zone)
            host.zone = zones.get(host.host, conf.default_availability_zone)
        up = service is not None and hosts.is_up(service, conf.service_down_time)
        disabled = service is None or service.disabled
        if (up, disabled) != (host.up, host.disabled):
            host.up, host.disabled = up, disabled
            host.provider.changed()  # rankings that hold this host read it again
        return host.up and not host.disabled and (zone is None or host.zone == zone)

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._background
