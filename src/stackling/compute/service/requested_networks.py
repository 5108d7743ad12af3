"""A server create's ``networks`` checked against the network service and resolved into the
ports the agent gives the server (RequestSpec.requested_networks).

``none``: no port. A list: each ``uuid`` must be a network the caller may use (with a
subnet), each ``port`` an unused port of theirs. ``auto`` (and, before 2.37, no
``networks`` at all): the one network the project can use (its own or shared, not
external); none at all is 400 for ``auto`` (Nova's get-me-a-network without an
auto-allocated topology) and no port otherwise; several are 409 (ambiguous). Without a
network service in the catalog the server gets no port, and explicit networks are 400.
"""

from __future__ import annotations

from typing import Any

from stackling.clients.network import (
    Network,
    NetworkClient,
    NetworkResourceNotFound,
)
from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict


async def resolve(client: NetworkClient | None, ctx: RequestContext,
                  networks: str | list[dict[str, Any]] | None, count: int, *,
                  security_groups: list[str] | None = None) -> list[dict[str, Any]]:
    """The ports to give each of ``count`` servers (the same requests for each). The
    ports compute creates get ``security_groups`` (names or ids the caller can see; an
    unknown one is 400); the caller's own ports keep theirs."""
    resolved = await _resolve(client, ctx, networks, count)
    if not security_groups or not any(not r["port_id"] for r in resolved):
        return resolved
    assert client is not None
    groups = await client.list_security_groups(token=ctx.token)
    ids: list[str] = []
    for wanted in dict.fromkeys(security_groups):
        matches = [g for g in groups if g.get("id") == wanted or (
            g.get("name") == wanted and g.get("project_id") == ctx.project_id)]
        if not matches and wanted == "default":
            continue  # made on first use: the new port gets it anyway
        if not matches:
            raise BadRequest(f"Security group {wanted} not found for project "
                             f"{ctx.project_id}.")
        if len(matches) > 1:
            raise Conflict(f"Multiple security groups found matching '{wanted}'. Use an "
                           "ID to be more specific.")
        ids.append(str(matches[0]["id"]))
    if not ids:
        return resolved
    return [r if r["port_id"] else {**r, "security_groups": ids} for r in resolved]


async def _resolve(client: NetworkClient | None, ctx: RequestContext,
                   networks: str | list[dict[str, Any]] | None,
                   count: int) -> list[dict[str, Any]]:
    if networks == "none":
        return []
    if client is None or not await client.available():
        if isinstance(networks, list) and networks:
            first = networks[0]
            missing = first.get("uuid") or first.get("port")
            raise BadRequest(f"Network {missing} could not be found: this cloud has no "
                             "network service; use networks 'none' or 'auto'.")
        return []
    if networks is None or networks == "auto" or networks == []:
        return await _auto(client, ctx, explicit=networks == "auto")
    assert isinstance(networks, list)
    resolved: list[dict[str, Any]] = []
    seen_ports: set[str] = set()
    for item in networks:
        port_id, net_id = item.get("port"), item.get("uuid")
        fixed_ip = item.get("fixed_ip")
        if port_id:
            if port_id in seen_ports:
                raise BadRequest(f"Port id {port_id} is duplicated in the request.")
            seen_ports.add(port_id)
            if count > 1:
                raise BadRequest("Unable to launch multiple instances with a single "
                                 "configured port ID. Please launch your instance one by "
                                 "one with different ports.")
            port = await _get(client.get_port(port_id, token=ctx.token),
                              f"Port {port_id} could not be found.")
            if port.device_id:
                raise Conflict(f"Port {port_id} is still in use.")
            resolved.append({"network_id": port.network_id, "port_id": port.id,
                             "fixed_ip": None, "tag": item.get("tag")})
            continue
        if not net_id:
            raise BadRequest("Bad networks format: network uuid is not in proper format "
                             f"({net_id})")
        if fixed_ip and count > 1:
            raise BadRequest("max_count cannot be greater than 1 if an fixed_ip is "
                             "specified.")
        network = await _get(client.get_network(net_id, token=ctx.token),
                             f"Network {net_id} could not be found.")
        _usable(network)
        resolved.append({"network_id": network.id, "port_id": None, "fixed_ip": fixed_ip,
                         "tag": item.get("tag")})
    return resolved


async def _get(call: Any, missing: str) -> Any:
    try:
        return await call
    except NetworkResourceNotFound as exc:
        raise BadRequest(missing) from exc


def _usable(network: Network) -> None:
    if not network.subnets:
        raise BadRequest(f"Network {network.id} requires a subnet in order to boot "
                         "instances on.")


async def _auto(client: NetworkClient, ctx: RequestContext, *,
                explicit: bool) -> list[dict[str, Any]]:
    visible = await client.list_networks(token=ctx.token)
    # Nova's _get_available_networks: the project's own networks, else the shared ones
    candidates = [n for n in visible if not n.external and n.subnets]
    usable = [n for n in candidates if n.project_id == ctx.project_id and not n.shared]
    if not usable:
        usable = [n for n in candidates if n.shared]
    if not usable:
        if explicit:
            raise BadRequest("Unable to automatically allocate a network for project "
                             f"{ctx.project_id}")
        return []
    if len(usable) > 1:
        raise Conflict("Multiple possible networks found, use a Network ID to be more "
                       "specific.")
    return [{"network_id": usable[0].id, "port_id": None, "fixed_ip": None, "tag": None}]
