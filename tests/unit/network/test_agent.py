"""The network agent against a fake network server on the memory bus (noop data plane)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from stackling.bus import MemoryBroker, MemoryTransport, Message, Transport
from stackling.common.config import Config
from stackling.network.agent import NetworkAgent, start_agent
from stackling.network.dataplane import ApplyReport, NoopDataplane
from stackling.network.rpcapi import (
    AGENTS_FANOUT,
    SERVER_TOPIC,
    AgentHeartbeat,
    FixedIP,
    GetHostState,
    HostState,
    HostStateChanged,
    HostStateReply,
    PortState,
    PortsWired,
)


def vm_port(pid: str, host: str = "h1") -> PortState:
    return PortState(id=pid, network_id="n1", mac_address="fa:16:3e:00:00:01",
                     fixed_ips=[FixedIP(subnet_id="s1", ip_address="10.0.0.5")],
                     device_owner="compute:nova", device_id="i-" + pid, host=host)


class FakeServer:
    """Answers GetHostState from ``self.ports`` and records what agents cast."""

    def __init__(self) -> None:
        self.ports: list[PortState] = []
        self.revision = 1
        self.fetches: list[GetHostState] = []
        self.wired: list[PortsWired] = []
        self.heartbeats: list[AgentHeartbeat] = []
        self.fail_fetches = 0

    async def handle(self, message: Message, context: dict[str, Any]) -> Message | None:
        if isinstance(message, GetHostState):
            self.fetches.append(message)
            if self.fail_fetches:
                self.fail_fetches -= 1
                raise RuntimeError("database is down")
            return HostStateReply(state=HostState(
                host=message.host, revision=self.revision,
                ports=[p for p in self.ports if p.host == message.host]))
        if isinstance(message, PortsWired):
            self.wired.append(message)
        if isinstance(message, AgentHeartbeat):
            self.heartbeats.append(message)
        return None


@pytest.fixture
async def bus() -> AsyncIterator[tuple[Transport, Transport, FakeServer]]:
    broker = MemoryBroker()
    server_bus = MemoryTransport(broker, call_timeout=5)
    agent_bus = MemoryTransport(broker, call_timeout=5)
    await server_bus.start()
    await agent_bus.start()
    server = FakeServer()
    await server_bus.serve(SERVER_TOPIC, server.handle)
    yield server_bus, agent_bus, server
    await agent_bus.close()
    await server_bus.close()


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_start_reconciles_and_reports_wired_ports(bus: Any) -> None:
    _, agent_bus, server = bus
    server.ports = [vm_port("p1"), vm_port("p2", host="h2")]
    dp = NoopDataplane()
    agent = NetworkAgent(agent_bus, "h1", ["l2", "dhcp"], dp, tunnel_ip="192.0.2.1",
                         heartbeat_interval=0.05)
    await agent.start()
    try:
        assert dp.last_state is not None and [p.id for p in dp.last_state.ports] == ["p1"]
        assert server.fetches[0].roles == ["l2", "dhcp"]
        assert server.fetches[0].tunnel_ip == "192.0.2.1"
        await until(lambda: bool(server.wired) and len(server.heartbeats) >= 2)
        assert server.wired[0].port_ids == ["p1"] and server.wired[0].host == "h1"
        assert server.heartbeats[-1].dataplane == "noop"
        assert server.heartbeats[-1].applied_revision == 1
    finally:
        await agent.stop()


class GatedDataplane(NoopDataplane):
    """``apply`` waits for ``gate`` once ``hold`` is set (to land a burst mid-apply)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def apply(self, state: HostState) -> ApplyReport:
        if self.hold:
            self.entered.set()
            await self.gate.wait()
        return await super().apply(state)


async def test_changes_are_refetched_coalesced_and_only_new_ports_reported(bus: Any) -> None:
    server_bus, agent_bus, server = bus
    server.ports = [vm_port("p1")]
    dp = GatedDataplane()
    agent = NetworkAgent(agent_bus, "h1", ["l2"], dp, heartbeat_interval=60)
    await agent.start()
    try:
        await until(lambda: len(server.wired) == 1)
        server.ports.append(vm_port("p3"))
        server.revision = 2
        syncs = agent.syncs
        dp.hold = True
        await server_bus.fanout(AGENTS_FANOUT, HostStateChanged(revision=2))
        await asyncio.wait_for(dp.entered.wait(), 5)  # a sync is under way ...
        for _ in range(20):  # ... when a burst of changes arrives
            await server_bus.fanout(AGENTS_FANOUT, HostStateChanged(revision=2))
        await until(agent._dirty.is_set)
        dp.hold = False
        dp.gate.set()
        await until(lambda: agent.syncs - syncs == 2 and not agent._dirty.is_set())
        assert [w.port_ids for w in server.wired] == [["p1"], ["p3"]]  # p3 reported once
        # a change for other hosts only does not make this one fetch
        await agent._handle(HostStateChanged(revision=3, hosts=["h9"]), {})
        assert not agent._dirty.is_set()
        await agent._handle(HostStateChanged(revision=3, hosts=["h9", "h1"]), {})
        assert agent._dirty.is_set()
    finally:
        await agent.stop()


async def test_server_down_at_start_is_retried(bus: Any) -> None:
    _, agent_bus, server = bus
    server.ports = [vm_port("p1")]
    server.fail_fetches = 1
    agent = NetworkAgent(agent_bus, "h1", ["l2"], NoopDataplane(), heartbeat_interval=60,
                         retry_interval=0.05)
    await agent.start()
    try:
        await until(lambda: bool(server.wired))
        assert len(server.fetches) >= 2
    finally:
        await agent.stop()


class SlowTapDataplane(NoopDataplane):
    """Ports stay pending until ``appear`` holds them (like taps the hypervisor creates)."""

    def __init__(self) -> None:
        super().__init__()
        self.appear: set[str] = set()
        self.refreshes = 0

    async def apply(self, state: HostState) -> ApplyReport:
        report = await super().apply(state)
        report.pending = report.wired - self.appear
        report.wired &= self.appear
        return report

    async def refresh(self) -> ApplyReport:
        self.refreshes += 1
        assert self.last_state is not None
        return await self.apply(self.last_state)


async def test_pending_taps_are_polled_until_wired(bus: Any) -> None:
    _, agent_bus, server = bus
    server.ports = [vm_port("p1")]
    dp = SlowTapDataplane()
    agent = NetworkAgent(agent_bus, "h1", ["l2"], dp, heartbeat_interval=60,
                         tap_poll_interval=0.02)
    await agent.start()
    try:
        await until(lambda: dp.refreshes >= 2)
        assert not server.wired
        dp.appear.add("p1")
        await until(lambda: bool(server.wired))
        assert server.wired[0].port_ids == ["p1"]
        fetches = len(server.fetches)
        await asyncio.sleep(0.1)
        assert len(server.fetches) == fetches  # polling refreshes, it does not refetch
    finally:
        await agent.stop()


async def test_start_agent_builds_from_config(bus: Any, tmp_path: Any) -> None:
    _, agent_bus, server = bus
    config = Config(data_dir=tmp_path)
    agent = await start_agent(agent_bus, "h7", ["l2"], "noop", config)
    try:
        assert isinstance(agent.dataplane, NoopDataplane) and agent.host == "h7"
        assert server.fetches[0].host == "h7"
    finally:
        await agent.stop()
    with pytest.raises(ValueError, match="unknown dataplane"):
        await start_agent(agent_bus, "h7", None, "ovs", config)
