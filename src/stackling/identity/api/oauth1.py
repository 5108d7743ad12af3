"""OS-OAUTH1 delegation routes: request and access tokens (signed by the consumer), request
token authorization (by the user), and ``/v3/users/{user_id}/OS-OAUTH1/access_tokens``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import Forbidden, MethodNotAllowed, NotFound, ValidationError
from stackling.common.timeutils import isotime
from stackling.identity.api.common import (
    authorize,
    base_url,
    caller,
    head_aware,
    identity,
    json_body,
    json_response,
    list_response,
    self_link,
)
from stackling.identity.models import OAuthAccessToken
from stackling.identity.service.oauth1 import OAuth1
from stackling.identity.service.oauth1_signature import SignedRequest
from stackling.identity.service.roles_admin import find_role, role_dict
from stackling.web.urls import public_url

router = APIRouter(prefix="/v3")
_FORM = "application/x-www-form-urlencoded"


def _oauth(request: Request) -> OAuth1:
    svc = identity(request)
    return OAuth1(svc.store, svc.credential_keys)


def signed_request(request: Request) -> SignedRequest:
    """The parts of ``request`` an OAuth1 signature covers."""
    return SignedRequest(method=request.method, url=public_url(request),
                         authorization=request.headers.get("authorization"),
                         query=list(request.query_params.multi_items()))


def _delegated(ctx: RequestContext) -> bool:
    return ("trust" in ctx.extra or "oauth1" in ctx.extra
            or "application_credential" in ctx.methods)


# -- the consumer's signed requests ----------------------------------------------------------

@router.post("/OS-OAUTH1/request_token")
async def create_request_token(request: Request) -> Response:
    issued = await _oauth(request).request_token(
        signed_request(request), request.headers.get("requested-project-id"))
    return Response(issued.form(), status_code=201, media_type=_FORM)


@router.post("/OS-OAUTH1/access_token")
async def create_access_token(request: Request) -> Response:
    issued = await _oauth(request).access_token(signed_request(request))
    return Response(issued.form(), status_code=201, media_type=_FORM)


@router.get("/OS-OAUTH1/request_token")
@router.get("/OS-OAUTH1/access_token")
async def not_allowed() -> Response:
    raise MethodNotAllowed("The method is not allowed for the requested URL.")


# -- the user's authorization ----------------------------------------------------------------

def _roles(body: dict[str, Any]) -> list[dict[str, str]]:
    roles = body.get("roles", [])
    if not isinstance(roles, list):
        raise ValidationError(f"Invalid input for field 'roles': {roles!r} is not of type "
                              "'array'")
    for item in roles:
        if (not isinstance(item, dict) or len(item) != 1 or not set(item) <= {"id", "name"}
                or not isinstance(next(iter(item.values())), str)):
            raise ValidationError(f"Invalid input for field 'roles': {item!r} must be an "
                                  "object with exactly one of 'id' or 'name'")
    return roles


@router.put("/OS-OAUTH1/authorize/{request_token_id}")
async def authorize_request_token(request: Request, request_token_id: str) -> Response:
    ctx = await authorize(request, "identity:authorize_request_token")
    roles = _roles(await json_body(request))
    if _delegated(ctx):
        raise Forbidden("Cannot authorize a request token with a token issued via "
                        "delegation.")
    assert ctx.user_id is not None
    verifier = await _oauth(request).authorize(request_token_id, ctx.user_id, roles)
    return json_response({"token": {"oauth_verifier": verifier}})


# -- a user's access tokens --------------------------------------------------------------------

def _token_path(user_id: str, token_id: str) -> str:
    return f"users/{user_id}/OS-OAUTH1/access_tokens/{token_id}"


def _render(request: Request, token: OAuthAccessToken) -> dict[str, Any]:
    path = _token_path(token.authorizing_user_id, token.id)
    return {"id": token.id, "consumer_id": token.consumer_id,
            "project_id": token.project_id, "authorizing_user_id": token.authorizing_user_id,
            "expires_at": isotime(token.expires_at) if token.expires_at else None,
            "links": {"self": f"{base_url(request)}/v3/{path}",
                      "roles": f"{base_url(request)}/v3/{path}/roles"}}


async def _manager(request: Request, rule: str) -> RequestContext:
    ctx = await authorize(request, rule, ctx=await caller(request))
    if _delegated(ctx):
        raise Forbidden("Cannot manage OAuth access tokens with a token issued via "
                        "delegation.")
    return ctx


@router.api_route("/users/{user_id}/OS-OAUTH1/access_tokens", methods=["GET", "HEAD"])
async def list_access_tokens(request: Request, user_id: str) -> Response:
    await _manager(request, "identity:list_access_tokens")
    tokens = await _oauth(request).list_access_tokens(user_id)
    return head_aware(request, list_response(request, "access_tokens",
                                             [_render(request, t) for t in tokens]))


@router.api_route("/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}",
                  methods=["GET", "HEAD"])
async def get_access_token(request: Request, user_id: str, access_token_id: str) -> Response:
    await _manager(request, "identity:get_access_token")
    token = await _oauth(request).get_access_token(user_id, access_token_id)
    return head_aware(request, json_response({"access_token": _render(request, token)}))


@router.delete("/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}")
async def delete_access_token(request: Request, user_id: str, access_token_id: str
                              ) -> Response:
    await _manager(request, "identity:delete_access_token")
    await _oauth(request).delete_access_token(user_id, access_token_id)
    return Response(status_code=204)


def _role_ref(request: Request, role: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in role.items() if k != "description"}
    return {**out, "links": self_link(request, f"roles/{role['id']}")}


async def _token_roles(request: Request, user_id: str, access_token_id: str
                       ) -> list[dict[str, Any]]:
    token = await _oauth(request).get_access_token(user_id, access_token_id)
    roles = []
    for role_id in token.role_ids:
        role = await find_role(identity(request).store, role_id)
        if role is not None:
            roles.append(_role_ref(request, role_dict(role)))
    return roles


@router.api_route("/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}/roles",
                  methods=["GET", "HEAD"])
async def list_access_token_roles(request: Request, user_id: str, access_token_id: str
                                  ) -> Response:
    await authorize(request, "identity:list_access_token_roles")
    roles = await _token_roles(request, user_id, access_token_id)
    return head_aware(request, list_response(request, "roles", roles))


@router.api_route(
    "/users/{user_id}/OS-OAUTH1/access_tokens/{access_token_id}/roles/{role_id}",
    methods=["GET", "HEAD"])
async def get_access_token_role(request: Request, user_id: str, access_token_id: str,
                                role_id: str) -> Response:
    await authorize(request, "identity:get_access_token_role")
    for role in await _token_roles(request, user_id, access_token_id):
        if role["id"] == role_id:
            return head_aware(request, json_response({"role": role}))
    raise NotFound(f"Could not find role: {role_id}.")
