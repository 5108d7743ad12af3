"""``/v2/metadefs``: namespaces and their objects, properties, tags, resource types."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest
from stackling.image.api.common import (
    Caller,
    caller,
    json_object,
    json_response,
    no_content,
    service,
)
from stackling.image.service import metadefs

router = APIRouter()
NS = "/v2/metadefs/namespaces"


async def _admin(request: Request, rule: str) -> Caller:
    c = await caller(request)
    c.enforce(rule, {"project_id": c.project_id})
    return c


async def _reader(request: Request, rule: str) -> Caller:
    c = await caller(request)
    c.enforce(rule, {"project_id": c.project_id, "visibility": "public"})
    return c


@router.get(NS)
async def list_namespaces(request: Request) -> Response:
    c = await _reader(request, "get_metadef_namespaces")
    svc = service(request)
    params = dict(request.query_params)
    try:
        limit = min(int(params.pop("limit", svc.conf.limit_param_default)),
                    svc.conf.api_limit_max)
    except ValueError:
        raise BadRequest("limit param must be an integer") from None
    if limit < 0:
        raise BadRequest("limit param must be positive")
    marker = params.pop("marker", None)
    sort_key = params.pop("sort_key", "created_at")
    sort_dir = params.pop("sort_dir", "desc")
    if "visibility" in params and params["visibility"] not in ("public", "private"):
        raise BadRequest(f"Invalid visibility value: {params['visibility']}")
    views, more = await metadefs.list_namespaces(svc, c.project_id, c.is_admin, params, limit,
                                                 marker, sort_key, sort_dir)
    rest = {k: v for k, v in request.query_params.items() if k != "marker"}
    body: dict[str, Any] = {"namespaces": views,
                            "first": NS + (f"?{urlencode(rest)}" if rest else ""),
                            "schema": "/v2/schemas/metadefs/namespaces"}
    if more and views:
        body["next"] = f"{NS}?{urlencode({**rest, 'marker': views[-1]['namespace']})}"
    return json_response(body)


@router.post(NS)
async def create_namespace(request: Request) -> Response:
    c = await _admin(request, "add_metadef_namespace")
    body = await json_object(request)
    view = await metadefs.create_namespace(service(request), c.project_id, body)
    return json_response(view, 201)


@router.get(NS + "/{ns}")
async def show_namespace(request: Request, ns: str) -> Response:
    c = await caller(request)
    return json_response(await metadefs.show_namespace(service(request), ns, c.project_id,
                                                       c.is_admin))


@router.put(NS + "/{ns}")
async def update_namespace(request: Request, ns: str) -> Response:
    await _admin(request, "modify_metadef_namespace")
    body = await json_object(request)
    return json_response(await metadefs.update_namespace(service(request), ns, body))


@router.delete(NS + "/{ns}")
async def delete_namespace(request: Request, ns: str) -> Response:
    await _admin(request, "delete_metadef_namespace")
    await metadefs.delete_namespace(service(request), ns)
    return no_content()


# objects ------------------------------------------------------------------------------------

@router.get(NS + "/{ns}/objects")
async def list_objects(request: Request, ns: str) -> Response:
    c = await caller(request)
    objects = await metadefs.list_objects(service(request), ns, c.project_id, c.is_admin)
    return json_response({"objects": objects, "schema": "v2/schemas/metadefs/objects"})


@router.post(NS + "/{ns}/objects")
async def create_object(request: Request, ns: str) -> Response:
    await _admin(request, "add_metadef_object")
    body = await json_object(request)
    return json_response(await metadefs.create_object(service(request), ns, body), 201)


@router.delete(NS + "/{ns}/objects")
async def delete_objects(request: Request, ns: str) -> Response:
    await _admin(request, "delete_metadef_object")
    await metadefs.delete_children(service(request), ns, "objects")
    return no_content()


@router.get(NS + "/{ns}/objects/{name}")
async def show_object(request: Request, ns: str, name: str) -> Response:
    c = await caller(request)
    return json_response(await metadefs.show_object(service(request), ns, name, c.project_id,
                                                    c.is_admin))


@router.put(NS + "/{ns}/objects/{name}")
async def update_object(request: Request, ns: str, name: str) -> Response:
    await _admin(request, "modify_metadef_object")
    body = await json_object(request)
    return json_response(await metadefs.update_object(service(request), ns, name, body))


@router.delete(NS + "/{ns}/objects/{name}")
async def delete_object(request: Request, ns: str, name: str) -> Response:
    await _admin(request, "delete_metadef_object")
    await metadefs.delete_object(service(request), ns, name)
    return no_content()


# properties ---------------------------------------------------------------------------------

@router.get(NS + "/{ns}/properties")
async def list_properties(request: Request, ns: str) -> Response:
    c = await caller(request)
    props = await metadefs.list_properties(service(request), ns, c.project_id, c.is_admin)
    return json_response({"properties": props})


@router.post(NS + "/{ns}/properties")
async def create_property(request: Request, ns: str) -> Response:
    await _admin(request, "add_metadef_property")
    body = await json_object(request)
    return json_response(await metadefs.create_property(service(request), ns, body), 201)


@router.delete(NS + "/{ns}/properties")
async def delete_properties(request: Request, ns: str) -> Response:
    await _admin(request, "remove_metadef_property")
    await metadefs.delete_children(service(request), ns, "properties")
    return no_content()


@router.get(NS + "/{ns}/properties/{name}")
async def show_property(request: Request, ns: str, name: str) -> Response:
    c = await caller(request)
    return json_response(await metadefs.show_property(service(request), ns, name,
                                                      c.project_id, c.is_admin))


@router.put(NS + "/{ns}/properties/{name}")
async def update_property(request: Request, ns: str, name: str) -> Response:
    await _admin(request, "modify_metadef_property")
    body = await json_object(request)
    return json_response(await metadefs.update_property(service(request), ns, name, body))


@router.delete(NS + "/{ns}/properties/{name}")
async def delete_property(request: Request, ns: str, name: str) -> Response:
    await _admin(request, "remove_metadef_property")
    await metadefs.delete_property(service(request), ns, name)
    return no_content()


# tags ---------------------------------------------------------------------------------------

@router.get(NS + "/{ns}/tags")
async def list_tags(request: Request, ns: str) -> Response:
    c = await caller(request)
    tags = await metadefs.list_tags(service(request), ns, c.project_id, c.is_admin)
    return json_response({"tags": tags})


@router.post(NS + "/{ns}/tags")
async def create_tags(request: Request, ns: str) -> Response:
    await _admin(request, "add_metadef_tags")
    body = await json_object(request)
    raw = body.get("tags")
    if not isinstance(raw, list) or not all(isinstance(t, dict) and
                                            isinstance(t.get("name"), str) for t in raw):
        raise BadRequest("Invalid input for field/attribute tags.")
    append = request.headers.get("x-openstack-append", "").lower() == "true"
    tags = await metadefs.create_tags(service(request), ns, [t["name"] for t in raw],
                                      replace=not append)
    return json_response({"tags": tags}, 201)


@router.delete(NS + "/{ns}/tags")
async def delete_tags(request: Request, ns: str) -> Response:
    await _admin(request, "delete_metadef_tags")
    await metadefs.delete_children(service(request), ns, "tags")
    return no_content()


@router.post(NS + "/{ns}/tags/{name}")
async def create_tag(request: Request, ns: str, name: str) -> Response:
    await _admin(request, "add_metadef_tag")
    tags = await metadefs.create_tags(service(request), ns, [name], replace=False)
    return json_response(tags[0], 201)


@router.get(NS + "/{ns}/tags/{name}")
async def show_tag(request: Request, ns: str, name: str) -> Response:
    c = await caller(request)
    return json_response(await metadefs.show_tag(service(request), ns, name, c.project_id,
                                                 c.is_admin))


@router.put(NS + "/{ns}/tags/{name}")
async def update_tag(request: Request, ns: str, name: str) -> Response:
    await _admin(request, "modify_metadef_tag")
    body = await json_object(request)
    new_name = body.get("name")
    if not isinstance(new_name, str) or not new_name:
        raise BadRequest("Invalid input for field/attribute name.")
    return json_response(await metadefs.update_tag(service(request), ns, name, new_name))


@router.delete(NS + "/{ns}/tags/{name}")
async def delete_tag(request: Request, ns: str, name: str) -> Response:
    await _admin(request, "delete_metadef_tag")
    await metadefs.delete_tag(service(request), ns, name)
    return no_content()


# resource types -----------------------------------------------------------------------------

@router.get("/v2/metadefs/resource_types")
async def list_resource_types(request: Request) -> Response:
    await _reader(request, "list_metadef_resource_types")
    return json_response({"resource_types": await metadefs.list_resource_types(
        service(request))})


@router.get(NS + "/{ns}/resource_types")
async def list_associations(request: Request, ns: str) -> Response:
    c = await caller(request)
    found = await metadefs.associations(service(request), ns, c.project_id, c.is_admin)
    return json_response({"resource_type_associations": found})


@router.post(NS + "/{ns}/resource_types")
async def associate(request: Request, ns: str) -> Response:
    await _admin(request, "add_metadef_resource_type_association")
    body = await json_object(request)
    return json_response(await metadefs.associate(service(request), ns, body), 201)


@router.delete(NS + "/{ns}/resource_types/{name}")
async def dissociate(request: Request, ns: str, name: str) -> Response:
    await _admin(request, "remove_metadef_resource_type_association")
    await metadefs.dissociate(service(request), ns, name)
    return no_content()
