"""Roles and implied-role rules: create, read, update, delete (``/v3/roles``).

A role is global (``domain_id`` is the ``GLOBAL_ROLE_DOMAIN`` sentinel in the table, ``None``
outside it) or belongs to a domain; its name is unique within that domain. A role marked with
the ``immutable`` option refuses updates (other than clearing the option) and deletion.
Deleting a role removes its assignments and inference rules, then records a revocation
event for tokens holding it (token roles are recomputed at validation anyway).

Implication rules follow Keystone: a role named in :data:`PROHIBITED_IMPLIED_ROLES` cannot be
implied, and a global role cannot imply a domain-specific one (both 403).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import Conflict, Forbidden, NotFound, ValidationError
from stackling.common.ids import new_id
from stackling.identity.models import GLOBAL_ROLE_DOMAIN, Assignment, ImpliedRole, Project, Role
from stackling.identity.service.revocations import Revocations
from stackling.identity.service.store import Store

PROHIBITED_IMPLIED_ROLES = ("admin",)
OPTIONS = ("immutable",)
_ID_RE = re.compile(r"^[a-zA-Z0-9-]+$")
_IMMUTABLE = ("Unable to {verb} immutable role resource: `{role_id}. Set resource option "
              '"immutable" to false first.')
_SCHEMA_KEYS = ("id", "name", "domain_id", "description", "options", "links")


# -- rendering --------------------------------------------------------------------------------

def public_domain_id(role: Role) -> str | None:
    return None if role.domain_id == GLOBAL_ROLE_DOMAIN else role.domain_id


def role_dict(role: Role) -> dict[str, Any]:
    """The role as Keystone shows it (without ``links``): extra attributes first, then the
    schema ones, ``options`` holding only the options that are set."""
    out: dict[str, Any] = dict(role.extra or {})
    out.update(id=role.id, name=role.name, domain_id=public_domain_id(role),
               description=role.description,
               options={k: v for k, v in (role.options or {}).items() if v is not None})
    return out


# -- validation -------------------------------------------------------------------------------

def _invalid(field: str, reason: str) -> ValidationError:
    return ValidationError(f"Invalid input for field '{field}': {reason}")


def _check_name(value: Any) -> str:
    if not isinstance(value, str):
        raise _invalid("name", f"{value!r} is not of type 'string'")
    if not 1 <= len(value) <= 255 or not re.search(r"\S", value):
        raise _invalid("name", f"{value!r} is not a valid role name")
    return value


def _check_description(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _invalid("description", f"{value!r} is not of type 'string', 'null'")
    return value


def _check_domain_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not _ID_RE.match(value):
        raise _invalid("domain_id", f"{value!r} is not a valid id")
    return value


def _check_options(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid("options", f"{value!r} is not of type 'object'")
    for key, opt in value.items():
        if key not in OPTIONS:
            raise _invalid("options", f"Additional properties are not allowed ('{key}' was "
                                      "unexpected)")
        if opt is not None and not isinstance(opt, bool):
            raise _invalid(f"options.{key}", f"{opt!r} is not of type 'boolean', 'null'")
    return dict(value)


def _extras(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _SCHEMA_KEYS}


def _conflict(name: str, domain_id: str | None) -> str:
    where = f" at domain ID {domain_id}" if domain_id else ""
    return ("Conflict occurred attempting to store role - "
            f"Duplicate entry found with name {name}{where}.")


def _immutable(role: Role) -> bool:
    return bool((role.options or {}).get("immutable"))


# -- lookups ----------------------------------------------------------------------------------

async def load_role(session: AsyncSession, role_id: str) -> Role:
    role = await session.get(Role, role_id)
    if role is None:
        raise NotFound(f"Could not find role: {role_id}.")
    return role


async def load_domain(session: AsyncSession, domain_id: str) -> Project:
    domain = await session.get(Project, domain_id)
    if domain is None or not domain.is_domain:
        raise NotFound(f"Could not find domain: {domain_id}.")
    return domain


async def get_role(store: Store, role_id: str) -> Role:
    async with store.read() as session:
        return await load_role(session, role_id)


async def find_role(store: Store, role_id: str) -> Role | None:
    async with store.read() as session:
        return await session.get(Role, role_id)


async def list_roles(store: Store, name: str | None = None,
                     domain_id: str | None = None) -> list[Role]:
    """Global roles, or those of ``domain_id`` when given; optionally one name only."""
    query = select(Role).where(Role.domain_id == (domain_id or GLOBAL_ROLE_DOMAIN))
    if name is not None:
        query = query.where(Role.name == name)
    async with store.read() as session:
        return list((await session.scalars(query.order_by(Role.name, Role.id))).all())


# -- changes ----------------------------------------------------------------------------------

async def create_role(store: Store, body: dict[str, Any]) -> Role:
    if "name" not in body:
        raise _invalid("role", "'name' is a required property")
    name = _check_name(body["name"])
    domain_id = _check_domain_id(body.get("domain_id"))
    role = Role(id=new_id(), name=name, domain_id=domain_id or GLOBAL_ROLE_DOMAIN,
                description=_check_description(body.get("description")),
                options=_check_options(body.get("options", {})), extra=_extras(body))
    role.options = {k: v for k, v in role.options.items() if v is not None}
    async with store.write(conflict=_conflict(name, domain_id)) as session:
        if domain_id is not None:
            await load_domain(session, domain_id)
        session.add(role)
    return role


async def update_role(store: Store, role_id: str, body: dict[str, Any]) -> Role:
    if not body:
        raise _invalid("role", "{} does not have enough properties")
    if "id" in body and body["id"] != role_id:
        raise ValidationError("Cannot change ID")
    async with store.read() as session:
        role = await load_role(session, role_id)
    if _immutable(role):
        opts = body.get("options")
        clearing = (isinstance(opts, dict) and "immutable" in opts
                    and opts["immutable"] in (False, None))
        if len(body) > 1 or not clearing:
            raise Forbidden(_IMMUTABLE.format(verb="update", role_id=role_id))
    if "domain_id" in body and _check_domain_id(body["domain_id"]) != public_domain_id(role):
        raise ValidationError("Update of `domain_id` is not allowed.")
    name = _check_name(body["name"]) if "name" in body else role.name
    async with store.write(conflict=_conflict(name, public_domain_id(role))) as session:
        role = await load_role(session, role_id)
        role.name = name
        if "description" in body:
            role.description = _check_description(body["description"])
        if "options" in body:
            merged = {**(role.options or {}), **_check_options(body["options"])}
            role.options = {k: v for k, v in merged.items() if v is not None}
        extra = _extras(body)
        if extra:
            role.extra = {**(role.extra or {}), **extra}
    return role


async def delete_role(store: Store, revocations: Revocations, role_id: str) -> None:
    async with store.write() as session:
        role = await load_role(session, role_id)
        if _immutable(role):
            raise Forbidden(_IMMUTABLE.format(verb="delete", role_id=role_id))
        await session.execute(delete(Assignment).where(Assignment.role_id == role_id))
        await session.execute(delete(ImpliedRole).where(or_(
            ImpliedRole.prior_role_id == role_id, ImpliedRole.implied_role_id == role_id)))
        await session.delete(role)
    await revocations.revoke(role_id=role_id)


# -- implied roles ----------------------------------------------------------------------------

async def create_implied_role(store: Store, prior_id: str, implied_id: str
                              ) -> tuple[Role, Role]:
    conflict = "Conflict occurred attempting to store implied_role - Duplicate entry."
    async with store.read() as session:
        implied = await load_role(session, implied_id)
        prior = await load_role(session, prior_id)
        if await session.get(ImpliedRole, (prior_id, implied_id)) is not None:
            raise Conflict(conflict)
    if implied.name in PROHIBITED_IMPLIED_ROLES:
        raise Forbidden(f"{implied_id} cannot be an implied roles.")
    if public_domain_id(prior) is None and public_domain_id(implied) is not None:
        raise Forbidden("Global role cannot imply a domain-specific role")
    async with store.write(conflict=conflict) as session:
        session.add(ImpliedRole(prior_role_id=prior_id, implied_role_id=implied_id))
    return prior, implied


async def get_implied_role(store: Store, prior_id: str, implied_id: str
                           ) -> tuple[Role, Role]:
    async with store.read() as session:
        if await session.get(ImpliedRole, (prior_id, implied_id)) is None:
            raise NotFound(f"{prior_id} does not imply {implied_id}.")
        return await load_role(session, prior_id), await load_role(session, implied_id)


async def delete_implied_role(store: Store, prior_id: str, implied_id: str) -> None:
    async with store.write() as session:
        rule = await session.get(ImpliedRole, (prior_id, implied_id))
        if rule is None:
            raise NotFound(f"{prior_id} does not imply {implied_id}.")
        await session.delete(rule)


async def list_implied_roles(store: Store, prior_id: str) -> tuple[Role, list[Role]]:
    """The prior role and the roles it implies directly."""
    async with store.read() as session:
        prior = await load_role(session, prior_id)
        query = select(Role).join(ImpliedRole, ImpliedRole.implied_role_id == Role.id).where(
            ImpliedRole.prior_role_id == prior_id).order_by(Role.name)
        return prior, list((await session.scalars(query)).all())


async def list_inferences(store: Store) -> list[tuple[Role, list[Role]]]:
    """Every prior role with the roles it implies directly (prior roles by name)."""
    async with store.read() as session:
        rules = (await session.execute(select(ImpliedRole.prior_role_id,
                                              ImpliedRole.implied_role_id))).all()
        ids = {r[0] for r in rules} | {r[1] for r in rules}
        roles = {r.id: r for r in (await session.scalars(
            select(Role).where(Role.id.in_(ids)))).all()} if ids else {}
    grouped: dict[str, list[Role]] = {}
    for prior_id, implied_id in rules:
        if prior_id in roles and implied_id in roles:
            grouped.setdefault(prior_id, []).append(roles[implied_id])
    return [(roles[p], sorted(implied, key=lambda r: r.name))
            for p, implied in sorted(grouped.items(), key=lambda kv: roles[kv[0]].name)]
