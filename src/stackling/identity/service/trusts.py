"""Trusts (OS-TRUST): a trustor delegates some of its roles on a project to a trustee.

What Keystone checks, restated:

- create: the caller is the trustor; the trustee exists; roles (by id, or by the name of a
  global role) are all held by the trustor on the project (effective, implied and
  domain-specific roles count), else 404 for the role; a trust on a project names at least
  one role (403). ``allow_redelegation`` makes a trust redelegatable up to
  :data:`MAX_REDELEGATION_COUNT` hops (then ``remaining_uses`` may not be set); a trust made
  with a trust-scoped token is a redelegation of that trust and must stay within it (roles,
  expiry, impersonation, remaining depth), else 403.
- a trust that is expired or has no uses left reads as 404 (it stays in listings).
- deleting a trust deletes the trusts redelegated from it; tokens made with any of them stop
  validating because validation looks the trust up (nothing is cached past a store change).
- a trust whose trustor, trustee or project no longer exists is gone (the user and project
  deletions leave the row; every read here filters it out).

Tokens made with a trust carry the roles of the trust (plus what they imply) as long as the
original trustor still holds them all on the project; the user shown is the trustor when the
trust allows impersonation, otherwise the trustee.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from stackling.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stackling.common.ids import new_id
from stackling.common.timeutils import utcnow
from stackling.identity.models import GLOBAL_ROLE_DOMAIN, Project, Role, Trust, User
from stackling.identity.service import roles as roles_mod
from stackling.identity.service.roles_admin import role_dict
from stackling.identity.service.store import Store

MAX_REDELEGATION_COUNT = 3  # Keystone's [trust] max_redelegation_count default
_FORBIDDEN = "You are not authorized to perform the requested action"


def forbidden_action(action: str) -> Forbidden:
    return Forbidden(f"{_FORBIDDEN}: {action}.")


def trust_not_found(trust_id: str) -> NotFound:
    return NotFound(f"Could not find trust: {trust_id}.")


@dataclass(slots=True)
class NewTrust:
    """A create request whose shapes the HTTP layer has checked."""

    trustor_user_id: str
    trustee_user_id: str
    impersonation: bool
    project_id: str | None = None
    roles: list[dict[str, str]] = field(default_factory=list)  # [{"id"} | {"name"}]
    expires_at: datetime | None = None
    remaining_uses: int | None = None
    allow_redelegation: bool = False
    redelegation_count: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrustView:
    trust: Trust
    roles: list[dict[str, Any]]  # role_dict() of each delegated role that still exists


def _live() -> ColumnElement[bool]:
    """Trusts whose trustor, trustee and project (if any) still exist."""
    trustor = exists().where(User.id == Trust.trustor_user_id)
    trustee = exists().where(User.id == Trust.trustee_user_id)
    project = or_(Trust.project_id.is_(None), exists().where(Project.id == Trust.project_id))
    return and_(trustor, trustee, project)


def usable(trust: Trust) -> bool:
    """Not expired and not used up."""
    if trust.expires_at is not None and trust.expires_at <= utcnow():
        return False
    return trust.remaining_uses is None or trust.remaining_uses > 0


async def load(session: AsyncSession, trust_id: str) -> Trust | None:
    """The trust if it exists (expired or used up included)."""
    found = await session.scalars(select(Trust).where(Trust.id == trust_id, _live()))
    return found.first()


async def chain_of(session: AsyncSession, trust: Trust) -> list[Trust]:
    """The trust, then the trust it was redelegated from, and so on to the original."""
    chain = [trust]
    seen = {trust.id}
    while chain[-1].redelegated_trust_id:
        parent = await load(session, chain[-1].redelegated_trust_id)
        if parent is None or parent.id in seen:
            raise Forbidden()
        chain.append(parent)
        seen.add(parent.id)
    return chain


async def _check_chain(session: AsyncSession, trust: Trust) -> None:
    """A redelegated trust is only as good as its chain (Keystone's ``get_trust``)."""
    chain = await chain_of(session, trust)
    for parent, child in zip(chain[1:], chain, strict=False):
        _check_redelegation(parent, child.remaining_uses, child.expires_at,
                            set(child.role_ids), child.impersonation)
        trustee = await session.get(User, parent.trustee_user_id)
        if trustee is None or not trustee.enabled:
            raise Forbidden()


def _check_redelegation(parent: Trust, remaining_uses: int | None,
                        expires_at: datetime | None, role_ids: set[str],
                        impersonation: bool) -> None:
    """Keystone's ``_validate_redelegation``: the child stays within its parent."""
    depth = parent.redelegation_count or 0
    if not 0 < depth <= MAX_REDELEGATION_COUNT:
        raise Forbidden()
    if remaining_uses is not None:
        raise Forbidden()
    if (expires_at is not None and parent.expires_at is not None
            and parent.expires_at < expires_at):
        raise Forbidden()
    if not role_ids <= set(parent.role_ids):
        raise Forbidden()
    if impersonation and not parent.impersonation:
        raise Forbidden()


async def _role_ids(session: AsyncSession, wanted: list[dict[str, str]]) -> list[str]:
    ids: list[str] = []
    for spec in wanted:
        if "id" in spec:
            role_id = spec["id"]
        else:
            found = (await session.scalars(select(Role).where(
                Role.name == spec["name"], Role.domain_id == GLOBAL_ROLE_DOMAIN))).first()
            if found is None:
                raise NotFound(f"Role {spec['name']} is not defined")
            role_id = found.id
        if role_id not in ids:
            ids.append(role_id)
    return ids


async def effective_role_ids(session: AsyncSession, user_id: str, project_id: str) -> set[str]:
    """Every role the user holds on the project, domain-specific ones included."""
    ancestors = await roles_mod.ancestors_of(session, project_id)
    direct = await roles_mod.direct_role_ids(session, user_id, project_id, ancestors)
    return await roles_mod.expand_implied(session, direct)


async def _roles_view(session: AsyncSession, role_ids: list[str]) -> list[dict[str, Any]]:
    if not role_ids:
        return []
    rows = {r.id: r for r in (await session.scalars(
        select(Role).where(Role.id.in_(role_ids)))).all()}
    return [role_dict(rows[i]) for i in role_ids if i in rows]


class Trusts:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- create ----------------------------------------------------------------------------
    async def create(self, new: NewTrust, caller_trust_id: str | None = None) -> TrustView:
        async with self.store.write() as session:
            if await session.get(User, new.trustee_user_id) is None:
                raise NotFound(f"Could not find user: {new.trustee_user_id}.")
            role_ids = await _role_ids(session, new.roles)
            if new.project_id:
                if await session.get(Project, new.project_id) is None:
                    raise NotFound(f"Could not find project: {new.project_id}.")
                held = await effective_role_ids(session, new.trustor_user_id, new.project_id)
                for role_id in role_ids:
                    if role_id not in held:
                        raise NotFound(f"Could not find role: {role_id}.")
            if new.expires_at is not None and new.expires_at <= utcnow():
                raise BadRequest("The 'expires_at' must not be before now. The server could "
                                 "not comply with the request since it is either malformed "
                                 "or otherwise incorrect. The client is assumed to be in "
                                 "error.")
            parent = None
            if caller_trust_id is not None:
                parent = await load(session, caller_trust_id)
                if parent is None or not usable(parent):
                    raise trust_not_found(caller_trust_id)
            trust = await self._build(session, new, role_ids, parent)
            session.add(trust)
            try:
                await session.flush()
            except IntegrityError as exc:  # the duplicate-trust constraint
                raise Conflict("Conflict occurred attempting to store trust - Duplicate "
                               f"entry found with ID {trust.id}.") from exc
            return TrustView(trust, await _roles_view(session, role_ids))

    async def _build(self, session: AsyncSession, new: NewTrust, role_ids: list[str],
                     parent: Trust | None) -> Trust:
        requested = new.redelegation_count
        redelegatable = new.allow_redelegation and requested != 0
        expires_at = new.expires_at
        if not redelegatable:
            count: int | None = 0
        else:
            if requested is not None and requested > MAX_REDELEGATION_COUNT:
                raise Forbidden()
            if new.remaining_uses is not None:
                raise BadRequest("remaining_uses must not be set if redelegation is allowed")
            count = requested
        if parent is not None:
            remaining = (parent.redelegation_count or 0) - 1
            if redelegatable and requested and requested != remaining:
                raise forbidden_action('Modifying "redelegation_count" upon redelegation is '
                                       "forbidden. Omitting this parameter is advised")
            if count is None:
                count = remaining
            for ancestor in await chain_of(session, parent):
                _check_redelegation(ancestor, new.remaining_uses, expires_at, set(role_ids),
                                    new.impersonation)
                if expires_at is None:
                    expires_at = ancestor.expires_at
        if count is None:
            count = MAX_REDELEGATION_COUNT
        return Trust(
            id=new_id(), trustor_user_id=new.trustor_user_id,
            trustee_user_id=new.trustee_user_id, project_id=new.project_id,
            impersonation=new.impersonation, expires_at=expires_at,
            remaining_uses=new.remaining_uses,
            redelegated_trust_id=parent.id if parent is not None else None,
            redelegation_count=count, role_ids=role_ids, extra=new.extra,
        )

    # -- read ------------------------------------------------------------------------------
    async def find(self, trust_id: str) -> Trust | None:
        """The trust as policy sees it: None when missing, expired or used up."""
        async with self.store.read() as session:
            trust = await load(session, trust_id)
        return trust if trust is not None and usable(trust) else None

    async def get(self, trust_id: str) -> TrustView:
        async with self.store.read() as session:
            trust = await load(session, trust_id)
            if trust is None or not usable(trust):
                raise trust_not_found(trust_id)
            if trust.redelegated_trust_id:
                await _check_chain(session, trust)
            return TrustView(trust, await _roles_view(session, trust.role_ids))

    async def list(self, trustor_user_id: str | None = None,
                   trustee_user_id: str | None = None) -> list[Trust]:
        query = select(Trust).where(_live()).order_by(Trust.id)
        if trustor_user_id is not None:
            query = query.where(Trust.trustor_user_id == trustor_user_id)
        if trustee_user_id is not None:
            query = query.where(Trust.trustee_user_id == trustee_user_id)
        async with self.store.read() as session:
            return list((await session.scalars(query)).all())

    # -- delete ----------------------------------------------------------------------------
    async def delete(self, trust_id: str) -> None:
        """Delete the trust and, recursively, the trusts redelegated from it."""
        async with self.store.write() as session:
            if await session.get(Trust, trust_id) is None:
                raise trust_not_found(trust_id)
            doomed = [trust_id]
            todo = [trust_id]
            while todo:
                children = (await session.scalars(select(Trust.id).where(
                    Trust.redelegated_trust_id == todo.pop()))).all()
                fresh = [c for c in children if c not in doomed]
                doomed.extend(fresh)
                todo.extend(fresh)
            await session.execute(delete(Trust).where(Trust.id.in_(doomed)))

    # -- use -------------------------------------------------------------------------------
    async def consume(self, trust_id: str) -> None:
        """Take one use of a limited trust, atomically: of two callers racing for the last
        use exactly one wins; the other gets 403 (Keystone's TrustUseLimitReached)."""
        async with self.store.read() as session:
            left = (await session.execute(select(Trust.remaining_uses).where(
                Trust.id == trust_id))).first()
        if left is None:
            raise trust_not_found(trust_id)
        if left[0] is None:
            return  # unlimited (a trust never becomes limited)
        # No store.changed(): a use does not change what existing tokens say.
        async with self.store.session() as session, session.begin():
            result = await session.execute(
                update(Trust).where(Trust.id == trust_id, Trust.remaining_uses > 0)
                .values(remaining_uses=Trust.remaining_uses - 1))
            won = getattr(result, "rowcount", 0) == 1
        if not won:
            raise Forbidden(f"No remaining uses for trust: {trust_id}.")


# -- tokens ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TokenTrust:
    """What a trust-scoped token shows, as of now."""

    trust: Trust
    trustor: User
    roles: list[roles_mod.RoleRef]

    def as_dict(self) -> dict[str, Any]:
        """The token's ``OS-TRUST:trust`` block."""
        return {"id": self.trust.id, "impersonation": self.trust.impersonation,
                "trustor_user": {"id": self.trust.trustor_user_id},
                "trustee_user": {"id": self.trust.trustee_user_id}}


async def for_token(session: AsyncSession, trust_id: str, user_id: str,
                    error: type[Exception]) -> TokenTrust:
    """Check a trust still backs a token of ``user_id`` (its trustee) and say what the token
    holds. ``error`` is raised otherwise (401 when issuing, 404 when validating). Uses left
    are not checked here: the token that took the last use stays good."""
    trust = await load(session, trust_id)
    if trust is None or (trust.expires_at is not None and trust.expires_at <= utcnow()):
        raise error(f"Could not find trust: {trust_id}.")
    if trust.trustee_user_id != user_id:
        raise error("User is not a trustee.")
    try:
        chain = await chain_of(session, trust)
        if trust.redelegated_trust_id:
            await _check_chain(session, trust)
    except Forbidden as exc:
        raise error("One of the trust agents is disabled or deleted.") from exc
    trustor = await session.get(User, trust.trustor_user_id)
    if trustor is None or not trustor.enabled:
        raise error("Trustor is disabled.")
    domain = await session.get(Project, trustor.domain_id)
    if domain is None or not domain.enabled:
        raise error("Trustor domain is disabled.")
    refs: list[roles_mod.RoleRef] = []
    if trust.project_id:
        wanted = await roles_mod.expand_implied(session, set(trust.role_ids))
        held = await effective_role_ids(session, chain[-1].trustor_user_id, trust.project_id)
        if not wanted <= held:
            raise error("Trustee has no delegated roles.")
        rows = (await session.scalars(select(Role).where(
            Role.id.in_(wanted), Role.domain_id == GLOBAL_ROLE_DOMAIN))).all()
        refs = sorted((roles_mod.RoleRef(r.id, r.name) for r in rows), key=lambda r: r.name)
    return TokenTrust(trust, trustor, refs)
