"""The ports of the instances of one host (flow step 7, the network part): create or take
the ports a build asked for, bind them to this host, describe them to the driver
(:class:`~stackling.compute.virt.driver.NetworkInfo`), and give them back on delete.

Everything goes over REST with the service token (the agent has no database). Ports that
compute created for an instance carry ``binding:profile`` ``{"compute_created": true}``
(only admins may set a binding profile, so a user cannot make compute delete their own
port): a delete removes those and only unbinds the user's ports, as Nova does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from stackling.clients.network import Network, NetworkClient, Port
from stackling.common.errors import StacklingError
from stackling.compute.rpcapi import InstanceInfo
from stackling.compute.virt.driver import NetworkInfo

log = logging.getLogger("stackling.compute.agent.network")

CREATED = "compute_created"


@dataclass
class Allocation:
    """The ports of one instance during a build (in the requested order)."""

    ports: list[Port] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # ids compute made (deleted on undo)
    taken: list[str] = field(default_factory=list)  # the user's ports (unbound on undo)


class PortBinder:
    def __init__(self, client: NetworkClient, host: str) -> None:
        self.client = client
        self.host = host

    async def allocate(self, instance: InstanceInfo, requested: list[dict[str, Any]],
                       zone: str) -> Allocation:
        """Create the missing ports and claim the user's (not bound to a host yet: the
        caller waits for vif-plugged from :meth:`bind` on). Undoes itself on failure."""
        alloc = Allocation()
        owner = f"compute:{zone}"
        try:
            for item in requested:
                if item.get("port_id"):
                    port = await self.client.update_port(item["port_id"], {
                        "device_id": instance.uuid, "device_owner": owner})
                    alloc.taken.append(port.id)
                else:
                    body: dict[str, Any] = {
                        "network_id": item["network_id"], "project_id": instance.project_id,
                        "device_id": instance.uuid, "device_owner": owner,
                        "binding:profile": {CREATED: True}}
                    if item.get("security_groups"):
                        body["security_groups"] = list(item["security_groups"])
                    if item.get("fixed_ip"):
                        body["fixed_ips"] = [{"ip_address": item["fixed_ip"]}]
                    port = await self.client.create_port(body)
                    alloc.created.append(port.id)
                alloc.ports.append(port)
        except StacklingError:
            await self.undo(alloc)
            raise
        return alloc

    async def bind(self, alloc: Allocation) -> None:
        """Bind every port to this host: the host's network agent wires it (when the tap
        appears) and the network service reports ``network-vif-plugged``."""
        alloc.ports = [await self.client.update_port(p.id, {"binding:host_id": self.host})
                       for p in alloc.ports]

    async def network_info(self, alloc: Allocation) -> NetworkInfo:
        networks: dict[str, Network] = {}
        vifs = []
        for port in alloc.ports:
            if port.network_id not in networks:
                networks[port.network_id] = await self.client.get_network(port.network_id)
            net = networks[port.network_id]
            vifs.append({"id": port.id, "mac_address": port.mac_address,
                         "fixed_ips": [dict(f) for f in port.fixed_ips],
                         "network": {"id": net.id, "label": net.name, "mtu": net.mtu},
                         "mtu": net.mtu, "active": port.status == "ACTIVE"})
        return NetworkInfo(vifs=tuple(vifs))

    async def current(self, instance_uuid: str) -> NetworkInfo:
        """The ports the instance has now, in creation order."""
        ports = await self.client.list_ports(device_id=instance_uuid)
        return await self.network_info(Allocation(ports=ports))

    async def rebind(self, instance_uuid: str) -> None:
        """Bind the instance's ports bound elsewhere to this host."""
        if not await self.client.available():
            return
        for port in await self.client.list_ports(device_id=instance_uuid):
            if port.host_id != self.host:
                await self.client.update_port(port.id, {"binding:host_id": self.host})

    async def undo(self, alloc: Allocation) -> None:
        """A failed build: delete the ports compute made, give the user's back."""
        for port_id in alloc.created:
            await self._quietly(self.client.delete_port(port_id), port_id)
        for port_id in alloc.taken:
            await self._quietly(self.client.unbind_port(port_id), port_id)

    async def deallocate(self, instance_uuid: str) -> None:
        """A delete: every port of the instance, whoever made it."""
        if not await self.client.available():
            return
        try:
            ports = await self.client.list_ports(device_id=instance_uuid)
        except StacklingError as exc:
            log.warning("the ports of %s could not be released: %s", instance_uuid, exc)
            return
        for port in ports:
            await self.release(port)

    async def release(self, port: Port) -> None:
        """Delete the port if compute made it, else unbind it."""
        if (port.raw.get("binding:profile") or {}).get(CREATED):
            await self._quietly(self.client.delete_port(port.id), port.id)
        else:
            await self._quietly(self.client.unbind_port(port.id), port.id)

    async def _quietly(self, call: Any, port_id: str) -> None:
        try:
            await call
        except StacklingError as exc:  # the network service restarts: leave it be
            log.warning("could not release port %s: %s", port_id, exc)
