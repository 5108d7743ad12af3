"""Ports: fixed IPs (through :mod:`.allocation`), MAC addresses, security groups, allowed
address pairs, port security and binding (``binding:host_id`` -> ``vif_type`` ``bridge``).

A port is DOWN until the agent on its host reports it wired (``PortsWired``), then ACTIVE.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from typing import Any, Final, cast

from sqlalchemy import Select, bindparam, delete, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import Conflict
from stackling.common.ids import new_uuid
from stackling.db.base import table_of
from stackling.network.errors import (
    NeutronBadRequest,
    NeutronConflict,
    NeutronForbidden,
    bad_attr,
    not_found,
)
from stackling.network.models import FloatingIP, IPAllocation, Network, Port, SecurityGroup, Tag
from stackling.network.service import allocation, secgroups, views
from stackling.network.service.common import (
    admin_only,
    boolean,
    check_quota,
    get_network,
    owner_of,
    owns,
    string,
    touch,
    unknown_keys,
)
from stackling.network.service.core import NetworkService

VNIC_TYPES = {"normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "vdpa", "remote-managed"}
KEYS = {"network_id", "name", "description", "admin_state_up", "mac_address", "fixed_ips",
        "device_id", "device_owner", "tenant_id", "project_id", "security_groups",
        "allowed_address_pairs", "port_security_enabled", "binding:host_id",
        "binding:profile", "binding:vnic_type", "tags", "qos_policy_id",
        "propagate_uplink_status"}
ATTEMPTS = 5


def bridge_name(network_id: str) -> str:
    """The Linux bridge of a network (Neutron's linuxbridge naming)."""
    return ("brq" + network_id)[:14]


def _bind(row: Port) -> None:
    if not row.host:
        row.vif_type, row.vif_details = "unbound", {}
    elif row.vnic_type != "normal":
        row.vif_type, row.vif_details = "binding_failed", {}
    else:
        row.vif_type = "bridge"
        row.vif_details = {"connectivity": "l2", "port_filter": True,
                           "bridge_name": bridge_name(row.network_id)}


async def view(session: AsyncSession, rows: list[Port]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    ips = await allocation.allocations(session, ids)
    tags = await views.tags_of(session, ids)
    return [views.port(r, ips[r.id], tags[r.id]) for r in rows]


def visible(ctx: RequestContext, row: Port, network_owner: str | None = None) -> bool:
    return owns(ctx, row.project_id) or (network_owner is not None and owns(ctx, network_owner))


async def get(session: AsyncSession, ctx: RequestContext, ident: str) -> Port:
    row = await session.get(Port, ident)
    if row is None:
        raise not_found("port", ident)
    if not owns(ctx, row.project_id):
        net = await session.get(Network, row.network_id)
        if net is None or not owns(ctx, net.project_id):
            raise not_found("port", ident)
    return row


#: query filters the database applies (the API filters the result again, as for every
#: collection: so these only have to narrow, never to widen or reorder)
_PT: Final = table_of(Port)
_PUSHED_DOWN: Final = {"id": _PT.c.id, "device_id": _PT.c.device_id,
                       "network_id": _PT.c.network_id, "device_owner": _PT.c.device_owner,
                       "mac_address": _PT.c.mac_address, "project_id": _PT.c.project_id,
                       "tenant_id": _PT.c.project_id}


@functools.cache
def _listing(keys: tuple[tuple[str, bool], ...], admin: bool) -> Select[Any]:
    """The port listing narrowed by these :data:`_PUSHED_DOWN` keys (in its order; each
    with whether it has one value: an equality, else an expanding IN), built once per
    shape and run with parameters (``f_<key>``, ``project``). Plain rows of the table (the
    view only reads them): compute lists a server's ports on every delete and view."""
    query = select(_PT).order_by(_PT.c.created_at, _PT.c.id)
    for key, one in keys:
        column = _PUSHED_DOWN[key]
        query = query.where(column == bindparam(f"f_{key}") if one else
                            column.in_(bindparam(f"f_{key}", expanding=True)))
    if not admin:
        net = table_of(Network).c
        own_nets = select(net.id).where(net.project_id == bindparam("project"))
        query = query.where((_PT.c.project_id == bindparam("project"))
                            | _PT.c.network_id.in_(own_nets))
    return query


async def list_ports(svc: NetworkService, ctx: RequestContext,
                     filters: Mapping[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """The ports ``ctx`` may see; ``filters`` (query parameter -> values) narrows them in
    the database for the usual keys: compute asks for a server's ports by ``device_id`` on
    every server view, which must not cost a view of every port in the cloud."""
    params: dict[str, Any] = {}
    keys = []
    for key in _PUSHED_DOWN:
        wanted = (filters or {}).get(key)
        if wanted and not any(w in ("", "None", "null") for w in wanted):
            one = len(wanted) == 1
            keys.append((key, one))
            params[f"f_{key}"] = wanted[0] if one else list(wanted)
    query = _listing(tuple(keys), ctx.is_admin)
    if not ctx.is_admin:
        params["project"] = ctx.project_id
    async with svc.store.read() as session:
        rows = cast(list[Port], list((await session.execute(query, params)).all()))
        return await view(session, rows)


async def show(svc: NetworkService, ctx: RequestContext, ident: str) -> dict[str, Any]:
    async with svc.store.read() as session:
        return (await view(session, [await get(session, ctx, ident)]))[0]


def _pairs(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise bad_attr("allowed_address_pairs", "Allowed address pairs must be a list")
    out: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or "ip_address" not in item or set(item) - {
                "ip_address", "mac_address"}:
            raise NeutronBadRequest("AllowedAddressPair must contain ip_address",
                                    "AllowedAddressPairsMissingIP")
        try:
            net = ipaddress.ip_network(str(item["ip_address"]), strict=False)
        except ValueError:
            raise bad_attr("allowed_address_pairs",
                           f"'{item['ip_address']}' is not a valid IP address") from None
        ip = str(item["ip_address"])
        ip = str(net.network_address) if "/" not in ip else str(net)
        pair = {"ip_address": ip}
        if item.get("mac_address") is not None:
            pair["mac_address"] = allocation.check_mac(item["mac_address"])
        if pair in out:
            raise NeutronBadRequest("Request contains duplicate address pair: "
                                    f"mac_address {pair.get('mac_address')} ip_address {ip}.",
                                    "DuplicateAddressPairInRequest")
        out.append(pair)
    return out


async def _groups(session: AsyncSession, ctx: RequestContext, raw: Any,
                  project: str) -> list[str]:
    if not isinstance(raw, list):
        raise bad_attr("security_groups", f"'{raw}' is not a list")
    out: list[str] = []
    for ident in raw:
        if not isinstance(ident, str):
            raise bad_attr("security_groups", f"'{ident}' is not a valid UUID")
        sg = await session.get(SecurityGroup, ident)
        if sg is None or not (ctx.is_admin or sg.project_id in (project, ctx.project_id)):
            raise not_found("security_group", ident)
        if ident not in out:
            out.append(ident)
    return out


def _fill_pairs_mac(row: Port) -> None:
    row.allowed_address_pairs = [
        {"ip_address": p["ip_address"], "mac_address": p.get("mac_address") or row.mac_address}
        for p in row.allowed_address_pairs]


async def create(svc: NetworkService, ctx: RequestContext, body: dict[str, Any],
                 session: AsyncSession) -> Port:
    unknown_keys(body, KEYS, "port")
    admin_only(svc, ctx, body, ["binding:host_id", "binding:profile"], "create_port")
    net_id = body.get("network_id")
    if not isinstance(net_id, str):
        raise NeutronBadRequest("Failed to parse request. Required attribute 'network_id' "
                                "not specified", "HTTPBadRequest")
    network = await get_network(session, net_id, ctx)
    project = owner_of(ctx, body)
    net_owner = owns(ctx, network.project_id)
    if not net_owner:
        admin_only(svc, ctx, body, ["mac_address"], "create_port")
        for item in body.get("fixed_ips") or []:
            if isinstance(item, dict) and "ip_address" in item:
                raise NeutronForbidden("(rule:create_port and rule:create_port:fixed_ips:"
                                       "ip_address) is disallowed by policy")
    await check_quota(session, svc, project, "port")
    owner = string(body.get("device_owner", ""), "device_owner")
    if body.get("mac_address") is not None:
        mac = allocation.check_mac(body["mac_address"])
        taken = (await session.execute(select(Port.id).where(
            Port.network_id == network.id, Port.mac_address == mac))).first()
        if taken:
            raise NeutronConflict(f"Unable to complete operation for network {network.id}. "
                                  f"The mac address {mac} is in use.", "MacAddressInUse")
    else:
        mac = await allocation.new_mac(session, network.id, svc.conf.base_mac)
    security = boolean(body.get("port_security_enabled", network.port_security_enabled),
                       "port_security_enabled")
    vnic = body.get("binding:vnic_type", "normal")
    if vnic not in VNIC_TYPES:
        raise bad_attr("binding:vnic_type", f"'{vnic}' is not in {sorted(VNIC_TYPES)}")
    row = Port(id=new_uuid(), project_id=project, network_id=network.id, mac_address=mac,
               name=string(body.get("name", ""), "name"),
               description=string(body.get("description", ""), "description"),
               admin_state_up=boolean(body.get("admin_state_up", True), "admin_state_up"),
               device_owner=owner,
               device_id=string(body.get("device_id", ""), "device_id"),
               host=string(body.get("binding:host_id", ""), "binding:host_id"),
               vnic_type=vnic, binding_profile=body.get("binding:profile") or {},
               port_security_enabled=security, status="DOWN")
    if "security_groups" in body and body["security_groups"] is not None:
        row.security_group_ids = await _groups(session, ctx, body["security_groups"], project)
        if row.security_group_ids and not security:
            raise NeutronBadRequest("Port has security group associated. Cannot disable port "
                                    "security or ip address until security group is removed",
                                    "PortSecurityAndIPRequiredForSecurityGroups")
    elif security and not owner.startswith("network:"):
        row.security_group_ids = [await secgroups.ensure_default(session, project)]
    else:
        row.security_group_ids = []
    if body.get("allowed_address_pairs"):
        if not security:
            raise NeutronConflict("Port Security must be enabled in order to have allowed "
                                  "address pairs on a port.",
                                  "AddressPairAndPortSecurityRequired")
        row.allowed_address_pairs = _pairs(body["allowed_address_pairs"])
        _fill_pairs_mac(row)
    _bind(row)
    session.add(row)
    await session.flush()
    await allocation.allocate(session, row, network, body.get("fixed_ips"))
    for tag in body.get("tags") or []:
        session.add(Tag(resource_id=row.id, tag=string(tag, "tags")))
    await session.flush()
    return row


async def create_many(svc: NetworkService, ctx: RequestContext,
                      bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All or nothing; a lost race on an address (the unique constraint) retries the whole
    transaction, which then sees the address taken and moves on (see :mod:`.allocation`)."""
    for attempt in range(ATTEMPTS):
        try:
            async with svc.write() as session:
                rows = [await create(svc, ctx, body, session) for body in bodies]
                return await view(session, rows)
        except Conflict as exc:
            if type(exc) is not Conflict or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def update(svc: NetworkService, ctx: RequestContext, ident: str,
                 body: dict[str, Any]) -> dict[str, Any]:
    unknown_keys(body, KEYS - {"network_id", "tenant_id", "project_id"}, "port")
    admin_only(svc, ctx, body, ["binding:host_id", "binding:profile"], "update_port")
    for attempt in range(ATTEMPTS):
        try:
            async with svc.write() as session:
                row = await get(session, ctx, ident)
                await _update(svc, ctx, session, row, body)
                touch(row)
                await session.flush()
                return (await view(session, [row]))[0]
        except Conflict as exc:
            if type(exc) is not Conflict or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _update(svc: NetworkService, ctx: RequestContext, session: AsyncSession, row: Port,
                  body: dict[str, Any]) -> None:
    network = await session.get(Network, row.network_id)
    assert network is not None
    for key in ("name", "description", "device_id", "device_owner"):
        if key in body:
            setattr(row, key, string(body[key], key))
    if "admin_state_up" in body:
        row.admin_state_up = boolean(body["admin_state_up"], "admin_state_up")
    if "mac_address" in body:
        if not owns(ctx, network.project_id):
            raise NeutronForbidden("(rule:update_port:mac_address) is disallowed by policy")
        mac = allocation.check_mac(body["mac_address"])
        if mac != row.mac_address:
            if row.host and row.vif_type not in ("unbound", "binding_failed"):
                raise NeutronConflict(f"Port {row.id} is bound, mac address cannot be "
                                      "changed.", "PortBound")
            taken = (await session.execute(select(Port.id).where(
                Port.network_id == network.id, Port.mac_address == mac))).first()
            if taken:
                raise NeutronConflict(f"Unable to complete operation for network "
                                      f"{network.id}. The mac address {mac} is in use.",
                                      "MacAddressInUse")
            row.mac_address = mac
    if "binding:vnic_type" in body:
        if body["binding:vnic_type"] not in VNIC_TYPES:
            raise bad_attr("binding:vnic_type", f"'{body['binding:vnic_type']}' is invalid")
        row.vnic_type = body["binding:vnic_type"]
    if "binding:host_id" in body:
        row.host = string(body["binding:host_id"] or "", "binding:host_id")
        row.status = "DOWN"
    if "binding:profile" in body:
        row.binding_profile = body["binding:profile"] or {}
    _bind(row)
    if "port_security_enabled" in body:
        row.port_security_enabled = boolean(body["port_security_enabled"],
                                            "port_security_enabled")
    if "security_groups" in body:
        row.security_group_ids = await _groups(session, ctx, body["security_groups"] or [],
                                               row.project_id)
    if "allowed_address_pairs" in body:
        row.allowed_address_pairs = _pairs(body["allowed_address_pairs"] or [])
        _fill_pairs_mac(row)
    if not row.port_security_enabled:
        if row.security_group_ids:
            raise NeutronConflict("Port has security group associated. Cannot disable port "
                                  "security or ip address until security group is removed",
                                  "PortSecurityAndIPRequiredForSecurityGroups")
        if row.allowed_address_pairs:
            raise NeutronConflict("Port Security must be enabled in order to have allowed "
                                  "address pairs on a port.",
                                  "AddressPairAndPortSecurityRequired")
    if "fixed_ips" in body:
        if not owns(ctx, network.project_id) and any(
                isinstance(i, dict) and "ip_address" in i for i in body["fixed_ips"] or []):
            raise NeutronForbidden("(rule:update_port:fixed_ips:ip_address) is disallowed "
                                   "by policy")
        current = (await allocation.allocations(session, [row.id]))[row.id]
        await allocation.allocate(session, row, network, body["fixed_ips"] or [],
                                  keep=current)
        gone = {a.ip_address for a in current} - {
            a.ip_address for a in (await allocation.allocations(session, [row.id]))[row.id]}
        if gone:
            await session.execute(sql_update(FloatingIP).where(
                FloatingIP.fixed_port_id == row.id, FloatingIP.fixed_ip_address.in_(gone))
                .values(fixed_port_id=None, fixed_ip_address=None, router_id=None,
                        status="DOWN").execution_options(synchronize_session=False))


L3_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip",
             "network:router_interface_distributed", "network:ha_router_replicated_interface")


async def delete_port(svc: NetworkService, ctx: RequestContext, ident: str,
                      *, l3: bool = False) -> None:
    async with svc.write() as session:
        row = await get(session, ctx, ident)
        if row.device_owner in L3_OWNERS and not l3 and row.device_id:
            raise NeutronConflict(f"Port {ident} cannot be deleted directly via the port API: "
                                  f"has device owner {row.device_owner}.", "ServicePortInUse")
        await remove(session, row)


async def remove(session: AsyncSession, row: Port) -> None:
    """Delete a port, free its addresses and disassociate floating IPs pointing at it."""
    await session.execute(sql_update(FloatingIP).where(FloatingIP.fixed_port_id == row.id).values(
        fixed_port_id=None, fixed_ip_address=None, router_id=None, status="DOWN")
        .execution_options(synchronize_session=False))
    await session.execute(delete(IPAllocation).where(IPAllocation.port_id == row.id))
    await session.execute(delete(Tag).where(Tag.resource_id == row.id))
    await session.delete(row)
    await session.flush()
