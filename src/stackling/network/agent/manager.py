"""The network agent of one host: fetch the desired state, let the data plane realise it,
tell the server which ports are wired.

* ``start()``: subscribe to :data:`AGENTS_FANOUT` first (so no change is missed), then fetch
  and apply the state once before returning. That first apply IS the restart reconcile:
  the data plane rebuilds what is missing and removes its stale objects.
* :class:`HostStateChanged` only marks the agent dirty; one loop fetches and applies, so a
  burst of changes costs one or two fetches (coalesced), never one each.
* While ports are pending (their taps do not exist yet) the loop polls the data plane's
  cheap :meth:`~Dataplane.refresh` every ``tap_poll_interval`` seconds.
* :class:`PortsWired` is cast for ports newly wired or newly failed; a failed cast is
  repeated with the next report. A full resync runs every ``resync_interval`` seconds
  (fanout messages are not durable). Heartbeats every ``heartbeat_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from stackling.bus import Message, Subscription, Transport
from stackling.common.errors import StacklingError
from stackling.network.dataplane import ApplyReport, Dataplane
from stackling.network.rpcapi import (
    AGENTS_FANOUT,
    SERVER_TOPIC,
    AgentHeartbeat,
    GetHostState,
    HostState,
    HostStateChanged,
    HostStateReply,
    PortsWired,
)

log = logging.getLogger("stackling.network.agent")

COALESCE_SECONDS = 0.05


class NetworkAgent:
    def __init__(self, bus: Transport, host: str, roles: list[str], dataplane: Dataplane, *,
                 tunnel_ip: str | None = None, heartbeat_interval: float = 10.0,
                 resync_interval: float = 60.0, tap_poll_interval: float = 0.5,
                 retry_interval: float = 2.0, call_timeout: float | None = None) -> None:
        self.bus = bus
        self.host = host
        self.roles = list(roles)
        self.dataplane = dataplane
        self.tunnel_ip = tunnel_ip
        self.heartbeat_interval = heartbeat_interval
        self.resync_interval = resync_interval
        self.tap_poll_interval = tap_poll_interval
        self.retry_interval = retry_interval
        self.call_timeout = call_timeout
        self.applied_revision = 0
        self.last_report = ApplyReport()
        self.syncs = 0  # how many fetch+apply rounds ran (tests look)
        self._dirty = asyncio.Event()
        self._reported_wired: set[str] = set()
        self._reported_failed: dict[str, str] = {}
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        #: run after the agent stopped (e.g. removing the host bridge it made)
        self.on_stop: list[Callable[[], Awaitable[None]]] = []

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        self._subscription = await self.bus.serve(AGENTS_FANOUT, self._handle, fanout=True)
        try:
            await self.sync()
        except (StacklingError, OSError) as exc:  # the server may not be up yet: retry
            log.warning("network agent %s: first sync failed: %s", self.host, exc)
            self._dirty.set()
        self._tasks.append(asyncio.create_task(self._loop()))
        self._tasks.append(asyncio.create_task(self._heartbeats()))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._subscription is not None:
            with contextlib.suppress(StacklingError):
                await self._subscription.cancel()
            self._subscription = None
        await self.dataplane.close()
        for hook in self.on_stop:
            try:
                await hook()
            except Exception as exc:
                log.warning("network agent %s: stop hook failed: %s", self.host, exc)

    async def _handle(self, message: Message, context: dict[str, Any]) -> None:
        if isinstance(message, HostStateChanged) and (
                not message.hosts or self.host in message.hosts):
            self._dirty.set()

    # -- the work -----------------------------------------------------------------------
    async def fetch(self) -> HostState:
        reply = await self.bus.call(
            SERVER_TOPIC, GetHostState(host=self.host, roles=self.roles,
                                       tunnel_ip=self.tunnel_ip),
            self.call_timeout, returns=HostStateReply)
        return reply.state

    async def sync(self) -> ApplyReport:
        """Fetch the state and apply it now; report what changed."""
        state = await self.fetch()
        report = await self.dataplane.apply(state)
        self.syncs += 1
        self.applied_revision = state.revision
        await self._report(report)
        return report

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_resync = loop.time() + self.resync_interval
        while not self._stopping:
            timeout = max(0.0, next_resync - loop.time())
            if self.last_report.pending:
                timeout = min(timeout, self.tap_poll_interval)
            # asyncio.timeout, not wait_for: 3.11's wait_for loses a cancel that arrives as
            # the event fires, and stop() would wait for this loop forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._dirty.wait()
            if self._stopping:
                return
            try:
                if self._dirty.is_set() or loop.time() >= next_resync:
                    await asyncio.sleep(COALESCE_SECONDS)  # let a burst of changes land
                    self._dirty.clear()
                    next_resync = loop.time() + self.resync_interval
                    await self.sync()
                elif self.last_report.pending:
                    await self._report(await self.dataplane.refresh())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the agent alive; try again shortly
                log.warning("network agent %s: sync failed: %s", self.host, exc)
                self._dirty.set()
                await asyncio.sleep(self.retry_interval)

    async def _report(self, report: ApplyReport) -> None:
        self.last_report = report
        wired = report.wired - self._reported_wired
        failed = {k: v for k, v in report.failed.items() if self._reported_failed.get(k) != v}
        if wired or failed:
            try:
                await self.bus.cast(SERVER_TOPIC, PortsWired(
                    host=self.host, port_ids=sorted(wired), failed=failed))
            except StacklingError as exc:
                log.warning("network agent %s: reporting wired ports failed: %s",
                            self.host, exc)
                return  # told again with the next report
        self._reported_wired = set(report.wired)
        self._reported_failed = dict(report.failed)

    async def _heartbeats(self) -> None:
        while True:
            try:
                await self.bus.cast(SERVER_TOPIC, AgentHeartbeat(
                    host=self.host, roles=self.roles, dataplane=self.dataplane.name,
                    tunnel_ip=self.tunnel_ip, applied_revision=self.applied_revision))
            except StacklingError as exc:
                log.warning("network agent %s: heartbeat failed: %s", self.host, exc)
            await asyncio.sleep(self.heartbeat_interval)
