"""What every network resource module shares: visibility, lookups, attribute checks,
standard-attribute bumps and quota counting."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.timeutils import utcnow
from stackling.network.errors import (
    NeutronBadRequest,
    NeutronForbidden,
    bad_attr,
    not_found,
    over_quota,
)
from stackling.network.models import (
    FloatingIP,
    Network,
    Port,
    Quota,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)
from stackling.network.service.core import NetworkService

T = TypeVar("T")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                     r"[0-9a-fA-F]{12}$")
_TRUE = {"true", "1", "t", "yes", "y", "on"}
_FALSE = {"false", "0", "f", "no", "n", "off"}

#: quota resource -> the table it counts
QUOTA_MODELS: dict[str, Any] = {
    "network": Network, "subnet": Subnet, "port": Port, "router": Router,
    "floatingip": FloatingIP, "security_group": SecurityGroup,
    "security_group_rule": SecurityGroupRule,
}


def touch(row: Any) -> None:
    """A standard-attribute update: new revision_number and updated_at."""
    row.revision_number = (row.revision_number or 0) + 1
    row.updated_at = utcnow()


def owner_of(ctx: RequestContext, body: dict[str, Any]) -> str:
    """The project a new resource belongs to (another one only for admins, as Neutron)."""
    project = body.get("project_id", body.get("tenant_id"))
    if "project_id" in body and "tenant_id" in body and body["project_id"] != body["tenant_id"]:
        raise NeutronBadRequest("Both project_id and tenant_id were specified and do not "
                                "match.", "HTTPBadRequest")
    if project is None or project == ctx.project_id:
        return ctx.project_id or ""
    if not isinstance(project, str) or len(project) > 255:
        raise bad_attr("project_id", f"'{project}' is not a valid string")
    if not ctx.is_admin:
        raise NeutronBadRequest("Specifying 'project_id' or 'tenant_id' other than the "
                                "authenticated project in request requires admin privileges",
                                "HTTPBadRequest")
    return project


def admin_only(svc: NetworkService, ctx: RequestContext, body: dict[str, Any],
               keys: Iterable[str], action: str) -> None:
    """403 for attributes the caller may not set (``<action>:<attribute>`` rules)."""
    for key in keys:
        if key in body and not svc.allowed(ctx, f"{action}:{key}"):
            raise NeutronForbidden(f"(rule:{action}:{key}) is disallowed by policy")


def owns(ctx: RequestContext, project_id: str) -> bool:
    return ctx.is_admin or project_id == ctx.project_id


def boolean(value: Any, attr: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise bad_attr(attr, f"'{value}' is not a valid boolean value")


def string(value: Any, attr: str, max_len: int = 255, nullable: bool = False) -> str:
    if value is None and nullable:
        return ""
    if not isinstance(value, str):
        raise bad_attr(attr, f"'{value}' is not a valid string")
    if len(value) > max_len:
        raise bad_attr(attr, f"'{value}' exceeds maximum length of {max_len}")
    return value


def uuid_value(value: Any, attr: str) -> str:
    if not isinstance(value, str) or not UUID_RE.match(value):
        raise bad_attr(attr, f"'{value}' is not a valid UUID")
    return value


def unknown_keys(body: dict[str, Any], allowed: set[str], resource: str) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise NeutronBadRequest(f"Unrecognized attribute(s) '{', '.join(extra)}'",
                                "HTTPBadRequest")


async def get_visible(session: AsyncSession, model: type[T], ident: str, kind: str,
                      ctx: RequestContext) -> T:
    row = await session.get(model, ident)
    if row is None or not owns(ctx, row.project_id):  # type: ignore[attr-defined]
        raise not_found(kind, ident)
    return row


def network_visible(ctx: RequestContext, row: Network) -> bool:
    return owns(ctx, row.project_id) or row.shared or row.external


async def get_network(session: AsyncSession, ident: str, ctx: RequestContext) -> Network:
    row = await session.get(Network, ident)
    if row is None or not network_visible(ctx, row):
        raise not_found("network", ident)
    return row


async def quota_limit(session: AsyncSession, svc: NetworkService, project_id: str,
                      resource: str) -> int:
    row = await session.get(Quota, (project_id, resource))
    if row is not None:
        return row.limit
    return int(getattr(svc.conf.quotas, resource))


async def check_quota(session: AsyncSession, svc: NetworkService, project_id: str,
                      resource: str, adding: int = 1) -> None:
    """Raise OverQuota when ``adding`` more would pass the limit. Callers hold the write
    lock (:meth:`NetworkService.write`), so the count cannot change under them."""
    if not project_id:
        return
    limit = await quota_limit(session, svc, project_id, resource)
    if limit < 0:
        return
    model = QUOTA_MODELS[resource]
    used = (await session.execute(select(func.count()).select_from(model).where(
        model.project_id == project_id))).scalar_one()
    if used + adding > limit:
        raise over_quota(resource)
