"""A server's ``addresses`` from its ports in the network service (Nova builds them from its
network info cache; compute asks the network service, with its service token):
``{network name: [{"version", "addr", "OS-EXT-IPS:type": fixed|floating,
"OS-EXT-IPS-MAC:mac_addr"}]}``. Without a network service, or while it cannot be reached,
servers show no addresses."""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any

from fastapi import APIRouter, Request

from stackling.clients.network import NetworkClient
from stackling.common.errors import NotFound, StacklingError
from stackling.compute.api.common import authorize, caller, compute
from stackling.web.responses import JSONResponse

log = logging.getLogger("stackling.compute.api")

CHUNK = 80  # device ids per port list (the query string stays short)


async def addresses_of(client: NetworkClient | None,
                       uuids: list[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Each server's addresses (servers without ports map to ``{}``)."""
    result: dict[str, dict[str, list[dict[str, Any]]]] = {u: {} for u in uuids}
    if client is None or not uuids:
        return result
    try:
        if not await client.available():
            return result
        ports = []
        for first in range(0, len(uuids), CHUNK):
            ports.extend(await client.list_ports(device_id=uuids[first:first + CHUNK]))
        if not ports:
            return result
        net_ids = sorted({p.network_id for p in ports})
        names = {n.id: n.name for n in await client.list_networks(id=net_ids)}
        floating: dict[str, list[str]] = {}
        for fip in await client.list_floating_ips(port_id=[p.id for p in ports]):
            if fip.get("port_id") and fip.get("floating_ip_address"):
                floating.setdefault(fip["port_id"], []).append(fip["floating_ip_address"])
    except StacklingError as exc:
        log.warning("server addresses unavailable: %s", exc)
        return result
    for port in sorted(ports, key=lambda p: (p.raw.get("created_at") or "", p.id)):
        if port.device_id not in result:
            continue
        label = names.get(port.network_id) or port.network_id
        entries = result[port.device_id].setdefault(label, [])
        addrs = [(str(f.get("ip_address")), "fixed") for f in port.fixed_ips
                 if f.get("ip_address")]
        addrs += [(a, "floating") for a in floating.get(port.id, [])]
        for addr, kind in addrs:
            entries.append({"version": ipaddress.ip_address(addr).version, "addr": addr,
                            "OS-EXT-IPS:type": kind,
                            "OS-EXT-IPS-MAC:mac_addr": port.mac_address})
    return result


async def servers_by_ip(client: NetworkClient | None, patterns: dict[str, str]) -> list[str]:
    """The servers with a fixed address matching the ``ip`` (IPv4) / ``ip6`` (IPv6) regular
    expressions (matched from the start, as Nova does)."""
    if client is None:
        return []
    try:
        compiled = {4 if k == "ip" else 6: re.compile(v) for k, v in patterns.items()}
    except re.error:
        return []
    try:
        if not await client.available():
            return []
        ports = await client.list_ports()
    except StacklingError as exc:
        log.warning("the ip filter cannot be applied: %s", exc)
        return []
    found: list[str] = []
    for port in ports:
        if not port.device_owner.startswith("compute:") or not port.device_id:
            continue
        for f in port.fixed_ips:
            addr = str(f.get("ip_address") or "")
            try:
                version = ipaddress.ip_address(addr).version
            except ValueError:
                continue
            pattern = compiled.get(version)
            if pattern is not None and pattern.match(addr):
                found.append(port.device_id)
                break
    return sorted(set(found))


# -- /servers/{id}/ips: the same addresses, plainer (Nova's ips controller) -----------------
router = APIRouter(prefix="/v2.1/servers/{server_id}/ips")


def _plain(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"version": e["version"], "addr": e["addr"]} for e in entries]


async def _server_addresses(request: Request, server_id: str, rule: str
                            ) -> dict[str, list[dict[str, Any]]]:
    from stackling.compute.api.servers import load  # (servers imports this module)

    ctx = await caller(request)
    rec = await load(request, ctx, server_id)
    authorize(request, ctx, rule, {"project_id": rec.row.project_id})
    found = await addresses_of(compute(request).network, [rec.row.uuid])
    return found[rec.row.uuid]


@router.get("")
async def list_ips(request: Request, server_id: str) -> JSONResponse:
    found = await _server_addresses(request, server_id, "os_compute_api:ips:index")
    return JSONResponse({"addresses": {k: _plain(v) for k, v in found.items()}})


@router.get("/{network_label}")
async def show_ips(request: Request, server_id: str, network_label: str) -> JSONResponse:
    found = await _server_addresses(request, server_id, "os_compute_api:ips:show")
    if network_label not in found:
        raise NotFound("Instance is not a member of specified network")
    return JSONResponse({network_label: _plain(found[network_label])})
