"""``/v3/domains``: list, create, show, update, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import NotFound, ValidationError
from stackling.identity.api import resource_fields as f
from stackling.identity.api.common import authorize, caller, identity, json_body, require_object
from stackling.identity.service import domains
from stackling.identity.service.projects import NewProject

router = APIRouter(prefix="/v3/domains")

_FIELDS = ("name", "description", "enabled", "options", "tags")


def _changes(body: dict[str, Any], creating: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "name":
            out[key] = f.name(value, "domain.name")
        elif key == "description":
            out[key] = f.text(value, "domain.description")
        elif key == "enabled":
            out[key] = f.boolean(value, "domain.enabled")
        elif key == "options":
            out[key] = f.options(value, f.PROJECT_OPTIONS, "domain.options")
        elif key == "tags":
            out[key] = f.tags(value, "domain.tags")
        elif key == "explicit_domain_id" and creating:
            out[key] = f.explicit_id(value, "domain.explicit_domain_id")
        elif key in ("id", "links"):
            continue
        else:
            out[key] = value
    return out


def _top_level(body: dict[str, Any]) -> dict[str, Any]:
    extra = set(body) - {"domain"}
    if extra:
        raise ValidationError(f"Invalid input for field '/': additional properties are not "
                              f"allowed ({', '.join(sorted(extra))} unexpected)")
    return require_object(body, "domain")


@router.api_route("", methods=["GET", "HEAD"])
async def list_domains(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    target: dict[str, Any] = {"domain": {"id": ctx.domain_id}} if ctx.domain_id else {}
    await authorize(request, "identity:list_domains", target, ctx=ctx)
    refs = await domains.list_domains(svc)
    if ctx.domain_id:
        refs = [r for r in refs if r["id"] == ctx.domain_id]
    refs = [f.with_link(request, "domains", r) for r in refs]
    response = f.collection(request, "domains", refs, f.filters(request, ("name", "enabled")))
    return f.no_body(request) if request.method == "HEAD" else response


@router.post("")
async def create_domain(request: Request) -> Response:
    svc = identity(request)
    await authorize(request, "identity:create_domain")
    body = _changes(_top_level(await json_body(request)), creating=True)
    if "name" not in body:
        raise ValidationError("Invalid input for field 'domain': 'name' is a required property")
    extra = {k: v for k, v in f.normalize_keys(body).items()
             if k not in (*_FIELDS, "explicit_domain_id")}
    spec = NewProject(name=body["name"], enabled=body.get("enabled", True),
                      description=body.get("description", ""), tags=body.get("tags", []),
                      options=body.get("options", {}), extra=extra,
                      id=body.get("explicit_domain_id"))
    ref = await domains.create(svc, spec)
    return f.member(request, "domains", "domain", ref, status=201)


@router.api_route("/{domain_id}", methods=["GET", "HEAD"])
async def get_domain(request: Request, domain_id: str) -> Response:
    svc = identity(request)
    ref = await domains.get(svc, domain_id)
    await authorize(request, "identity:get_domain", {"domain": ref or {}})
    if ref is None:
        raise NotFound(f"Could not find domain: {domain_id}.")
    if request.method == "HEAD":
        return f.no_body(request)
    return f.member(request, "domains", "domain", ref)


@router.patch("/{domain_id}")
async def update_domain(request: Request, domain_id: str) -> Response:
    svc = identity(request)
    await authorize(request, "identity:update_domain")
    raw = _top_level(await json_body(request))
    if not raw:
        raise ValidationError("Invalid input for field 'domain': {} does not have enough "
                              "properties")
    if raw.get("id") not in (None, domain_id):
        raise ValidationError("Cannot change ID")
    ref = await domains.update(svc, domain_id, _changes(raw, creating=False))
    return f.member(request, "domains", "domain", ref)


@router.delete("/{domain_id}")
async def delete_domain(request: Request, domain_id: str) -> Response:
    svc = identity(request)
    await authorize(request, "identity:delete_domain")
    await domains.delete_domain(svc, domain_id)
    return Response(status_code=204)
