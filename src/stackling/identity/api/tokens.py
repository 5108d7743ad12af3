"""``/v3/auth/tokens`` and ``/v3/auth/{catalog,projects,domains,system}``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.responses import Response

from stackling.common.errors import NotFound, Unauthorized
from stackling.identity.api.common import (
    authorize,
    base_url,
    caller,
    identity,
    json_body,
    json_response,
    query_flag,
)
from stackling.identity.api.oauth1 import signed_request
from stackling.identity.models import SYSTEM_TARGET, Assignment, Project
from stackling.identity.service.identity import access_rules_of
from stackling.identity.service.receipts import RECEIPT_HEADER, InsufficientAuthMethods
from stackling.identity.service.roles import group_ids_of, project_roles
from stackling.identity.service.tokens import ValidatedToken
from stackling.web import access_rules

router = APIRouter(prefix="/v3/auth")


@router.post("/tokens")
async def issue_token(request: Request) -> Response:
    svc = identity(request)
    body = await json_body(request)
    try:
        vt = await svc.authenticator.authenticate(body, request.headers.get(RECEIPT_HEADER),
                                                  signed=signed_request(request))
    except InsufficientAuthMethods as exc:  # multi-factor rules: 401 with a receipt
        return json_response(exc.body, status=401, headers={RECEIPT_HEADER: exc.receipt.id})
    rendered = await svc.tokens.render(vt, include_catalog=not query_flag(request, "nocatalog"))
    return json_response(rendered, status=201, headers={"X-Subject-Token": vt.id})


async def _subject(request: Request) -> ValidatedToken:
    """Validate the caller's token, then check it may look at the subject token."""
    svc = identity(request)
    ctx = await caller(request)
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise NotFound("Could not find token.")
    vt = await svc.tokens.validate(subject, allow_expired=query_flag(request, "allow_expired"))
    if not enforces_access_rules(request, vt):
        # the token is limited by access rules the validating service would not enforce
        raise NotFound("Could not find token.")
    await authorize(request, "identity:validate_token",
                    {"token": {"user_id": vt.data.user_id}}, ctx=ctx)
    return vt


def enforces_access_rules(request: Request, vt: ValidatedToken) -> bool:
    """False when ``vt`` carries access rules and the validator did not say (with the
    ``OpenStack-Identity-Access-Rules`` header, Keystone's rule) that it enforces them."""
    if access_rules_of(vt.scope.app_cred) is None:
        return True
    return header_version(request.headers.get(access_rules.HEADER)) >= 1.0


def header_version(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


@router.get("/tokens")
async def validate_token(request: Request) -> Response:
    svc = identity(request)
    vt = await _subject(request)
    body = await svc.tokens.render_json(vt, not query_flag(request, "nocatalog"))
    return Response(body, media_type="application/json", headers={"X-Subject-Token": vt.id})


@router.head("/tokens")
async def check_token(request: Request) -> Response:
    vt = await _subject(request)
    return Response(status_code=200, headers={"X-Subject-Token": vt.id})


@router.delete("/tokens")
async def revoke_token(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise NotFound("Could not find token.")
    vt = await svc.tokens.validate(subject)
    await authorize(request, "identity:revoke_token", {"token": {"user_id": vt.data.user_id}},
                    ctx=ctx)
    await svc.revocations.revoke(audit_id=vt.data.audit_ids[0])
    return Response(status_code=204)


@router.get("/catalog")
async def auth_catalog(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    if not (ctx.project_id or ctx.domain_id or ctx.system_scope):
        raise Unauthorized("The request you have made requires a scoped token.")
    vt = await svc.tokens.validate(ctx.token or "")
    rendered = await svc.tokens.render(vt)
    return json_response({"catalog": rendered["token"]["catalog"],
                          "links": {"self": f"{base_url(request)}/v3/auth/catalog",
                                    "previous": None, "next": None}})


async def _targets(request: Request, kind: str) -> list[Project]:
    svc = identity(request)
    ctx = await caller(request)
    assert ctx.user_id is not None
    async with svc.store.read() as session:
        actors = [ctx.user_id, *await group_ids_of(session, ctx.user_id)]
        rows = await session.scalars(select(Assignment.target_id).where(
            Assignment.actor_id.in_(actors)))
        ids = set(rows.all())
        # inherited assignments on a domain reach every project in it
        if kind == "domains":
            found = (await session.scalars(select(Project).where(
                Project.id.in_(ids), Project.is_domain.is_(True)))).all()
            return sorted((d for d in found if d.enabled), key=lambda d: d.name)
        # inherited assignments on a domain or a parent reach the projects below it
        candidates = (await session.scalars(select(Project).where(
            Project.is_domain.is_(False),
            Project.id.in_(ids) | Project.domain_id.in_(ids) | Project.parent_id.in_(ids),
        ))).all()
        wanted = [p for p in candidates
                  if p.enabled and await project_roles(session, ctx.user_id, p.id)]
    return sorted(wanted, key=lambda p: p.name)


def _ref(request: Request, p: Project, kind: str) -> dict[str, object]:
    out: dict[str, object] = {
        "id": p.id, "name": p.name, "enabled": p.enabled, "description": p.description or "",
        "links": {"self": f"{base_url(request)}/v3/{kind}/{p.id}"},
    }
    if kind == "projects":
        out.update(domain_id=p.domain_id, parent_id=p.parent_id or p.domain_id,
                   is_domain=p.is_domain)
    return out


@router.get("/projects")
async def auth_projects(request: Request) -> Response:
    projects = await _targets(request, "projects")
    return json_response({"projects": [_ref(request, p, "projects") for p in projects],
                          "links": {"self": f"{base_url(request)}/v3/auth/projects",
                                    "previous": None, "next": None}})


@router.get("/domains")
async def auth_domains(request: Request) -> Response:
    domains = await _targets(request, "domains")
    return json_response({"domains": [_ref(request, d, "domains") for d in domains],
                          "links": {"self": f"{base_url(request)}/v3/auth/domains",
                                    "previous": None, "next": None}})


@router.get("/system")
async def auth_system(request: Request) -> Response:
    svc = identity(request)
    ctx = await caller(request)
    assert ctx.user_id is not None
    async with svc.store.read() as session:
        actors = [ctx.user_id, *await group_ids_of(session, ctx.user_id)]
        found = (await session.scalars(select(Assignment.role_id).where(
            Assignment.actor_id.in_(actors), Assignment.target_id == SYSTEM_TARGET))).first()
    return json_response({"system": [{"all": True}] if found else [],
                          "links": {"self": f"{base_url(request)}/v3/auth/system",
                                    "previous": None, "next": None}})
