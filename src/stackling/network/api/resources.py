"""The CRUD collections of v2.0 (networks, subnets, ports, security groups and rules,
routers, floating IPs): one table of service functions, one route factory."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.network.api.common import (
    body_of,
    caller,
    created,
    listing,
    no_content,
    one,
    service,
)
from stackling.network.errors import NeutronBadRequest
from stackling.network.service import (
    floatingips,
    networks,
    ports,
    routers,
    secgroups,
    subnetpools,
    subnets,
)
from stackling.network.service.core import NetworkService
from stackling.web.responses import JSONResponse

Ctx = RequestContext
Svc = NetworkService


@dataclass(frozen=True)
class Collection:
    singular: str
    plural: str  # the JSON key
    path: str  # the URL segment
    index: Callable[[Svc, Ctx], Awaitable[list[dict[str, Any]]]]
    show: Callable[[Svc, Ctx, str], Awaitable[dict[str, Any]]]
    create: Callable[[Svc, Ctx, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]
    delete: Callable[[Svc, Ctx, str], Awaitable[None]]
    update: Callable[[Svc, Ctx, str, dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
    bulk: bool = True
    #: an index that also takes the query's filters (it narrows in the database what the
    #: API then filters the usual way); used instead of ``index`` when set
    filtered_index: Callable[[Svc, Ctx, Mapping[str, list[str]]],
                             Awaitable[list[dict[str, Any]]]] | None = None


async def _single(fn: Callable[[Svc, Ctx, dict[str, Any]], Awaitable[dict[str, Any]]],
                  svc: Svc, ctx: Ctx, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [await fn(svc, ctx, b) for b in bodies]


def _one_by_one(fn: Callable[[Svc, Ctx, dict[str, Any]], Awaitable[dict[str, Any]]]
                ) -> Callable[[Svc, Ctx, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]:
    async def create(svc: Svc, ctx: Ctx, bodies: list[dict[str, Any]]
                     ) -> list[dict[str, Any]]:
        return await _single(fn, svc, ctx, bodies)
    return create


COLLECTIONS = [
    Collection("network", "networks", "networks", networks.list_networks, networks.show,
               networks.create_many, networks.delete_network, networks.update),
    Collection("subnet", "subnets", "subnets", subnets.list_subnets, subnets.show,
               subnets.create_many, subnets.delete_subnet, subnets.update),
    Collection("port", "ports", "ports", ports.list_ports, ports.show, ports.create_many,
               ports.delete_port, ports.update, filtered_index=ports.list_ports),
    Collection("security_group", "security_groups", "security-groups", secgroups.list_groups,
               secgroups.show, _one_by_one(secgroups.create), secgroups.delete_group,
               secgroups.update),
    Collection("security_group_rule", "security_group_rules", "security-group-rules",
               secgroups.list_rules, secgroups.show_rule, secgroups.create_rules,
               secgroups.delete_rule),
    Collection("subnetpool", "subnetpools", "subnetpools", subnetpools.list_pools,
               subnetpools.show, _one_by_one(subnetpools.create), subnetpools.delete_pool,
               subnetpools.update, bulk=False),
    Collection("router", "routers", "routers", routers.list_routers, routers.show,
               _one_by_one(routers.create), routers.delete_router, routers.update,
               bulk=False),
    Collection("floatingip", "floatingips", "floatingips", floatingips.list_fips,
               floatingips.show, _one_by_one(floatingips.create), floatingips.delete_fip,
               floatingips.update, bulk=False),
]

router = APIRouter(prefix="/v2.0")


def _register(c: Collection) -> None:
    async def list_items(request: Request) -> JSONResponse:
        ctx = await caller(request)
        svc = service(request)
        if c.filtered_index is not None:
            q = request.query_params
            items = await c.filtered_index(svc, ctx, {k: q.getlist(k) for k in q})
        else:
            items = await c.index(svc, ctx)
        return listing(request, ctx, c.plural, items, svc.conf.max_limit)

    async def create_items(request: Request) -> JSONResponse:
        ctx = await caller(request)
        bodies, bulk = await body_of(request, c.singular, c.plural if c.bulk else None)
        return created(request, ctx, c.singular, c.plural,
                       await c.create(service(request), ctx, bodies), bulk)

    async def show_item(request: Request, ident: str) -> JSONResponse:
        ctx = await caller(request)
        return one(request, ctx, c.singular, await c.show(service(request), ctx, ident))

    async def update_item(request: Request, ident: str) -> JSONResponse:
        ctx = await caller(request)
        if c.update is None:
            raise NeutronBadRequest(f"{c.plural} cannot be updated", "HTTPBadRequest")
        bodies, _ = await body_of(request, c.singular)
        item = await c.update(service(request), ctx, ident, bodies[0])
        return one(request, ctx, c.singular, item)

    async def delete_item(request: Request, ident: str) -> Response:
        ctx = await caller(request)
        await c.delete(service(request), ctx, ident)
        return no_content()

    base = f"/{c.path}"
    router.add_api_route(base, list_items, methods=["GET"])
    router.add_api_route(base, create_items, methods=["POST"], status_code=201)
    router.add_api_route(base + "/{ident}", show_item, methods=["GET"])
    if c.update is not None:
        router.add_api_route(base + "/{ident}", update_item, methods=["PUT"])
    router.add_api_route(base + "/{ident}", delete_item, methods=["DELETE"], status_code=204)


for _c in COLLECTIONS:
    _register(_c)


@router.put("/routers/{ident}/add_router_interface")
async def add_router_interface(request: Request, ident: str) -> JSONResponse:
    ctx = await caller(request)
    body = await _plain_body(request)
    return JSONResponse(await routers.add_interface(service(request), ctx, ident, body))


@router.put("/routers/{ident}/remove_router_interface")
async def remove_router_interface(request: Request, ident: str) -> JSONResponse:
    ctx = await caller(request)
    body = await _plain_body(request)
    return JSONResponse(await routers.remove_interface(service(request), ctx, ident, body))


async def _plain_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise NeutronBadRequest("Malformed request body", "HTTPBadRequest") from None
    if not isinstance(body, dict):
        raise NeutronBadRequest("Malformed request body", "HTTPBadRequest")
    return body
