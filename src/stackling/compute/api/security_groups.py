"""Nova's deprecated security-group proxy (``/v2.1/os-security-groups``,
``/v2.1/os-security-group-rules``, ``/v2.1/servers/{id}/os-security-groups`` and the
addSecurityGroup / removeSecurityGroup actions), forwarded to the network service with the
caller's own token so that project scoping and policy are the network service's. Gone (404)
from microversion 2.36 on, as in Nova."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.clients.network import NetworkClient
from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict, NotFound
from stackling.compute.api.common import authorize, caller, compute, json_body
from stackling.compute.api.microversion import at_least
from stackling.compute.api.servers import load_authorized
from stackling.compute.service import actions
from stackling.compute.service.instances import ServerRecord
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1")
RULE = "os_compute_api:os-security-groups"


async def present(request: Request) -> NetworkClient | None:
    """The network service, when this cloud has one."""
    client = compute(request).network
    return client if client is not None and await client.available() else None


async def network(request: Request) -> NetworkClient:
    """The network service, or 404 for the proxy (above 2.35, or when the cloud has none)."""
    if at_least(request, "2.36"):
        raise NotFound("The resource could not be found.")
    client = await present(request)
    if client is None:
        raise NotFound("The resource could not be found.")
    return client


async def start(request: Request, rule: str) -> tuple[RequestContext, NetworkClient]:
    """The caller, allowed ``rule`` on their own project, and the network service."""
    ctx = await caller(request)
    client = await network(request)
    authorize(request, ctx, rule, {"project_id": ctx.project_id, "user_id": ctx.user_id})
    return ctx, client


def format_rule(rule: dict[str, Any], names: dict[str, dict[str, Any]]) -> dict[str, Any]:
    protocol = rule.get("protocol")
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if protocol and low is None and high is None:
        low, high = (1, 65535) if str(protocol).upper() in ("TCP", "UDP") else (-1, -1)
    out: dict[str, Any] = {"id": rule["id"], "parent_group_id": rule["security_group_id"],
                           "ip_protocol": protocol, "from_port": low, "to_port": high,
                           "group": {}, "ip_range": {}}
    remote = rule.get("remote_group_id")
    if remote:
        group = names.get(remote, {})
        out["group"] = {"name": group.get("name"),
                        "tenant_id": group.get("project_id") or group.get("tenant_id")}
    else:
        out["ip_range"] = {"cidr": rule.get("remote_ip_prefix") or (
            "::/0" if rule.get("ethertype") == "IPv6" else "0.0.0.0/0")}
    return out


def format_group(group: dict[str, Any], names: dict[str, dict[str, Any]]) -> dict[str, Any]:
    names = {**names, group["id"]: group}
    rules = [format_rule(r, names) for r in group.get("security_group_rules") or []
             if r.get("direction") == "ingress"]
    return {"id": group["id"], "name": group.get("name"),
            "description": group.get("description") or "",
            "tenant_id": group.get("project_id") or group.get("tenant_id"), "rules": rules}


async def _groups_by_id(client: NetworkClient, ctx: RequestContext) -> dict[str, Any]:
    return {g["id"]: g for g in await client.list_security_groups(token=ctx.token)}


def _property(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        raise BadRequest(f"Security group {key} should not be empty.")
    if not isinstance(value, str):
        raise BadRequest(f"Security group {key} should be a string.")
    if not value.strip():
        raise BadRequest(f"Security group {key} should not be empty.")
    if len(value) > 255:
        raise BadRequest(f"Security group {key} should not be greater than 255 characters.")
    return value


def _group_body(body: dict[str, Any]) -> dict[str, str]:
    group = body.get("security_group")
    if not isinstance(group, dict):
        raise BadRequest("The request body is missing 'security_group'.")
    return {"name": _property(group, "name"), "description": _property(group, "description")}


@router.get("/os-security-groups")
async def list_groups(request: Request) -> JSONResponse:
    ctx, client = await start(request, f"{RULE}:get")
    filters: dict[str, Any] = {}
    if ctx.is_admin and request.query_params.get("all_tenants") not in (None, "0", "false"):
        pass  # the network service shows an admin everything already
    else:
        filters["project_id"] = ctx.project_id
    groups = await client.list_security_groups(token=ctx.token, **filters)
    names = {g["id"]: g for g in groups}
    return JSONResponse({"security_groups": [format_group(g, names) for g in groups]})


@router.get("/os-security-groups/{group_id}")
async def show_group(request: Request, group_id: str) -> JSONResponse:
    ctx, client = await start(request, f"{RULE}:show")
    group = await _get(client, ctx, group_id)
    return JSONResponse({"security_group": format_group(
        group, await _groups_by_id(client, ctx))})


def uuid_like(ident: str) -> str:
    """Nova's check on a group ID before asking the network service (400 otherwise)."""
    try:
        uuid.UUID(str(ident))
    except ValueError:
        raise BadRequest("Security group id should be uuid") from None
    return str(ident)


async def _get(client: NetworkClient, ctx: RequestContext, group_id: str) -> dict[str, Any]:
    uuid_like(group_id)
    try:
        return await client.get_security_group(group_id, token=ctx.token)
    except NotFound:
        raise NotFound(f"Security group {group_id} not found.") from None


@router.post("/os-security-groups")
async def create_group(request: Request) -> JSONResponse:
    ctx, client = await start(request, f"{RULE}:create")
    fields = _group_body(await json_body(request))
    try:
        group = await client.create_security_group(fields, token=ctx.token)
    except Conflict as exc:
        raise BadRequest(exc.message) from None
    return JSONResponse({"security_group": format_group(group, {})})


@router.put("/os-security-groups/{group_id}")
async def update_group(request: Request, group_id: str) -> JSONResponse:
    ctx, client = await start(request, f"{RULE}:update")
    fields = _group_body(await json_body(request))
    await _get(client, ctx, group_id)
    group = await client.update_security_group(group_id, fields, token=ctx.token)
    return JSONResponse({"security_group": format_group(
        group, await _groups_by_id(client, ctx))})


@router.delete("/os-security-groups/{group_id}")
async def delete_group(request: Request, group_id: str) -> Response:
    ctx, client = await start(request, f"{RULE}:delete")
    group = await _get(client, ctx, group_id)
    if group.get("name") == "default":
        raise BadRequest("Removing default security group not allowed.")
    try:
        await client.delete_security_group(group_id, token=ctx.token)
    except Conflict as exc:  # in use by a port
        raise BadRequest(exc.message) from None
    return Response(status_code=202)


def _port(value: Any, what: str, icmp: bool) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        if icmp:
            raise BadRequest("Type and Code must be integers for ICMP protocol type") from None
        raise BadRequest("To and From ports must be integers") from None


def _rule_fields(rule: dict[str, Any]) -> dict[str, Any]:
    """Nova's checks, then the network service's rule body (ingress)."""
    protocol, low, high = rule.get("ip_protocol"), rule.get("from_port"), rule.get("to_port")
    group_id = rule.get("group_id")
    out: dict[str, Any] = {"direction": "ingress"}
    cidr = None
    if group_id:
        out["remote_group_id"] = uuid_like(str(group_id))
        upper = str(protocol).upper() if protocol else ""
        if low is None and high is None:
            if upper == "ICMP":
                low, high = -1, -1
            elif upper in ("TCP", "UDP"):
                low, high = 1, 65535
    else:
        cidr = str(rule.get("cidr") or "0.0.0.0/0")
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise BadRequest(f"Invalid cidr {cidr}.") from None
        out["remote_ip_prefix"] = cidr
    if not (protocol and low is not None and high is not None):
        raise BadRequest("Not enough parameters to build a valid rule.")
    protocol = str(protocol)
    upper = protocol.upper()
    icmp = upper == "ICMP"
    low, high = _port(low, "from_port", icmp), _port(high, "to_port", icmp)
    if upper not in ("TCP", "UDP", "ICMP"):
        raise BadRequest(f"Invalid IP protocol {protocol}.")
    if upper in ("TCP", "UDP"):
        if low > high:
            raise BadRequest(f"Invalid port range {low}:{high}. Former value cannot be "
                             "greater than the later")
        if low < 1 or high > 65535:
            raise BadRequest(f"Invalid port range {low}:{high}. Valid {upper} ports should "
                             "be between 1-65535")
    elif not (-1 <= low <= 255 and -1 <= high <= 255):
        raise BadRequest(f"Invalid port range {low}:{high}. For ICMP, the type:code must "
                         "be valid")
    out["protocol"] = protocol.lower()
    out["port_range_min"] = None if low == -1 else low
    out["port_range_max"] = None if high == -1 else high
    version = ipaddress.ip_network(cidr, strict=False).version if cidr else 4
    out["ethertype"] = f"IPv{version}"
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("direction", "protocol", "port_range_min", "port_range_max", "remote_group_id",
            "ethertype")
    if any((a.get(k) or None) != (b.get(k) or None) for k in keys):
        return False
    prefix = {"IPv4": "0.0.0.0/0", "IPv6": "::/0"}
    return (a.get("remote_ip_prefix") or prefix.get(str(a.get("ethertype")))) == (
        b.get("remote_ip_prefix") or prefix.get(str(b.get("ethertype"))))


@router.post("/os-security-group-rules")
async def create_rule(request: Request) -> JSONResponse:
    ctx, client = await start(request, f"{RULE}:rule:create")
    body = (await json_body(request)).get("security_group_rule")
    if not isinstance(body, dict):
        raise BadRequest("The request body is missing 'security_group_rule'.")
    parent_id = body.get("parent_group_id")
    if not parent_id:
        raise BadRequest("Security group id should be specified.")
    parent = await _get(client, ctx, str(parent_id))
    fields = _rule_fields(body)
    if fields.get("remote_group_id"):
        await _get(client, ctx, fields["remote_group_id"])
    if any(_same(fields, r) for r in parent.get("security_group_rules") or []):
        raise BadRequest(f"This rule already exists in group {parent_id}")
    fields["security_group_id"] = parent["id"]
    try:
        rule = await client.create_security_group_rule(fields, token=ctx.token)
    except Conflict:
        raise BadRequest(f"This rule already exists in group {parent_id}") from None
    names = await _groups_by_id(client, ctx)
    return JSONResponse({"security_group_rule": format_rule(rule, names)})


@router.delete("/os-security-group-rules/{rule_id}")
async def delete_rule(request: Request, rule_id: str) -> Response:
    ctx, client = await start(request, f"{RULE}:rule:delete")
    try:
        await client.get_security_group_rule(rule_id, token=ctx.token)
        await client.delete_security_group_rule(rule_id, token=ctx.token)
    except NotFound:
        raise NotFound(f"Rule ({rule_id}) not found.") from None
    return Response(status_code=202)


@router.get("/servers/{server_id}/os-security-groups")
async def server_groups(request: Request, server_id: str) -> JSONResponse:
    ctx = await caller(request)
    client = await network(request)
    rec = await load_authorized(request, ctx, server_id, f"{RULE}:list")
    ports = await client.list_ports(device_id=rec.row.uuid)
    wanted: list[str] = []
    for port in ports:
        for gid in port.raw.get("security_groups") or []:
            if gid not in wanted:
                wanted.append(gid)
    groups = {g["id"]: g for g in await client.list_security_groups()} if wanted else {}
    return JSONResponse({"security_groups": [format_group(groups[g], groups)
                                             for g in wanted if g in groups]})


async def _resolve(client: NetworkClient, ctx: RequestContext, name: str) -> str:
    groups = await client.list_security_groups(token=ctx.token, project_id=ctx.project_id)
    matches = [g for g in groups if g.get("name") == name]
    if not matches:
        matches = [g for g in groups if g.get("id") == name]
    if not matches:
        raise NotFound(f"Security group {name} not found for project {ctx.project_id}.")
    if len(matches) > 1:
        raise Conflict(f"Multiple security groups named {name}: use the ID.")
    return str(matches[0]["id"])


async def change_server_groups(request: Request, ctx: RequestContext, rec: ServerRecord,
                               name: str, add: bool) -> None:
    """addSecurityGroup / removeSecurityGroup: the server's ports change groups in the
    network service; the server records the name (without a network service, only that)."""
    client = await present(request)
    if client is None:
        await actions.security_group(compute(request), ctx, rec.row.uuid, name, add=add)
        return
    group_id = await _resolve(client, ctx, name)
    ports = await client.list_ports(device_id=rec.row.uuid)
    if not ports:
        raise BadRequest("Network requires port_security_enabled and subnet associated "
                         "in order to apply security groups.")
    if not add and not any(group_id in (p.raw.get("security_groups") or []) for p in ports):
        raise BadRequest(f"Security group {name} not associated with the instance "
                         f"{rec.row.uuid}")
    for port in ports:
        current = list(port.raw.get("security_groups") or [])
        if add and group_id not in current:
            await client.update_port(port.id, {"security_groups": [*current, group_id]})
        elif not add and group_id in current:
            await client.update_port(port.id, {"security_groups": [
                g for g in current if g != group_id]})
    try:
        await actions.security_group(compute(request), ctx, rec.row.uuid, name, add=add)
    except (BadRequest, NotFound):
        pass  # the record was already right: the ports are what counts
