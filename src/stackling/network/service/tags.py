"""``standard-attr-tag``: tags on networks, subnets, ports, routers, floating IPs and
security groups (``/v2.0/{resources}/{id}/tags``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from stackling.common.context import RequestContext
from stackling.network.errors import NeutronBadRequest, NeutronNotFound, not_found
from stackling.network.models import (
    FloatingIP,
    Network,
    Port,
    Router,
    SecurityGroup,
    Subnet,
    SubnetPool,
    Tag,
)
from stackling.network.service.common import owns
from stackling.network.service.core import NetworkService

#: URL collection -> (model, kind for errors)
TAGGABLE: dict[str, tuple[Any, str]] = {
    "networks": (Network, "network"), "subnets": (Subnet, "subnet"), "ports": (Port, "port"),
    "routers": (Router, "router"), "subnetpools": (SubnetPool, "subnetpool"),
    "floatingips": (FloatingIP, "floatingip"),
    "security-groups": (SecurityGroup, "security_group"),
    "security_groups": (SecurityGroup, "security_group"),
}
MAX_TAGS = 50


def _check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > 255 or "," in tag or "/" in tag:
        raise NeutronBadRequest(f"Invalid input for operation: '{tag}' is not a valid tag.",
                                "InvalidInput")
    return tag


async def _resource(svc: NetworkService, ctx: RequestContext, collection: str,
                    ident: str, write: bool) -> None:
    if collection not in TAGGABLE:
        raise NeutronNotFound("The resource could not be found.", "HTTPNotFound")
    model, kind = TAGGABLE[collection]
    async with svc.store.read() as session:
        row = await session.get(model, ident)
        if row is None:
            raise not_found(kind, ident)
        if not owns(ctx, row.project_id):
            shared = isinstance(row, Network) and (row.shared or row.external)
            if write or not shared:
                raise not_found(kind, ident)


async def get_tags(svc: NetworkService, ctx: RequestContext, collection: str,
                   ident: str) -> list[str]:
    await _resource(svc, ctx, collection, ident, write=False)
    async with svc.store.read() as session:
        return sorted((await session.execute(select(Tag.tag).where(
            Tag.resource_id == ident))).scalars())


async def has_tag(svc: NetworkService, ctx: RequestContext, collection: str, ident: str,
                  tag: str) -> None:
    if tag not in await get_tags(svc, ctx, collection, ident):
        raise NeutronNotFound(f"Tag {tag} could not be found for {collection[:-1]} {ident}.",
                              "TagNotFound")


async def replace(svc: NetworkService, ctx: RequestContext, collection: str, ident: str,
                  tags: Any) -> list[str]:
    if not isinstance(tags, list):
        raise NeutronBadRequest("Invalid input for operation: tags must be a list.",
                                "InvalidInput")
    clean = sorted({_check_tag(t) for t in tags})
    if len(clean) > MAX_TAGS:
        raise NeutronBadRequest(f"Invalid input for operation: more than {MAX_TAGS} tags.",
                                "InvalidInput")
    await _resource(svc, ctx, collection, ident, write=True)
    async with svc.write(notify=False) as session:
        await session.execute(delete(Tag).where(Tag.resource_id == ident))
        session.add_all(Tag(resource_id=ident, tag=t) for t in clean)
    return clean


async def add(svc: NetworkService, ctx: RequestContext, collection: str, ident: str,
              tag: str) -> None:
    _check_tag(tag)
    await _resource(svc, ctx, collection, ident, write=True)
    async with svc.write(notify=False) as session:
        if await session.get(Tag, (ident, tag)) is None:
            session.add(Tag(resource_id=ident, tag=tag))


async def remove(svc: NetworkService, ctx: RequestContext, collection: str, ident: str,
                 tag: str | None) -> None:
    await _resource(svc, ctx, collection, ident, write=True)
    async with svc.write(notify=False) as session:
        query = delete(Tag).where(Tag.resource_id == ident)
        if tag is not None:
            if await session.get(Tag, (ident, tag)) is None:
                raise NeutronNotFound(f"Tag {tag} could not be found for "
                                      f"{collection[:-1]} {ident}.", "TagNotFound")
            query = query.where(Tag.tag == tag)
        await session.execute(query)
