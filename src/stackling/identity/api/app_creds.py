"""``/v3/users/{user_id}/application_credentials`` and ``/v3/users/{user_id}/access_rules``.

Access rules are stored and returned; they are not enforced on requests made with the
credential's tokens (Keystone leaves that to keystonemiddleware in each service).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Forbidden, NotFound, ValidationError
from stackling.common.timeutils import parse_isotime
from stackling.identity.api.common import (
    authorize,
    caller,
    head_aware,
    identity,
    json_body,
    json_response,
    list_response,
    require_object,
    self_link,
)
from stackling.identity.service.app_creds import (
    ACCESS_RULE_METHODS,
    AppCreds,
    AppCredView,
    NewAppCred,
)

router = APIRouter(prefix="/v3/users/{user_id}")

_ID = re.compile(r"^[a-zA-Z0-9-]{1,64}$")
_CREATE_FIELDS = {"id", "name", "secret", "description", "expires_at", "project_id",
                  "access_rules", "unrestricted", "system", "roles"}


def _app_creds(request: Request) -> AppCreds:
    svc = identity(request)
    return AppCreds(svc.store, svc.hasher, svc.revocations)


def _render(request: Request, view: AppCredView) -> dict[str, Any]:
    cred = view.cred
    out: dict[str, Any] = {
        "id": cred.id, "name": cred.name, "description": cred.description,
        "user_id": cred.user_id, "project_id": cred.project_id, "system": cred.system,
        # Keystone renders this one naive (no "Z"), as the client sent it
        "expires_at": cred.expires_at.replace(tzinfo=None).isoformat()
        if cred.expires_at else None,
        "unrestricted": cred.unrestricted,
        "roles": view.roles,
        "links": self_link(request, f"users/{cred.user_id}/application_credentials/{cred.id}"),
    }
    if cred.access_rules:
        out["access_rules"] = cred.access_rules
    if view.secret is not None:
        out["secret"] = view.secret
    return out


async def check_unrestricted(request: Request, ctx: RequestContext, what: str) -> None:
    """A token from a restricted application credential may not manage credentials
    (Keystone's ``_check_unrestricted_application_credential``)."""
    if "application_credential" not in ctx.methods or not ctx.application_credential_id:
        return
    cred = await _app_creds(request).find(ctx.application_credential_id)
    if cred is None or not cred.unrestricted:
        raise Forbidden("You are not authorized to perform the requested action: Using "
                        "method 'application_credential' is not allowed for managing "
                        f"additional {what}.")


def _field(message: str) -> ValidationError:
    return ValidationError(f"Invalid input for field '{message}")


def _parse_roles(value: Any) -> list[dict[str, str]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _field("roles': expected an array.")
    roles: list[dict[str, str]] = []
    for item in value:
        if (not isinstance(item, dict) or len(item) != 1 or not set(item) <= {"id", "name"}
                or not isinstance(next(iter(item.values())), str)
                or not next(iter(item.values())).strip()):
            raise _field("roles': each role is an object with exactly one of 'id' or "
                         "'name'.")
        roles.append(item)
    return roles


def _parse_access_rules(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _field("access_rules': expected an array.")
    rules: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, dict) or not set(item) <= {"id", "service", "path", "method"}:
            raise _field("access_rules': expected objects with id, service, path, method.")
        if not all(isinstance(v, str) for v in item.values()):
            raise _field("access_rules': values must be strings.")
        if "method" in item and item["method"] not in ACCESS_RULE_METHODS:
            raise _field(f"access_rules/method': '{item['method']}' is not one of "
                         f"{list(ACCESS_RULE_METHODS)}")
        if "path" in item and (len(item["path"]) > 225 or not item["path"].startswith("/")):
            raise _field(f"access_rules/path': '{item['path']}' is not a valid path.")
        if "service" in item and not _ID.match(item["service"]):
            raise _field(f"access_rules/service': '{item['service']}' is not valid.")
        if "id" not in item and not {"service", "path", "method"} <= set(item):
            raise _field("access_rules': a rule needs 'id', or 'service', 'path' and "
                         "'method'.")
        rules.append(item)
    return rules


def _parse_create(body: dict[str, Any]) -> NewAppCred:
    spec = require_object(body, "application_credential")
    extra = set(spec) - _CREATE_FIELDS
    if extra:
        raise ValidationError("Invalid input for field 'application_credential': Additional "
                              f"properties are not allowed ('{sorted(extra)[0]}' was "
                              "unexpected)")
    name = spec.get("name")
    if name is None:
        raise _field("application_credential': 'name' is a required property")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise _field(f"application_credential/name': {name!r} is not a valid name.")
    for key in ("secret", "description", "expires_at"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise _field(f"application_credential/{key}': expected a string or null.")
    unrestricted = spec.get("unrestricted")
    if unrestricted is not None and not isinstance(unrestricted, bool):
        raise _field("application_credential/unrestricted': expected a boolean or null.")
    expires_at = None
    if spec.get("expires_at"):
        try:
            expires_at = parse_isotime(spec["expires_at"])
        except ValueError as exc:
            raise BadRequest("Timestamp not in expected format. The server could not comply "
                             "with the request since it is either malformed or otherwise "
                             "incorrect. The client is assumed to be in error.") from exc
    return NewAppCred(
        name=name, secret=spec.get("secret") or None, description=spec.get("description"),
        expires_at=expires_at, unrestricted=bool(unrestricted),
        roles=_parse_roles(spec.get("roles")),
        access_rules=_parse_access_rules(spec.get("access_rules")),
    )


@router.post("/application_credentials")
async def create_app_cred(request: Request, user_id: str) -> Response:
    ctx = await caller(request)
    new = _parse_create(await json_body(request))
    await authorize(request, "identity:create_application_credential", {"user_id": user_id},
                    ctx=ctx)
    await check_unrestricted(request, ctx, "application credentials")
    if ctx.user_id != user_id:
        raise Forbidden("You are not authorized to perform the requested action: Cannot "
                        "create an application credential for another user.")
    if ctx.project_id is None:
        raise Forbidden("You are not authorized to perform the requested action: "
                        "identity:create_application_credential.")
    view = await _app_creds(request).create(user_id, ctx.project_id, set(ctx.role_ids), new)
    return json_response({"application_credential": _render(request, view)}, status=201)


@router.api_route("/application_credentials", methods=["GET", "HEAD"])
async def list_app_creds(request: Request, user_id: str) -> Response:
    await authorize(request, "identity:list_application_credentials", {"user_id": user_id})
    views = await _app_creds(request).list_for_user(user_id, request.query_params.get("name"))
    return head_aware(request, list_response(request, "application_credentials",
                                             [_render(request, v) for v in views]))


async def _owned(request: Request, rule: str, user_id: str, app_cred_id: str
                 ) -> tuple[RequestContext, AppCreds]:
    """Authorize against the credential's real owner (the path's user when it does not
    exist, so a missing credential is a 404 for its would-be owner and 403 for others)."""
    creds = _app_creds(request)
    cred = await creds.find(app_cred_id)
    owner = cred.user_id if cred is not None else user_id
    ctx = await authorize(request, rule, {"user_id": owner})
    if cred is None:
        raise NotFound(f"Could not find Application Credential: {app_cred_id}.")
    return ctx, creds


@router.api_route("/application_credentials/{app_cred_id}", methods=["GET", "HEAD"])
async def get_app_cred(request: Request, user_id: str, app_cred_id: str) -> Response:
    _, creds = await _owned(request, "identity:get_application_credential", user_id,
                            app_cred_id)
    view = await creds.get(app_cred_id)
    return head_aware(request,
                      json_response({"application_credential": _render(request, view)}))


@router.delete("/application_credentials/{app_cred_id}")
async def delete_app_cred(request: Request, user_id: str, app_cred_id: str) -> Response:
    ctx, creds = await _owned(request, "identity:delete_application_credential", user_id,
                              app_cred_id)
    await check_unrestricted(request, ctx, "application credentials")
    await creds.delete(app_cred_id)
    return Response(status_code=204)


# -- access rules ------------------------------------------------------------------------

def _render_rule(request: Request, user_id: str, rule: dict[str, str]) -> dict[str, Any]:
    return {**rule, "links": self_link(request, f"users/{user_id}/access_rules/{rule['id']}")}


async def _user_target(request: Request, rule: str, user_id: str) -> AppCreds:
    await caller(request)
    creds = _app_creds(request)
    target: dict[str, Any] = {"user_id": user_id}
    if await creds.user_exists(user_id):
        target["user"] = {"id": user_id}
    await authorize(request, rule, target)
    return creds


@router.api_route("/access_rules", methods=["GET", "HEAD"])
async def list_access_rules(request: Request, user_id: str) -> Response:
    creds = await _user_target(request, "identity:list_access_rules", user_id)
    filters = {k: request.query_params[k] for k in ("service", "path", "method")
               if k in request.query_params}
    rules = await creds.access_rules(user_id, filters)
    return head_aware(request, list_response(request, "access_rules",
                                             [_render_rule(request, user_id, r) for r in rules]))


@router.api_route("/access_rules/{rule_id}", methods=["GET", "HEAD"])
async def get_access_rule(request: Request, user_id: str, rule_id: str) -> Response:
    creds = await _user_target(request, "identity:get_access_rule", user_id)
    rule = await creds.access_rule(user_id, rule_id)
    return head_aware(request,
                      json_response({"access_rule": _render_rule(request, user_id, rule)}))


@router.delete("/access_rules/{rule_id}")
async def delete_access_rule(request: Request, user_id: str, rule_id: str) -> Response:
    creds = await _user_target(request, "identity:delete_access_rule", user_id)
    await creds.delete_access_rule(user_id, rule_id)
    return Response(status_code=204)
