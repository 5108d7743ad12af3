"""``/v3/projects`` (with hierarchy views and tags) and ``/v3/users/{id}/projects``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import NotFound, ValidationError
from stackling.identity.api import resource_fields as f
from stackling.identity.api.common import (
    authorize,
    base_url,
    caller,
    identity,
    json_body,
    json_response,
    require_object,
)
from stackling.identity.service import domains, project_tags, projects, users
from stackling.identity.service.listing import as_bool

router = APIRouter()

_FILTERS = ("domain_id", "enabled", "name", "parent_id", "is_domain")
_TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
_KNOWN = ("name", "description", "domain_id", "enabled", "is_domain", "parent_id", "tags",
          "options")


def _check(body: dict[str, Any]) -> dict[str, Any]:
    """Type-check a project body (create or update); unknown keys pass as extras."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "name":
            out[key] = f.name(value, "project.name")
        elif key == "description":
            out[key] = f.text(value, "project.description")
        elif key in ("domain_id", "parent_id"):
            out[key] = f.ident(value, f"project.{key}")
        elif key in ("enabled", "is_domain"):
            out[key] = f.boolean(value, f"project.{key}")
        elif key == "tags":
            out[key] = f.tags(value, "project.tags")
        elif key == "options":
            out[key] = f.options(value, f.PROJECT_OPTIONS, "project.options")
        elif key == "links":
            continue
        else:
            out[key] = value
    return out


def _body(raw: dict[str, Any]) -> dict[str, Any]:
    extra = set(raw) - {"project"}
    if extra:
        raise ValidationError("Invalid input for field '/': additional properties are not "
                              f"allowed ({', '.join(sorted(extra))} unexpected)")
    return require_object(raw, "project")


def _target(ref: dict[str, Any] | None) -> dict[str, Any]:
    return {"project": ref or {}}


async def _authorized_project(request: Request, rule: str, project_id: str
                              ) -> tuple[RequestContext, dict[str, Any]]:
    """Policy first (with the project as target when it exists), then 404 if it does not."""
    svc = identity(request)
    async with svc.store.read() as session:
        row = await projects.load(session, project_id)
        ref = None
        if row is not None:
            ref = projects.render(row, (await projects.tags_of(session, [row.id]))[row.id])
    ctx = await authorize(request, rule, _target(ref))
    if ref is None:
        raise NotFound(f"Could not find project: {project_id}.")
    return ctx, ref


def _flag(request: Request, name: str) -> bool:
    """Keystone's ``query_filter_is_true``: present and not ``0``."""
    return name in request.query_params and request.query_params[name] != "0"


@router.api_route("/v3/projects", methods=["GET", "HEAD"])
async def list_projects(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    params = request.query_params
    target: dict[str, Any] = {"domain_id": ctx.domain_id} if ctx.domain_id else {}
    await authorize(request, "identity:list_projects", target, ctx=ctx)
    is_domain = as_bool("is_domain", params["is_domain"]) if "is_domain" in params else False
    refs = await projects.list_projects(svc, is_domain=is_domain)
    refs = project_tags.tag_filter(refs, {k: params[k] for k in _TAG_FILTERS if k in params})
    if ctx.domain_id:
        refs = [r for r in refs if r["domain_id"] == ctx.domain_id]
    refs = [f.with_link(request, "projects", r) for r in refs]
    applied = [x for x in f.filters(request, _FILTERS) if x.name != "is_domain"]
    response = f.collection(request, "projects", refs, applied)
    return f.no_body(request) if request.method == "HEAD" else response


@router.post("/v3/projects")
async def create_project(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    raw = _body(await json_body(request))
    await authorize(request, "identity:create_project", {"project": raw}, ctx=ctx)
    body = _check(raw)
    if "name" not in body:
        raise ValidationError("Invalid input for field 'project': 'name' is a required "
                              "property")
    is_domain = body.get("is_domain", False)
    domain_id = body.get("domain_id")
    parent_id = body.get("parent_id")
    if not is_domain and not domain_id:
        inferred = await projects.default_domain_for(svc, parent_id) if parent_id else None
        domain_id = ctx.domain_id or inferred or "default"
    extra = {k: v for k, v in f.normalize_keys(body).items() if k not in (*_KNOWN, "id")}
    spec = projects.NewProject(
        name=body["name"], domain_id=domain_id, parent_id=parent_id, is_domain=is_domain,
        enabled=body.get("enabled", True), description=body.get("description", ""),
        tags=body.get("tags", []), options=body.get("options", {}), extra=extra)
    ref = await projects.create(svc, spec)
    return f.member(request, "projects", "project", ref, status=201)


@router.api_route("/v3/projects/{project_id}", methods=["GET", "HEAD"])
async def get_project(request: Request, project_id: str) -> Response:
    svc = identity(request)
    ctx, ref = await _authorized_project(request, "identity:get_project", project_id)
    parents = "list" if _flag(request, "parents_as_list") else None
    if _flag(request, "parents_as_ids"):
        if parents:
            raise ValidationError("Cannot use parents_as_list and parents_as_ids query params "
                                  "at the same time.")
        parents = "ids"
    subtree = "list" if _flag(request, "subtree_as_list") else None
    if _flag(request, "subtree_as_ids"):
        if subtree:
            raise ValidationError("Cannot use subtree_as_list and subtree_as_ids query params "
                                  "at the same time.")
        subtree = "ids"
    if parents or subtree:
        more = await projects.expand(svc, project_id, parents=parents, subtree=subtree,
                                     user_id=ctx.user_id)
        for key, value in more.items():
            if isinstance(value, list):
                value = [{"project": f.with_link(request, "projects", p)} for p in value]
            ref[key] = value
    if request.method == "HEAD":
        return f.no_body(request)
    return f.member(request, "projects", "project", ref)


@router.patch("/v3/projects/{project_id}")
async def update_project(request: Request, project_id: str) -> Response:
    svc = identity(request)
    await _authorized_project(request, "identity:update_project", project_id)
    raw = _body(await json_body(request))
    if raw.get("id") not in (None, project_id):
        raise ValidationError("Cannot change ID")
    ref = await projects.update(svc, project_id, _check(raw))
    return f.member(request, "projects", "project", ref)


@router.delete("/v3/projects/{project_id}")
async def delete_project(request: Request, project_id: str) -> Response:
    svc = identity(request)
    _, ref = await _authorized_project(request, "identity:delete_project", project_id)
    if ref["is_domain"]:
        await domains.delete_domain(svc, project_id)
    else:
        await projects.delete_project(svc, project_id)
    return Response(status_code=204)


# -- tags -----------------------------------------------------------------------------------


def _tags_response(request: Request, tags: list[str]) -> Response:
    url = f"{base_url(request)}{request.url.path.split('/identity', 1)[-1]}"
    return json_response({"tags": tags, "links": {"self": url}})


@router.api_route("/v3/projects/{project_id}/tags", methods=["GET", "HEAD"])
async def list_tags(request: Request, project_id: str) -> Response:
    _, ref = await _authorized_project(request, "identity:list_project_tags", project_id)
    if request.method == "HEAD":
        return f.no_body(request)
    return _tags_response(request, ref["tags"])


@router.put("/v3/projects/{project_id}/tags")
async def replace_tags(request: Request, project_id: str) -> Response:
    svc = identity(request)
    await _authorized_project(request, "identity:update_project_tags", project_id)
    body = await json_body(request)
    extra = set(body) - {"tags"}
    if extra:
        raise ValidationError("Invalid input for field '/': additional properties are not "
                              f"allowed ({', '.join(sorted(extra))} unexpected)")
    wanted = f.tags(body.get("tags", []))
    ref = await projects.update(svc, project_id, {"tags": wanted})
    return _tags_response(request, ref["tags"])


@router.delete("/v3/projects/{project_id}/tags")
async def delete_tags(request: Request, project_id: str) -> Response:
    svc = identity(request)
    await _authorized_project(request, "identity:delete_project_tags", project_id)
    await projects.update(svc, project_id, {"tags": []})
    return Response(status_code=204)


@router.api_route("/v3/projects/{project_id}/tags/{value}", methods=["GET", "HEAD"])
async def check_tag(request: Request, project_id: str, value: str) -> Response:
    _, ref = await _authorized_project(request, "identity:get_project_tag", project_id)
    if value not in ref["tags"]:
        raise NotFound(f"Could not find project tag: {value}.")
    return Response(status_code=204)


@router.put("/v3/projects/{project_id}/tags/{value}")
async def add_tag(request: Request, project_id: str, value: str) -> Response:
    svc = identity(request)
    await _authorized_project(request, "identity:create_project_tag", project_id)
    f.tag(value)
    await project_tags.add_tag(svc, project_id, value, f.MAX_TAGS)
    url = f"{base_url(request)}/v3/projects/{project_id}/tags/{value}"
    return Response(status_code=201, headers={"Location": url})


@router.delete("/v3/projects/{project_id}/tags/{value}")
async def delete_tag(request: Request, project_id: str, value: str) -> Response:
    svc = identity(request)
    await _authorized_project(request, "identity:delete_project_tag", project_id)
    await project_tags.remove_tag(svc, project_id, value)
    return Response(status_code=204)


# -- a user's projects ----------------------------------------------------------------------


@router.api_route("/v3/users/{user_id}/projects", methods=["GET", "HEAD"])
async def list_user_projects(request: Request, user_id: str) -> Response:
    svc = identity(request)
    user = await users.get(svc, user_id)
    await authorize(request, "identity:list_user_projects", {"user": user or {},
                                                             "user_id": user_id})
    refs = await projects.projects_for_user(svc, user_id) if user is not None else []
    refs = [f.with_link(request, "projects", r) for r in refs]
    response = f.collection(request, "projects", refs,
                            f.filters(request, ("domain_id", "enabled", "name")))
    return f.no_body(request) if request.method == "HEAD" else response
