"""The network server's side of the bus (topic ``network``): what agents ask and report.

- ``GetHostState`` -> the host's whole desired state, from the database;
- ``PortsWired`` -> ports ACTIVE (or DOWN when they failed), and ``network-vif-plugged``
  posted to compute's ``/os-server-external-events`` for compute-owned ports;
- ``AgentHeartbeat`` -> the agents table behind ``/v2.0/agents``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from stackling.bus import Message, Subscription, Transport
from stackling.common.errors import BadRequest
from stackling.network.rpcapi import (
    SERVER_TOPIC,
    AgentHeartbeat,
    GetHostState,
    HostStateReply,
    PortsWired,
)
from stackling.network.service import agents, hoststate
from stackling.network.service.core import NetworkService

LOG = logging.getLogger(__name__)


class EventSink(Protocol):
    async def external_events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ...


class NetworkServer:
    def __init__(self, svc: NetworkService, bus: Transport,
                 compute: EventSink | None = None) -> None:
        self.svc = svc
        self.bus = bus
        self.compute = compute
        self._subscription: Subscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent_events: list[dict[str, Any]] = []  # what reached compute (tests look)

    async def start(self) -> None:
        self._subscription = await self.bus.serve(SERVER_TOPIC, self._handle)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.cancel()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _handle(self, message: Message, context: dict[str, Any]) -> Message | None:
        if isinstance(message, GetHostState):
            state = await hoststate.build(self.svc, message.host, list(message.roles))
            return HostStateReply(state=state)
        if isinstance(message, PortsWired):
            await self.ports_wired(message)
            return None
        if isinstance(message, AgentHeartbeat):
            await agents.heartbeat(self.svc, message.host, list(message.roles),
                                   message.dataplane, message.tunnel_ip,
                                   message.applied_revision)
            return None
        raise BadRequest(f"the network server does not handle {type(message).NAME}")

    async def ports_wired(self, message: PortsWired) -> None:
        changed = await hoststate.ports_wired(self.svc, message.host, list(message.port_ids),
                                              dict(message.failed))
        if changed and self.compute is not None:
            task = asyncio.create_task(self._notify_compute(changed))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _notify_compute(self, changed: list[dict[str, Any]]) -> None:
        events = [{"name": "network-vif-plugged", "server_uuid": c["device_id"],
                   "tag": c["port_id"], "status": c["status"]} for c in changed]
        assert self.compute is not None
        for attempt in range(3):
            try:
                await self.compute.external_events(events)
                self.sent_events.extend(events)
                return
            except Exception as exc:  # compute may be restarting: try a few times
                LOG.warning("network-vif-plugged for %d port(s) not delivered (%s), "
                            "attempt %d", len(events), exc, attempt + 1)
                await asyncio.sleep(1.0 * (attempt + 1))
