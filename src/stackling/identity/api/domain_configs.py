"""Domain-specific configuration: ``/v3/domains/{domain_id}/config[/{group}[/{option}]]`` and
the defaults at ``/v3/domains/config[/{group}[/{option}]]/default``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import NotFound
from stackling.identity.api.common import authorize, identity, json_body
from stackling.identity.api.reply import reply
from stackling.identity.service import domain_config as dc

router = APIRouter(prefix="/v3/domains")


async def _body(request: Request) -> Any:
    return (await json_body(request)).get("config", {})


async def _show(request: Request, domain_id: str, group: str | None = None,
                option: str | None = None) -> Response:
    svc = identity(request)
    exists = await dc.domain_exists(svc.store, domain_id)
    if group == dc.SECURITY_COMPLIANCE:
        # checked before the domain, so that a missing domain is not revealed by policy
        await authorize(request, "identity:get_security_compliance_domain_config")
        if not exists:
            raise NotFound(f"Could not find domain: {domain_id}.")
        rules = svc.config.identity.security_compliance
        settings = {k: getattr(rules, k) for k in dc.READABLE_COMPLIANCE}
        return reply(request, {"config": dc.security_compliance(domain_id, option, settings)})
    await authorize(request, "identity:get_domain_config")
    if not exists:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return reply(request, {"config": await dc.get_config(svc.store, domain_id, group, option)})


async def _update(request: Request, domain_id: str, group: str | None = None,
                  option: str | None = None) -> Response:
    await authorize(request, "identity:update_domain_config")
    ref = await dc.update_config(identity(request).store, domain_id, await _body(request),
                                 group, option)
    return reply(request, {"config": ref})


async def _delete(request: Request, domain_id: str, group: str | None = None,
                  option: str | None = None) -> Response:
    await authorize(request, "identity:delete_domain_config")
    await dc.delete_config(identity(request).store, domain_id, group, option)
    return Response(status_code=204)


async def _default(request: Request, group: str | None = None, option: str | None = None
                   ) -> Response:
    await authorize(request, "identity:get_domain_config_default")
    return reply(request, {"config": dc.default_config(group, option)})


# Defaults first: "config" is not a domain id.
@router.api_route("/config/default", methods=["GET", "HEAD"])
async def show_default(request: Request) -> Response:
    return await _default(request)


@router.api_route("/config/{group}/default", methods=["GET", "HEAD"])
async def show_default_group(request: Request, group: str) -> Response:
    return await _default(request, group)


@router.api_route("/config/{group}/{option}/default", methods=["GET", "HEAD"])
async def show_default_option(request: Request, group: str, option: str) -> Response:
    return await _default(request, group, option)


@router.put("/{domain_id}/config")
async def create_config(request: Request, domain_id: str) -> Response:
    await authorize(request, "identity:create_domain_config")
    ref, had = await dc.create_config(identity(request).store, domain_id,
                                      await _body(request))
    return reply(request, {"config": ref}, status=200 if had else 201)


@router.api_route("/{domain_id}/config", methods=["GET", "HEAD"])
async def show_config(request: Request, domain_id: str) -> Response:
    return await _show(request, domain_id)


@router.patch("/{domain_id}/config")
async def update_config(request: Request, domain_id: str) -> Response:
    return await _update(request, domain_id)


@router.delete("/{domain_id}/config")
async def delete_config(request: Request, domain_id: str) -> Response:
    return await _delete(request, domain_id)


@router.api_route("/{domain_id}/config/{group}", methods=["GET", "HEAD"])
async def show_group(request: Request, domain_id: str, group: str) -> Response:
    return await _show(request, domain_id, group)


@router.patch("/{domain_id}/config/{group}")
async def update_group(request: Request, domain_id: str, group: str) -> Response:
    return await _update(request, domain_id, group)


@router.delete("/{domain_id}/config/{group}")
async def delete_group(request: Request, domain_id: str, group: str) -> Response:
    return await _delete(request, domain_id, group)


@router.api_route("/{domain_id}/config/{group}/{option}", methods=["GET", "HEAD"])
async def show_option(request: Request, domain_id: str, group: str, option: str) -> Response:
    return await _show(request, domain_id, group, option)


@router.patch("/{domain_id}/config/{group}/{option}")
async def update_option(request: Request, domain_id: str, group: str, option: str
                        ) -> Response:
    return await _update(request, domain_id, group, option)


@router.delete("/{domain_id}/config/{group}/{option}")
async def delete_option(request: Request, domain_id: str, group: str, option: str
                        ) -> Response:
    return await _delete(request, domain_id, group, option)
