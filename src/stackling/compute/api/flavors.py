"""``/v2.1/flavors``: list, detail, show, create/update/delete (admin), extra specs
(``os-extra_specs``) and private flavor access (``os-flavor-access``, ``action``)."""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import BadRequest, NotFound
from stackling.compute.api.common import (
    allowed,
    authorize,
    boolean,
    caller,
    compute,
    invalid,
    json_body,
    no_extra,
    obj,
    query_bool,
    required,
    string,
)
from stackling.compute.api.microversion import at_least
from stackling.compute.api.views import flavor_basic, flavor_detail
from stackling.compute.service import flavors
from stackling.web.pagination import page_links, parse_limit
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/flavors")

_ID_RE = re.compile(r"^(?! )[a-zA-Z0-9. _-]+(?<! )$")
_SPEC_KEY_RE = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
_INT_MAX = 2147483647


async def _list(request: Request, detail: bool) -> JSONResponse:
    ctx = await caller(request)
    svc = compute(request)
    q = request.query_params
    is_public: bool | None = True
    if ctx.is_admin and "is_public" in q:
        value = q["is_public"].lower()
        if value == "none":
            is_public = None
        else:
            try:
                is_public = query_bool(value, "is_public")
            except BadRequest:
                raise BadRequest(f"Invalid is_public filter [{q['is_public']}]") from None
    numbers: dict[str, int | None] = {}
    for param in ("minRam", "minDisk"):
        raw = q.get(param)
        numbers[param] = None
        if raw is not None:
            try:
                numbers[param] = int(raw)
            except ValueError:
                raise BadRequest(f"Invalid {param} filter [{raw}]") from None
    sort_key = q.get("sort_key", "flavorid")
    sort_dir = q.get("sort_dir", "asc")
    if sort_key not in flavors.SORT_KEYS:
        raise invalid("sort_key", sort_key, "is not one of the allowed values")
    if sort_dir not in ("asc", "desc"):
        raise invalid("sort_dir", sort_dir, "is not one of the allowed values")
    max_limit = svc.conf.max_limit
    limit = parse_limit(q.get("limit"), max_limit)
    effective = max_limit if limit is None else limit
    records = await flavors.list_flavors(
        svc.store, ctx, is_public=is_public, min_ram=numbers["minRam"],
        min_disk=numbers["minDisk"], sort_key=sort_key, sort_dir=sort_dir, limit=effective,
        marker=q.get("marker"))
    if detail:
        specs = at_least(request, "2.61") and allowed(
            request, ctx, "os_compute_api:os-flavor-extra-specs:index")
        items = [flavor_detail(request, f, specs) for f in records]
    else:
        items = [flavor_basic(request, f) for f in records]
    body: dict[str, Any] = {"flavors": items}
    nav = page_links(request, items, effective)
    if nav:
        body["flavors_links"] = nav
    return JSONResponse(body)


@router.get("")
async def list_flavors(request: Request) -> JSONResponse:
    return await _list(request, detail=False)


@router.get("/detail")
async def list_flavors_detail(request: Request) -> JSONResponse:
    return await _list(request, detail=True)


@router.get("/{flavor_id}")
async def show_flavor(request: Request, flavor_id: str) -> JSONResponse:
    ctx = await caller(request)
    record = await flavors.get(compute(request).store, ctx, flavor_id)
    specs = at_least(request, "2.61") and allowed(
        request, ctx, "os_compute_api:os-flavor-extra-specs:index")
    return JSONResponse({"flavor": flavor_detail(request, record, specs)})


def _number(body: dict[str, Any], key: str, minimum: int, default: int | None = None) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or value is None:
        raise invalid(key, value, f"{value!r} is not of type 'integer', 'string'")
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]+", value.strip()):
            raise invalid(key, value, f"{value!r} does not match '^[0-9]*$'")
        value = int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise invalid(key, value, f"{value!r} is not of type 'integer'")
        value = int(value)
    if not isinstance(value, int):
        raise invalid(key, value, f"{value!r} is not of type 'integer', 'string'")
    if value < minimum:
        raise invalid(key, value, f"{value} is less than the minimum of {minimum}")
    if value > _INT_MAX:
        raise invalid(key, value, f"{value} is greater than the maximum of {_INT_MAX}")
    return value


def _description(body: dict[str, Any]) -> str | None:
    value = body.get("description")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 65535 or any(
            ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
        raise invalid("description", value, "is not a valid description")
    return value


@router.post("")
async def create_flavor(request: Request) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-flavor-manage:create", {})
    f = obj(await json_body(request), "flavor")
    allowed_keys = {"name", "id", "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap",
                    "rxtx_factor", "os-flavor-access:is_public"}
    if at_least(request, "2.55"):
        allowed_keys.add("description")
    no_extra(f, allowed_keys, "flavor")
    for key in ("name", "ram", "vcpus", "disk"):
        required(f, key, "flavor")
    name = string(f, "name", min_len=1, max_len=255, name_like=True)
    assert name is not None
    flavorid = f.get("id")
    if flavorid is not None:
        if isinstance(flavorid, bool) or not isinstance(flavorid, str | int | float):
            raise invalid("id", flavorid, "is not of type 'string', 'number', 'null'")
        flavorid = str(flavorid)
        if not 1 <= len(flavorid) <= 255 or not _ID_RE.match(flavorid):
            raise invalid("id", flavorid, "does not match the allowed pattern")
    rxtx = f.get("rxtx_factor", 1.0)
    try:
        rxtx_value = float(rxtx)
    except (TypeError, ValueError):
        raise invalid("rxtx_factor", rxtx, "is not a number") from None
    if isinstance(rxtx, bool) or not 0 < rxtx_value <= 3.40282e38 or math.isnan(rxtx_value):
        raise invalid("rxtx_factor", rxtx, "is not a positive number")
    is_public = boolean(f.get("os-flavor-access:is_public", True), "os-flavor-access:is_public")
    record = await flavors.create(compute(request).store, flavors.FlavorCreate(
        name=name, flavorid=flavorid, memory_mb=_number(f, "ram", 1),
        vcpus=_number(f, "vcpus", 1), root_gb=_number(f, "disk", 0),
        ephemeral_gb=_number(f, "OS-FLV-EXT-DATA:ephemeral", 0, 0),
        swap=_number(f, "swap", 0, 0), rxtx_factor=rxtx_value, is_public=is_public,
        description=_description(f) if at_least(request, "2.55") else None))
    specs = at_least(request, "2.61")
    return JSONResponse({"flavor": flavor_detail(request, record, specs)})


@router.put("/{flavor_id}")
async def update_flavor(request: Request, flavor_id: str) -> JSONResponse:
    if not at_least(request, "2.55"):
        raise NotFound("The resource could not be found.")
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-flavor-manage:update", {})
    f = obj(await json_body(request), "flavor")
    no_extra(f, {"description"}, "flavor")
    required(f, "description", "flavor")
    record = await flavors.update_description(compute(request).store, flavor_id,
                                              _description(f))
    specs = at_least(request, "2.61")
    return JSONResponse({"flavor": flavor_detail(request, record, specs)})


@router.delete("/{flavor_id}")
async def delete_flavor(request: Request, flavor_id: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-flavor-manage:delete", {})
    await flavors.delete_flavor(compute(request).store, flavor_id)
    return Response(status_code=202)


# -- extra specs ------------------------------------------------------------------------------
def _spec_values(specs: Any) -> dict[str, str]:
    if not isinstance(specs, dict):
        raise invalid("extra_specs", specs, f"{specs!r} is not of type 'object'")
    out: dict[str, str] = {}
    for key, value in specs.items():
        if not _SPEC_KEY_RE.match(key):
            raise invalid("extra_specs", key, "does not match '^[a-zA-Z0-9-_:. ]{1,255}$'")
        if isinstance(value, bool):
            value = str(value)
        elif isinstance(value, int | float):
            value = str(value)
        if not isinstance(value, str) or len(value) > 255:
            raise invalid(f"extra_specs/{key}", value, "is not a string of 0-255 characters")
        out[key] = value
    return out


@router.get("/{flavor_id}/os-extra_specs")
async def list_extra_specs(request: Request, flavor_id: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-flavor-extra-specs:index")
    record = await flavors.get(compute(request).store, ctx, flavor_id)
    return JSONResponse({"extra_specs": record.extra_specs})


@router.post("/{flavor_id}/os-extra_specs")
async def create_extra_specs(request: Request, flavor_id: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-flavor-extra-specs:create", {})
    body = await json_body(request)
    no_extra(body, {"extra_specs"}, "")
    specs = _spec_values(required(body, "extra_specs"))
    await flavors.set_extra_specs(compute(request).store, flavor_id, specs)
    return JSONResponse({"extra_specs": specs})


@router.get("/{flavor_id}/os-extra_specs/{key}")
async def show_extra_spec(request: Request, flavor_id: str, key: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-flavor-extra-specs:show")
    record = await flavors.get(compute(request).store, ctx, flavor_id)
    if key not in record.extra_specs:
        raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
    return JSONResponse({key: record.extra_specs[key]})


@router.put("/{flavor_id}/os-extra_specs/{key}")
async def update_extra_spec(request: Request, flavor_id: str, key: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-flavor-extra-specs:update", {})
    body = await json_body(request)
    specs = _spec_values(body)
    if key not in specs:
        raise BadRequest("Request body and URI mismatch")
    if len(specs) > 1:
        raise BadRequest("Request body contains too many items")
    await flavors.set_extra_specs(compute(request).store, flavor_id, specs)
    return JSONResponse(specs)


@router.delete("/{flavor_id}/os-extra_specs/{key}")
async def delete_extra_spec(request: Request, flavor_id: str, key: str) -> Response:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-flavor-extra-specs:delete", {})
    await flavors.delete_extra_spec(compute(request).store, flavor_id, key)
    return Response(status_code=200)


# -- access ---------------------------------------------------------------------------------
def _access(flavor_id: str, projects: list[str]) -> JSONResponse:
    return JSONResponse({"flavor_access": [{"flavor_id": flavor_id, "tenant_id": p}
                                           for p in projects]})


@router.get("/{flavor_id}/os-flavor-access")
async def list_access(request: Request, flavor_id: str) -> JSONResponse:
    ctx = await caller(request)
    authorize(request, ctx, "os_compute_api:os-flavor-access", {})
    return _access(flavor_id, await flavors.access_list(compute(request).store, flavor_id))


@router.post("/{flavor_id}/action")
async def flavor_action(request: Request, flavor_id: str) -> JSONResponse:
    ctx = await caller(request)
    body = await json_body(request)
    store = compute(request).store
    if "addTenantAccess" in body:
        authorize(request, ctx, "os_compute_api:os-flavor-access:add_tenant_access", {})
        project = _tenant(body["addTenantAccess"], "addTenantAccess")
        return _access(flavor_id, await flavors.add_access(store, flavor_id, project))
    if "removeTenantAccess" in body:
        authorize(request, ctx, "os_compute_api:os-flavor-access:remove_tenant_access", {})
        project = _tenant(body["removeTenantAccess"], "removeTenantAccess")
        return _access(flavor_id, await flavors.remove_access(store, flavor_id, project))
    raise BadRequest("Invalid flavor action: expected addTenantAccess or removeTenantAccess")


def _tenant(value: Any, where: str) -> str:
    if not isinstance(value, dict):
        raise invalid(where, value, "is not of type 'object'")
    no_extra(value, {"tenant"}, where)
    tenant = string(value, "tenant", min_len=1, max_len=255)
    assert tenant is not None
    return tenant
