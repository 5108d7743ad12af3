"""Networks: create (with a segment: a VXLAN VNI, or a flat physical network), update,
delete (refused while ports other than DHCP ports remain), and their views."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.ids import new_uuid
from stackling.network.errors import NeutronBadRequest, NeutronConflict, bad_attr, not_found
from stackling.network.models import FloatingIP, IPAllocation, Network, Port, Subnet, Tag
from stackling.network.service import views
from stackling.network.service.common import (
    admin_only,
    boolean,
    check_quota,
    get_network,
    network_visible,
    owner_of,
    owns,
    string,
    touch,
    unknown_keys,
)
from stackling.network.service.core import NetworkService

DHCP_OWNER = "network:dhcp"
FIP_OWNER = "network:floatingip"
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
CREATE_KEYS = {"name", "description", "admin_state_up", "shared", "router:external", "mtu",
               "port_security_enabled", "availability_zone_hints", "tenant_id", "project_id",
               "dns_domain", "is_default", "qos_policy_id", *PROVIDER, "segments", "tags"}
UPDATE_KEYS = {"name", "description", "admin_state_up", "shared", "router:external", "mtu",
               "port_security_enabled", "dns_domain", "is_default", "qos_policy_id"}


async def view(session: AsyncSession, rows: list[Network]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    subnets: dict[str, list[str]] = {i: [] for i in ids}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        for sid, nid in (await session.execute(select(Subnet.id, Subnet.network_id).where(
                Subnet.network_id.in_(part)).order_by(Subnet.created_at))).all():
            subnets[nid].append(sid)
    tags = await views.tags_of(session, ids)
    return [views.network(r, subnets[r.id], tags[r.id]) for r in rows]


async def list_networks(svc: NetworkService, ctx: RequestContext) -> list[dict[str, Any]]:
    async with svc.store.read() as session:
        query = select(Network).order_by(Network.created_at, Network.id)
        if not ctx.is_admin:
            query = query.where((Network.project_id == ctx.project_id) | Network.shared
                                | Network.external)
        rows = list((await session.execute(query)).scalars())
        return await view(session, rows)


async def show(svc: NetworkService, ctx: RequestContext, ident: str) -> dict[str, Any]:
    async with svc.store.read() as session:
        row = await get_network(session, ident, ctx)
        return (await view(session, [row]))[0]


def _mtu(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 68:
        raise bad_attr("mtu", f"'{value}' is too small - must be at least '68'")
    return value


async def _segment(session: AsyncSession, svc: NetworkService, body: dict[str, Any],
                   external: bool) -> tuple[str, str | None, int | None]:
    kind = body.get("provider:network_type")
    physnet = body.get("provider:physical_network")
    seg = body.get("provider:segmentation_id")
    if kind is None:
        if physnet is not None or seg is not None:
            raise NeutronBadRequest("network_type required", "InvalidInput")
        kind = "vxlan"
    if kind not in ("vxlan", "flat", "local"):
        raise NeutronBadRequest(f"Invalid input for operation: network_type value '{kind}' "
                                "not supported.", "InvalidInput")
    if kind == "flat":
        if seg is not None:
            raise NeutronBadRequest("Invalid input for operation: segmentation_id specified "
                                    "for flat network.", "InvalidInput")
        if not physnet:
            raise NeutronBadRequest("Invalid input for operation: physical_network required "
                                    "for flat provider network.", "InvalidInput")
        taken = (await session.execute(select(Network.id).where(
            Network.network_type == "flat", Network.physical_network == physnet))).first()
        if taken:
            raise NeutronConflict(f"Unable to create the flat network. Physical network "
                                  f"{physnet} is in use.", "FlatNetworkInUse")
        return kind, str(physnet), None
    if kind == "local":
        return kind, None, None
    if physnet is not None:
        raise NeutronBadRequest("Invalid input for operation: provider:physical_network "
                                "specified for VXLAN network.", "InvalidInput")
    used = set((await session.execute(select(Network.segmentation_id).where(
        Network.network_type == "vxlan"))).scalars())
    if seg is not None:
        if (isinstance(seg, bool) or not isinstance(seg, int)
                or not 1 <= seg <= (1 << 24) - 1):
            raise NeutronBadRequest(f"Invalid input for operation: segmentation_id out of "
                                    f"range ({seg}).", "InvalidInput")
        if seg in used:
            raise NeutronConflict(f"Unable to create the network. The VXLAN {seg} is in use.",
                                  "TunnelIdInUse")
        return kind, None, seg
    for vni in range(svc.conf.vni_min, svc.conf.vni_max + 1):
        if vni not in used:
            return kind, None, vni
    raise NeutronConflict("Unable to create the network. No tenant network is available for "
                          "allocation.", "NoNetworkAvailable")


async def create(svc: NetworkService, ctx: RequestContext, body: dict[str, Any],
                 session: AsyncSession) -> Network:
    """Insert one network inside the caller's transaction (bulk creates share one)."""
    unknown_keys(body, CREATE_KEYS, "network")
    admin_only(svc, ctx, body, [*PROVIDER, "router:external", "shared", "is_default"],
               "create_network")
    project = owner_of(ctx, body)
    await check_quota(session, svc, project, "network")
    external = boolean(body.get("router:external", False), "router:external")
    kind, physnet, seg = await _segment(session, svc, body, external)
    default_mtu = svc.conf.external_mtu if kind == "flat" else svc.conf.default_mtu
    mtu = _mtu(body["mtu"]) if body.get("mtu") is not None else default_mtu
    if mtu > (svc.conf.external_mtu if kind == "flat" else svc.conf.default_mtu):
        raise NeutronBadRequest(f"Requested MTU is too big, maximum is "
                                f"{default_mtu}.", "InvalidInput")
    hints = body.get("availability_zone_hints", [])
    if not isinstance(hints, list) or any(h != "nova" for h in hints):
        raise NeutronConflict(f"AvailabilityZone {hints} could not be found.",
                              "AvailabilityZoneNotFound")
    row = Network(
        id=new_uuid(), project_id=project,
        name=string(body.get("name", ""), "name"),
        description=string(body.get("description", ""), "description"),
        admin_state_up=boolean(body.get("admin_state_up", True), "admin_state_up"),
        shared=boolean(body.get("shared", False), "shared"), external=external,
        is_default=boolean(body.get("is_default", False), "is_default"),
        mtu=mtu, network_type=kind, physical_network=physnet, segmentation_id=seg,
        port_security_enabled=boolean(body.get("port_security_enabled", True),
                                      "port_security_enabled"),
        availability_zone_hints=hints,
        dns_domain=string(body.get("dns_domain", ""), "dns_domain"))
    session.add(row)
    for tag in body.get("tags") or []:
        session.add(Tag(resource_id=row.id, tag=string(tag, "tags", 255)))
    await session.flush()
    return row


async def create_many(svc: NetworkService, ctx: RequestContext,
                      bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async with svc.write() as session:
        rows = [await create(svc, ctx, body, session) for body in bodies]
        return await view(session, rows)


async def update(svc: NetworkService, ctx: RequestContext, ident: str,
                 body: dict[str, Any]) -> dict[str, Any]:
    if set(body) & set(PROVIDER):
        raise NeutronBadRequest("Invalid input for operation: Plugin does not support "
                                "updating provider attributes.", "InvalidInput")
    unknown_keys(body, UPDATE_KEYS, "network")
    admin_only(svc, ctx, body, ["router:external", "shared", "is_default"], "update_network")
    async with svc.write() as session:
        row = await get_network(session, ident, ctx)
        if not owns(ctx, row.project_id):
            raise not_found("network", ident)
        if "name" in body:
            row.name = string(body["name"], "name")
        if "description" in body:
            row.description = string(body["description"], "description")
        if "admin_state_up" in body:
            row.admin_state_up = boolean(body["admin_state_up"], "admin_state_up")
        if "port_security_enabled" in body:
            row.port_security_enabled = boolean(body["port_security_enabled"],
                                                "port_security_enabled")
        if "mtu" in body:
            row.mtu = _mtu(body["mtu"])
        if "dns_domain" in body:
            row.dns_domain = string(body["dns_domain"], "dns_domain")
        if "shared" in body:
            shared = boolean(body["shared"], "shared")
            if not shared and row.shared:
                foreign = (await session.execute(select(Port.id).where(
                    Port.network_id == ident, Port.project_id != row.project_id,
                    Port.device_owner != DHCP_OWNER, Port.project_id != ""))).first()
                if foreign:
                    raise NeutronConflict(f"Unable to reconfigure sharing settings for "
                                          f"network {ident}. Multiple tenants are using it.",
                                          "InvalidSharedSetting")
            row.shared = shared
        if "router:external" in body:
            row.external = boolean(body["router:external"], "router:external")
        if "is_default" in body:
            row.is_default = boolean(body["is_default"], "is_default")
        touch(row)
        await session.flush()
        return (await view(session, [row]))[0]


async def delete_network(svc: NetworkService, ctx: RequestContext, ident: str) -> None:
    async with svc.write() as session:
        row = await get_network(session, ident, ctx)
        if not owns(ctx, row.project_id):
            raise not_found("network", ident)
        ports = list((await session.execute(select(Port).where(
            Port.network_id == ident))).scalars())
        if any(p.device_owner not in (DHCP_OWNER, FIP_OWNER) for p in ports):
            raise NeutronConflict(f"Unable to complete operation on network {ident}. There "
                                  "are one or more ports still in use on the network.",
                                  "NetworkInUse")
        port_ids = [p.id for p in ports]
        fips = [p.device_id for p in ports if p.device_owner == FIP_OWNER]
        if fips:
            await session.execute(delete(Tag).where(Tag.resource_id.in_(fips)))
            await session.execute(delete(FloatingIP).where(FloatingIP.id.in_(fips)))
        if port_ids:
            await session.execute(delete(IPAllocation).where(
                IPAllocation.port_id.in_(port_ids)))
            await session.execute(delete(Tag).where(Tag.resource_id.in_(port_ids)))
            await session.execute(delete(Port).where(Port.id.in_(port_ids)))
        subnet_ids = list((await session.execute(select(Subnet.id).where(
            Subnet.network_id == ident))).scalars())
        if subnet_ids:
            await session.execute(delete(Tag).where(Tag.resource_id.in_(subnet_ids)))
            await session.execute(delete(Subnet).where(Subnet.id.in_(subnet_ids)))
        await session.execute(delete(Tag).where(Tag.resource_id == ident))
        await session.delete(row)


def visible(ctx: RequestContext, row: Network) -> bool:
    return network_visible(ctx, row)
