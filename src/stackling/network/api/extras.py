"""Version discovery, ``/v2.0/extensions`` (only what is implemented), quotas, tags, agents
and network IP availability."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.network.api.common import body_of, caller, listing, no_content, service
from stackling.network.errors import NeutronBadRequest, NeutronForbidden, NeutronNotFound
from stackling.network.service import agents, availability, quotas, tags
from stackling.web.responses import JSONResponse
from stackling.web.urls import base_url

root = APIRouter()
router = APIRouter(prefix="/v2.0")

UPDATED = "2026-11-22T00:00:00-00:00"
#: alias -> (name, description): every one of these is implemented; Tempest skips the rest
EXTENSIONS = {
    "agent": ("agent", "The agent management extension."),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external "
                                "application"),
    "external-net": ("Neutron external network", "Adds external network attribute to "
                                                  "network resource."),
    "ext-gw-mode": ("Neutron L3 Configurable external gateway mode",
                    "Extension of the router abstraction for specifying whether SNAT should "
                    "occur on the external gateway"),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "fip-port-details": ("Floating IP Port Details Extension",
                         "Add port_details attribute to Floating IP resource"),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "net-mtu-writable": ("Network MTU (writable)", "Provides a writable MTU attribute for a "
                                                    "network resource."),
    "network-ip-availability": ("Network IP Availability", "Provides IP availability data "
                                                           "for each network and subnet."),
    "pagination": ("Pagination support", "Extension that indicates that pagination is "
                                         "enabled."),
    "port-security": ("Port Security", "Provides port security"),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id "
                                               "field is enabled."),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical "
                                     "networks"),
    "quotas": ("Quota management support", "Expose functions for quotas management per "
                                           "project"),
    "quota_details": ("Quota details management support", "Expose functions for quotas "
                                                          "usage statistics per project"),
    "router": ("Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 "
                                    "Neutron networks and access to external networks via "
                                    "a NAT gateway."),
    "security-group": ("security-group", "The security groups extension."),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "standard-attr-description": ("standard-attr-description", "Extension to add "
                                  "descriptions to standard attributes"),
    "standard-attr-revisions": ("Resource revision numbers", "This extension will display "
                                "the revision number of neutron resources."),
    "standard-attr-timestamp": ("Resource timestamps", "Adds created_at and updated_at "
                                "fields to all Neutron resources that have Neutron standard "
                                "attributes."),
    "standard-attr-tag": ("Tag support for resources with standard attribute",
                          "Enables to set tag on resources with standard attribute."),
    "subnet_allocation": ("Subnet Allocation", "Enables allocation of subnets from a subnet "
                                               "pool"),
    "stateful-security-group": ("Stateful security group", "Indicates if the security group "
                                                           "is stateful or not"),
}


def _ext(alias: str) -> dict[str, Any]:
    name, description = EXTENSIONS[alias]
    return {"alias": alias, "name": name, "description": description, "links": [],
            "updated": UPDATED}


@root.get("/")
async def versions(request: Request) -> JSONResponse:
    base = base_url(request)
    return JSONResponse({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [
        {"href": f"{base}/v2.0/", "rel": "self"}]}]})


@router.get("")
@router.get("/")
async def resources(request: Request) -> JSONResponse:
    base = base_url(request)
    names = [("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
             ("router", "routers"), ("floatingip", "floatingips"),
             ("security_group", "security-groups"),
             ("security_group_rule", "security-group-rules")]
    return JSONResponse({"resources": [
        {"name": n, "collection": c, "links": [{"href": f"{base}/v2.0/{c}", "rel": "self"}]}
        for n, c in names]})


@router.get("/extensions")
async def extensions(request: Request) -> JSONResponse:
    await caller(request)
    return JSONResponse({"extensions": [_ext(a) for a in sorted(EXTENSIONS)]})


@router.get("/extensions/{alias}")
async def extension(request: Request, alias: str) -> JSONResponse:
    await caller(request)
    if alias not in EXTENSIONS:
        raise NeutronNotFound(f"Extension with alias {alias} does not exist",
                              "HTTPNotFound")
    return JSONResponse({"extension": _ext(alias)})


# -- quotas -----------------------------------------------------------------------------------
def _quota_reader(request: Request, ctx: Any, project_id: str) -> None:
    if not service(request).allowed(ctx, "get_quota", project_id):
        raise NeutronForbidden("(rule:get_quota) is disallowed by policy")


@router.get("/quotas")
async def quota_list(request: Request) -> JSONResponse:
    ctx = await caller(request)
    if not service(request).allowed(ctx, "get_quota", ""):
        raise NeutronForbidden("(rule:get_quota) is disallowed by policy")
    return JSONResponse({"quotas": await quotas.projects_with_overrides(service(request))})


@router.get("/quotas/tenant")
@router.get("/quotas/project")
async def quota_tenant(request: Request) -> JSONResponse:
    ctx = await caller(request)
    return JSONResponse({"tenant": {"tenant_id": ctx.project_id},
                         "project": {"project_id": ctx.project_id}})


@router.get("/quotas/{project_id}")
async def quota_show(request: Request, project_id: str) -> JSONResponse:
    ctx = await caller(request)
    _quota_reader(request, ctx, project_id)
    return JSONResponse({"quota": await quotas.show(service(request), project_id)})


@router.get("/quotas/{project_id}/default")
async def quota_default(request: Request, project_id: str) -> JSONResponse:
    ctx = await caller(request)
    _quota_reader(request, ctx, project_id)
    values: dict[str, Any] = dict(quotas.defaults(service(request)))
    values["project_id"] = values["tenant_id"] = project_id
    return JSONResponse({"quota": values})


@router.get("/quotas/{project_id}/details")
async def quota_details(request: Request, project_id: str) -> JSONResponse:
    ctx = await caller(request)
    _quota_reader(request, ctx, project_id)
    return JSONResponse({"quota": await quotas.details(service(request), project_id)})


@router.put("/quotas/{project_id}")
async def quota_update(request: Request, project_id: str) -> JSONResponse:
    ctx = await caller(request)
    if not service(request).allowed(ctx, "update_quota", project_id):
        raise NeutronForbidden("(rule:update_quota) is disallowed by policy")
    bodies, _ = await body_of(request, "quota")
    return JSONResponse({"quota": await quotas.update(service(request), project_id,
                                                      bodies[0])})


@router.delete("/quotas/{project_id}", status_code=204)
async def quota_reset(request: Request, project_id: str) -> Response:
    ctx = await caller(request)
    if not service(request).allowed(ctx, "delete_quota", project_id):
        raise NeutronForbidden("(rule:delete_quota) is disallowed by policy")
    await quotas.reset(service(request), project_id)
    return no_content()


# -- tags -------------------------------------------------------------------------------------
@router.get("/{collection}/{ident}/tags")
async def tag_list(request: Request, collection: str, ident: str) -> JSONResponse:
    ctx = await caller(request)
    return JSONResponse({"tags": await tags.get_tags(service(request), ctx, collection,
                                                     ident)})


@router.put("/{collection}/{ident}/tags")
async def tag_replace(request: Request, collection: str, ident: str) -> JSONResponse:
    ctx = await caller(request)
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise NeutronBadRequest("Malformed request body", "HTTPBadRequest") from None
    if not isinstance(body, dict) or "tags" not in body:
        raise NeutronBadRequest("Invalid input for operation: tags is required.",
                                "InvalidInput")
    return JSONResponse({"tags": await tags.replace(service(request), ctx, collection, ident,
                                                    body["tags"])})


@router.delete("/{collection}/{ident}/tags", status_code=204)
async def tag_clear(request: Request, collection: str, ident: str) -> Response:
    ctx = await caller(request)
    await tags.remove(service(request), ctx, collection, ident, None)
    return no_content()


@router.get("/{collection}/{ident}/tags/{tag}", status_code=204)
async def tag_check(request: Request, collection: str, ident: str, tag: str) -> Response:
    ctx = await caller(request)
    await tags.has_tag(service(request), ctx, collection, ident, tag)
    return no_content()


@router.put("/{collection}/{ident}/tags/{tag}", status_code=201)
async def tag_add(request: Request, collection: str, ident: str, tag: str) -> Response:
    ctx = await caller(request)
    await tags.add(service(request), ctx, collection, ident, tag)
    return Response(status_code=201)


@router.delete("/{collection}/{ident}/tags/{tag}", status_code=204)
async def tag_remove(request: Request, collection: str, ident: str, tag: str) -> Response:
    ctx = await caller(request)
    await tags.remove(service(request), ctx, collection, ident, tag)
    return no_content()


# -- agents -----------------------------------------------------------------------------------
@router.get("/agents")
async def agent_list(request: Request) -> JSONResponse:
    ctx = await caller(request)
    svc = service(request)
    return listing(request, ctx, "agents", await agents.list_agents(svc, ctx),
                   svc.conf.max_limit)


@router.get("/agents/{ident}")
async def agent_show(request: Request, ident: str) -> JSONResponse:
    ctx = await caller(request)
    return JSONResponse({"agent": await agents.show(service(request), ctx, ident)})


@router.put("/agents/{ident}")
async def agent_update(request: Request, ident: str) -> JSONResponse:
    ctx = await caller(request)
    bodies, _ = await body_of(request, "agent")
    return JSONResponse({"agent": await agents.update(service(request), ctx, ident,
                                                      bodies[0])})


@router.delete("/agents/{ident}", status_code=204)
async def agent_delete(request: Request, ident: str) -> Response:
    ctx = await caller(request)
    await agents.delete_agent(service(request), ctx, ident)
    return no_content()


# -- network IP availability ------------------------------------------------------------------
@router.get("/network-ip-availabilities")
async def availability_list(request: Request) -> JSONResponse:
    ctx = await caller(request)
    svc = service(request)
    items = await availability.list_availability(svc, ctx)
    return listing(request, ctx, "network_ip_availabilities", items, svc.conf.max_limit)


@router.get("/network-ip-availabilities/{ident}")
async def availability_show(request: Request, ident: str) -> JSONResponse:
    ctx = await caller(request)
    items = await availability.list_availability(service(request), ctx, ident)
    return JSONResponse({"network_ip_availability": items[0]})
