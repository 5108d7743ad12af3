"""Subnet pools (``subnet_allocation``): prefixes a subnet's CIDR is carved from when a
subnet is created with ``subnetpool_id`` (and ``prefixlen``) instead of a ``cidr``."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.ids import new_uuid
from stackling.common.timeutils import isotime
from stackling.network.errors import (
    NeutronBadRequest,
    NeutronConflict,
    NeutronNotFound,
    bad_attr,
)
from stackling.network.models import Subnet, SubnetPool, Tag
from stackling.network.service import views
from stackling.network.service.common import (
    admin_only,
    boolean,
    owner_of,
    owns,
    string,
    touch,
    unknown_keys,
)
from stackling.network.service.core import NetworkService

KEYS = {"name", "description", "prefixes", "default_prefixlen", "min_prefixlen",
        "max_prefixlen", "shared", "is_default", "default_quota", "tenant_id", "project_id",
        "address_scope_id", "tags"}
UPDATE_KEYS = {"name", "description", "prefixes", "default_prefixlen", "min_prefixlen",
               "max_prefixlen", "is_default", "default_quota", "address_scope_id"}


def _not_found(ident: str) -> NeutronNotFound:
    return NeutronNotFound(f"Subnet pool {ident} could not be found.", "SubnetPoolNotFound")


def _view(row: SubnetPool, tags: list[str]) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "description": row.description,
        "tenant_id": row.project_id, "project_id": row.project_id,
        "ip_version": row.ip_version, "prefixes": list(row.prefixes),
        "default_prefixlen": row.default_prefixlen, "min_prefixlen": row.min_prefixlen,
        "max_prefixlen": row.max_prefixlen, "shared": row.shared,
        "is_default": row.is_default, "default_quota": row.default_quota,
        "address_scope_id": None, "tags": sorted(tags),
        "created_at": isotime(row.created_at, subsecond=False),
        "updated_at": isotime(row.updated_at, subsecond=False),
        "revision_number": row.revision_number,
    }


async def _views(session: AsyncSession, rows: list[SubnetPool]) -> list[dict[str, Any]]:
    tags = await views.tags_of(session, [r.id for r in rows])
    return [_view(r, tags[r.id]) for r in rows]


def visible(ctx: RequestContext, row: SubnetPool) -> bool:
    return owns(ctx, row.project_id) or row.shared


async def get(session: AsyncSession, ctx: RequestContext, ident: str) -> SubnetPool:
    row = await session.get(SubnetPool, ident)
    if row is None or not visible(ctx, row):
        raise _not_found(ident)
    return row


async def list_pools(svc: NetworkService, ctx: RequestContext) -> list[dict[str, Any]]:
    async with svc.store.read() as session:
        query = select(SubnetPool).order_by(SubnetPool.created_at, SubnetPool.id)
        if not ctx.is_admin:
            query = query.where((SubnetPool.project_id == ctx.project_id)
                                | SubnetPool.shared)
        return await _views(session, list((await session.execute(query)).scalars()))


async def show(svc: NetworkService, ctx: RequestContext, ident: str) -> dict[str, Any]:
    async with svc.store.read() as session:
        return (await _views(session, [await get(session, ctx, ident)]))[0]


def _prefixes(raw: Any) -> tuple[int, list[str]]:
    if not isinstance(raw, list) or not raw:
        raise bad_attr("prefixes", f"'{raw}' is not a non-empty list")
    nets = []
    for item in raw:
        try:
            nets.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise bad_attr("prefixes", f"'{item}' is not a valid IP subnet") from None
    versions = {n.version for n in nets}
    if len(versions) != 1:
        raise NeutronBadRequest("Illegal subnetpool: Cannot mix IPv4 and IPv6 prefixes in a "
                                "subnet pool.", "IllegalSubnetPoolPrefixes")
    merged = ipaddress.collapse_addresses(nets)  # type: ignore[type-var]
    return nets[0].version, [str(n) for n in merged]


def _int(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_attr(key, f"'{value}' is not an integer") from None


def _lengths(version: int, prefixes: list[str], body: dict[str, Any],
             current: SubnetPool | None = None) -> tuple[int, int, int]:
    top = 32 if version == 4 else 128
    low = _int(body, "min_prefixlen", current.min_prefixlen if current else 8 if version == 4
               else 64)
    high = _int(body, "max_prefixlen", current.max_prefixlen if current else top)
    default = _int(body, "default_prefixlen", current.default_prefixlen if current
                   and "min_prefixlen" not in body else low)
    if not 0 <= low <= high <= top or not low <= default <= high:
        raise NeutronBadRequest("Illegal prefix bounds: min_prefixlen, default_prefixlen and "
                                f"max_prefixlen must satisfy min <= default <= max <= {top}.",
                                "IllegalSubnetPoolPrefixBounds")
    return low, default, high


async def create(svc: NetworkService, ctx: RequestContext,
                 body: dict[str, Any]) -> dict[str, Any]:
    unknown_keys(body, KEYS, "subnetpool")
    admin_only(svc, ctx, body, ["shared", "is_default"], "create_subnetpool")
    if body.get("address_scope_id") is not None:
        raise NeutronBadRequest("Address scopes are not supported.", "HTTPBadRequest")
    if "prefixes" not in body:
        raise NeutronBadRequest("Failed to parse request. Required attribute 'prefixes' not "
                                "specified", "HTTPBadRequest")
    version, prefixes = _prefixes(body["prefixes"])
    low, default, high = _lengths(version, prefixes, body)
    project = owner_of(ctx, body)
    async with svc.write(notify=False) as session:
        row = SubnetPool(id=new_uuid(), project_id=project, ip_version=version,
                         prefixes=prefixes, min_prefixlen=low, default_prefixlen=default,
                         max_prefixlen=high,
                         name=string(body.get("name", ""), "name"),
                         description=string(body.get("description", ""), "description"),
                         shared=boolean(body.get("shared", False), "shared"),
                         is_default=boolean(body.get("is_default", False), "is_default"),
                         default_quota=body.get("default_quota"))
        session.add(row)
        for tag in body.get("tags") or []:
            session.add(Tag(resource_id=row.id, tag=string(tag, "tags")))
        await session.flush()
        return (await _views(session, [row]))[0]


async def update(svc: NetworkService, ctx: RequestContext, ident: str,
                 body: dict[str, Any]) -> dict[str, Any]:
    unknown_keys(body, UPDATE_KEYS, "subnetpool")
    admin_only(svc, ctx, body, ["is_default"], "update_subnetpool")
    async with svc.write(notify=False) as session:
        row = await get(session, ctx, ident)
        if not owns(ctx, row.project_id):
            raise _not_found(ident)
        for key in ("name", "description"):
            if key in body:
                setattr(row, key, string(body[key], key))
        if "prefixes" in body:
            version, prefixes = _prefixes(list(body["prefixes"]) + list(row.prefixes))
            if version != row.ip_version:
                raise NeutronBadRequest("Illegal subnetpool: Cannot mix IPv4 and IPv6 "
                                        "prefixes in a subnet pool.",
                                        "IllegalSubnetPoolPrefixes")
            old = [ipaddress.ip_network(p) for p in row.prefixes]
            new = [ipaddress.ip_network(p) for p in prefixes]
            if not all(any(o.subnet_of(n) for n in new) for o in old):  # type: ignore[arg-type]
                raise NeutronBadRequest("Illegal update to prefixes: prefixes can only be "
                                        "added or extended.", "IllegalSubnetPoolPrefixUpdate")
            row.prefixes = prefixes
        if {"min_prefixlen", "max_prefixlen", "default_prefixlen"} & set(body):
            row.min_prefixlen, row.default_prefixlen, row.max_prefixlen = _lengths(
                row.ip_version, row.prefixes, body, row)
        if "is_default" in body:
            row.is_default = boolean(body["is_default"], "is_default")
        if "default_quota" in body:
            row.default_quota = body["default_quota"]
        touch(row)
        await session.flush()
        return (await _views(session, [row]))[0]


async def delete_pool(svc: NetworkService, ctx: RequestContext, ident: str) -> None:
    async with svc.write(notify=False) as session:
        row = await get(session, ctx, ident)
        if not owns(ctx, row.project_id):
            raise _not_found(ident)
        used = (await session.execute(select(Subnet.id).where(
            Subnet.subnetpool_id == ident))).first()
        if used:
            raise NeutronConflict(f"Unable to complete operation on subnet pool {ident}: "
                                  "Subnet pool has existing allocations.", "SubnetPoolInUse")
        await session.execute(delete(Tag).where(Tag.resource_id == ident))
        await session.delete(row)


async def allocate_cidr(session: AsyncSession, ctx: RequestContext, pool_id: str,
                        cidr: str | None, prefixlen: Any, ip_version: int) -> str:
    """A CIDR for a new subnet from the pool: the requested one when it fits, else the
    first free block of ``prefixlen`` (the pool's default when not given)."""
    pool = await get(session, ctx, str(pool_id))
    if pool.ip_version != ip_version:
        raise NeutronBadRequest(f"Invalid input for operation: ip_version {ip_version} does "
                                f"not match the subnet pool's {pool.ip_version}.",
                                "InvalidInput")
    taken = [ipaddress.ip_network(c) for c in (await session.execute(select(Subnet.cidr).where(
        Subnet.subnetpool_id == pool.id))).scalars()]
    prefixes = [ipaddress.ip_network(p) for p in pool.prefixes]
    if cidr is not None:
        net = ipaddress.ip_network(cidr)
        if not any(net.subnet_of(p) for p in prefixes):  # type: ignore[arg-type]
            raise NeutronBadRequest(f"Cidr {cidr} is not within the prefixes of subnet pool "
                                    f"{pool.id}.", "SubnetAllocationError")
        if any(net.overlaps(t) for t in taken):  # type: ignore[arg-type]
            raise NeutronConflict(f"Unable to allocate subnet with prefix {cidr}: it "
                                  "overlaps with an allocated subnet.",
                                  "SubnetAllocationError")
        return cidr
    length = pool.default_prefixlen if prefixlen is None else int(prefixlen)
    if not pool.min_prefixlen <= length <= pool.max_prefixlen:
        raise NeutronBadRequest(f"Unable to allocate subnet with prefix length {length}, "
                                f"minimum allowed prefix is {pool.min_prefixlen}, maximum "
                                f"allowed prefix is {pool.max_prefixlen}.",
                                "MaxPrefixSubnetAllocationError")
    for prefix in prefixes:
        if length < prefix.prefixlen:
            continue
        for candidate in prefix.subnets(new_prefix=length):
            if not any(candidate.overlaps(t) for t in taken):  # type: ignore[arg-type]
                return str(candidate)
    raise NeutronConflict(f"Insufficient prefix space to allocate subnet size /{length}.",
                          "SubnetAllocationError")
