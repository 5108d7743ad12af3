"""The network agent: fetches its host's desired state over the bus; the data plane realises it.

:func:`start_agent` is the one entry point a component (``stackling up``, ``stackling node``)
calls; it returns the running :class:`NetworkAgent` (``await agent.stop()`` to end it)."""

from __future__ import annotations

import socket

from stackling.bus import Transport
from stackling.common.config import Config
from stackling.network.agent.hostbridge import ExternalBridge
from stackling.network.agent.manager import NetworkAgent
from stackling.network.dataplane import (
    DATAPLANES,
    Dataplane,
    LinuxBridgeDataplane,
    LinuxBridgeOptions,
    NoopDataplane,
)

__all__ = ["ExternalBridge", "NetworkAgent", "create_dataplane", "start_agent"]


def create_dataplane(name: str, config: Config, roles: list[str] | None = None) -> Dataplane:
    """The data plane ``name`` (a key of :data:`DATAPLANES`) configured from ``config``."""
    if name not in DATAPLANES:
        raise ValueError(f"unknown dataplane {name!r} (known: {', '.join(sorted(DATAPLANES))})")
    conf = config.network_agent
    if DATAPLANES[name] is LinuxBridgeDataplane:
        return LinuxBridgeDataplane(LinuxBridgeOptions(
            data_dir=config.data_dir / "network-agent",
            netns_prefix=conf.netns_prefix,
            tunnel_ip=conf.tunnel_ip,
            physical_bridges=dict(conf.physical_bridges),
            roles=tuple(roles if roles is not None else conf.roles),
            # default: the all-in-one's metadata service (``stackling up`` mounts it there)
            metadata_url=conf.metadata_url or f"{config.public_url()}/metadata",
            metadata_secret=config.metadata.shared_secret or "",
            dhcp_lease_time=conf.dhcp_lease_time))
    return NoopDataplane()


async def start_agent(transport: Transport, host: str | None, roles: list[str] | None,
                      dataplane_name: str, config: Config) -> NetworkAgent:
    """Build the data plane, start the agent (its first sync is the restart reconcile) and
    return it; ``await agent.stop()`` stops it and leaves the kernel objects in place.

    With ``linuxbridge`` and ``[network_agent] manage_external_bridge`` the public network's
    host bridge (``physical_bridges[public_physical_network]``) is made first, with the
    public gateway address on it, and removed again by ``stop()`` if this call made it."""
    conf = config.network_agent
    bridge: ExternalBridge | None = None
    public = conf.physical_bridges.get(config.network.public_physical_network)
    if (dataplane_name == "linuxbridge" and conf.manage_external_bridge and public
            and config.network.public_gateway):
        bridge = ExternalBridge(public, config.network.public_gateway,
                                config.network.public_cidr)
        await bridge.ensure()
    roles = list(roles if roles is not None else conf.roles)
    host = host or conf.host or config.compute.host or socket.gethostname()
    agent = NetworkAgent(transport, host, roles, create_dataplane(dataplane_name, config, roles),
                         tunnel_ip=conf.tunnel_ip, heartbeat_interval=conf.heartbeat_interval,
                         resync_interval=conf.resync_interval,
                         tap_poll_interval=conf.tap_poll_interval,
                         call_timeout=config.bus.call_timeout)
    if bridge is not None:
        agent.on_stop.append(bridge.remove)
    try:
        await agent.start()
    except BaseException:
        if bridge is not None:
            await bridge.remove()
        raise
    return agent
