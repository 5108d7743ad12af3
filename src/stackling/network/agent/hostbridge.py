"""The one host-side object the data plane needs outside its own namespaces: the bridge of
the public (flat, external) network, with the external subnet's gateway address on it, so
the host reaches floating IPs and router gateways (``stackling up --dataplane linuxbridge``).

Created only when missing (an existing bridge of that name is used as it is and never
removed); one this process created is removed again by :meth:`ExternalBridge.remove`.
"""

from __future__ import annotations

import ipaddress
import logging

from stackling.network.dataplane.linuxbridge import cmd

log = logging.getLogger("stackling.network.agent")


class ExternalBridge:
    def __init__(self, name: str, gateway_ip: str, cidr: str) -> None:
        if len(name) > 15:
            raise ValueError(f"bridge name {name!r} is longer than 15 characters")
        self.name = name
        self.address = f"{gateway_ip}/{ipaddress.ip_network(cidr, strict=False).prefixlen}"
        self.created = False

    async def ensure(self) -> None:
        links = await cmd.links()
        if self.name not in links:
            await cmd.ip("link", "add", self.name, "type", "bridge")
            self.created = True
            log.info("created host bridge %s with %s", self.name, self.address)
        have = {f"{a['local']}/{a['prefixlen']}"
                for rec in await cmd.ip_json("addr", "show", "dev", self.name)
                for a in rec.get("addr_info", [])}
        if self.address not in have:
            await cmd.ip("addr", "add", self.address, "dev", self.name)
        await cmd.ip("link", "set", self.name, "up")

    async def remove(self) -> None:
        if self.created:
            await cmd.ip("link", "del", self.name, check=False)
            self.created = False
