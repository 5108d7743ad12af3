"""OS-OAUTH1 delegation: request token -> user authorization -> access token -> tokens.

1. A consumer signs ``POST /OS-OAUTH1/request_token`` (with ``Requested-Project-Id``) and
   gets a request token and its secret (good for ``REQUEST_TOKEN_DURATION``).
2. A user holding roles on that project authorizes the request token for some of them and
   gets a verifier to pass to the consumer out of band.
3. The consumer signs ``POST /OS-OAUTH1/access_token`` with the request token and verifier;
   the request token is spent and an access token with its secret comes back (good for
   ``ACCESS_TOKEN_DURATION``).
4. The consumer signs ``POST /auth/tokens`` (method ``oauth1``) with the access token and
   gets a token scoped to the project, for the authorizing user, carrying the authorized
   roles (and what they imply) that the user still holds.

Secrets are random hex, stored Fernet-encrypted (they key the HMAC, so they must be read
back). The error statuses and messages are Keystone's.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import BadRequest, NotFound, Unauthorized
from stackling.common.timeutils import isotime, utcnow
from stackling.identity.models import (
    GLOBAL_ROLE_DOMAIN,
    OAuthAccessToken,
    OAuthConsumer,
    OAuthRequestToken,
    Project,
    Role,
    User,
)
from stackling.identity.service import roles as roles_mod
from stackling.identity.service.fernet import KeyRepository
from stackling.identity.service.oauth1_signature import (
    OAuthRequestError,
    SignedRequest,
    check_parameters,
    verify,
)
from stackling.identity.service.store import Store
from stackling.identity.service.trusts import effective_role_ids

REQUEST_TOKEN_DURATION = 28800  # Keystone's [oauth1] defaults, seconds
ACCESS_TOKEN_DURATION = 86400
VERIFIER_CHARS = "".join(c for c in
                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                         if c not in "jiIl1oO0")


def missing(attribute: str) -> BadRequest:
    return BadRequest(f"Expecting to find {attribute} in request. The server could not comply "
                      "with the request since it is either malformed or otherwise incorrect. "
                      "The client is assumed to be in error.")


def _checked(request: SignedRequest, *required: str) -> dict[str, str]:
    oauth = request.oauth
    try:
        check_parameters(oauth, *required)
    except OAuthRequestError as exc:
        raise BadRequest(f"Validation failed with errors: invalid_request, detail message is: "
                         f"{exc}") from exc
    return oauth


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """What the request-token and access-token endpoints answer (form-encoded)."""

    key: str
    secret: str
    expires_at: datetime | None

    def form(self) -> str:
        out = f"oauth_token={self.key}&oauth_token_secret={self.secret}"
        if self.expires_at is not None:
            out += f"&oauth_expires_at={isotime(self.expires_at)}"
        return out


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """What a valid OAuth1 token login yields."""

    user_id: str
    project_id: str
    access_token_id: str


class OAuth1:
    def __init__(self, store: Store, keys: KeyRepository) -> None:
        self.store = store
        self.keys = keys

    def _encrypt(self, secret: str) -> str:
        return self.keys.fernet().encrypt(secret.encode()).decode("ascii")

    def _decrypt(self, encrypted: str) -> str:
        return self.keys.fernet().decrypt(encrypted.encode("ascii")).decode()

    async def _consumer_secret(self, session: AsyncSession, consumer_id: str) -> str | None:
        consumer = await session.get(OAuthConsumer, consumer_id)
        return None if consumer is None else self._decrypt(consumer.encrypted_secret)

    # -- 1. request token ------------------------------------------------------------------
    async def request_token(self, request: SignedRequest, project_id: str | None
                            ) -> IssuedSecret:
        oauth = request.oauth
        consumer_id = oauth.get("oauth_consumer_key")
        if not consumer_id:
            raise missing("oauth_consumer_key")
        if not project_id:
            raise missing("Requested-Project-Id")
        async with self.store.read() as session:
            if await session.get(Project, project_id) is None:
                raise NotFound(f"Could not find project: {project_id}.")
            secret = await self._consumer_secret(session, consumer_id)
        if secret is None:
            raise NotFound("Consumer not found")
        _checked(request, "oauth_callback")
        if not verify(request, oauth, secret):
            raise Unauthorized("Invalid signature")
        issued = IssuedSecret(uuid.uuid4().hex, uuid.uuid4().hex,
                              utcnow() + timedelta(seconds=REQUEST_TOKEN_DURATION))
        async with self.store.write() as session:
            session.add(OAuthRequestToken(
                id=issued.key, encrypted_secret=self._encrypt(issued.secret),
                consumer_id=consumer_id, requested_project_id=project_id,
                expires_at=issued.expires_at))
        return issued

    # -- 2. authorization ------------------------------------------------------------------
    async def authorize(self, request_token_id: str, user_id: str,
                        roles: list[dict[str, str]]) -> str:
        """Let the consumer act for the user with these roles; return the verifier."""
        async with self.store.write() as session:
            token = await session.get(OAuthRequestToken, request_token_id)
            if token is None:
                raise NotFound("Request token not found")
            if token.expires_at is not None and token.expires_at < utcnow():
                raise Unauthorized("Request token is expired")
            wanted: set[str] = set()
            for spec in roles:
                if "id" in spec:
                    wanted.add(spec["id"])
                    continue
                found = (await session.scalars(select(Role).where(
                    Role.name == spec["name"], Role.domain_id == GLOBAL_ROLE_DOMAIN))).first()
                if found is None:
                    raise NotFound(f"Role {spec['name']} is not defined")
                wanted.add(found.id)
            held = await effective_role_ids(session, user_id, token.requested_project_id)
            if not wanted <= held:
                raise Unauthorized("authorizing user does not have role required")
            token.authorizing_user_id = user_id
            token.verifier = "".join(secrets.choice(VERIFIER_CHARS) for _ in range(8))
            token.role_ids = sorted(wanted)
            return token.verifier

    # -- 3. access token -------------------------------------------------------------------
    async def access_token(self, request: SignedRequest) -> IssuedSecret:
        oauth = request.oauth
        for name in ("oauth_consumer_key", "oauth_token", "oauth_verifier"):
            if not oauth.get(name):
                raise missing(name)
        async with self.store.write() as session:
            token = await session.get(OAuthRequestToken, oauth["oauth_token"])
            if token is None:
                raise NotFound("Request token not found")
            if token.expires_at is not None and token.expires_at < utcnow():
                raise Unauthorized("Request token is expired")
            secret = await self._consumer_secret(session, oauth["oauth_consumer_key"])
            if secret is None:
                raise Unauthorized("Provided consumer does not exist.")
            if token.consumer_id != oauth["oauth_consumer_key"]:
                raise Unauthorized("Provided consumer key does not match stored consumer key.")
            _checked(request)
            if token.verifier is None or token.verifier != oauth["oauth_verifier"]:
                raise Unauthorized("Provided verifier does not match stored verifier")
            if not verify(request, oauth, secret, self._decrypt(token.encrypted_secret)):
                raise Unauthorized("Invalid signature")
            if not token.authorizing_user_id:
                raise Unauthorized("Request Token does not have an authorizing user id.")
            issued = IssuedSecret(uuid.uuid4().hex, uuid.uuid4().hex,
                                  utcnow() + timedelta(seconds=ACCESS_TOKEN_DURATION))
            session.add(OAuthAccessToken(
                id=issued.key, encrypted_secret=self._encrypt(issued.secret),
                consumer_id=token.consumer_id, authorizing_user_id=token.authorizing_user_id,
                project_id=token.requested_project_id, role_ids=token.role_ids,
                expires_at=issued.expires_at))
            await session.delete(token)  # spent
        return issued

    # -- 4. token login --------------------------------------------------------------------
    async def authenticate(self, request: SignedRequest) -> AccessGrant:
        oauth = request.oauth
        if not oauth.get("oauth_token"):
            raise missing("oauth_token")
        async with self.store.read() as session:
            token = await session.get(OAuthAccessToken, oauth["oauth_token"])
            if token is None:
                raise Unauthorized("Could not validate the access token")
            if token.expires_at is not None and token.expires_at < utcnow():
                raise Unauthorized("Access token is expired")
            secret = await self._consumer_secret(session, token.consumer_id)
        try:
            check_parameters(oauth)
        except OAuthRequestError as exc:
            raise Unauthorized("Could not validate the access token") from exc
        if (secret is None or oauth["oauth_consumer_key"] != token.consumer_id
                or not verify(request, oauth, secret, self._decrypt(token.encrypted_secret))):
            raise Unauthorized("Could not validate the access token")
        return AccessGrant(token.authorizing_user_id, token.project_id, token.id)

    # -- access tokens of a user -----------------------------------------------------------
    async def list_access_tokens(self, user_id: str) -> list[OAuthAccessToken]:
        async with self.store.read() as session:
            return list((await session.scalars(select(OAuthAccessToken).where(
                OAuthAccessToken.authorizing_user_id == user_id)
                .order_by(OAuthAccessToken.id))).all())

    async def get_access_token(self, user_id: str, access_token_id: str) -> OAuthAccessToken:
        async with self.store.read() as session:
            token = await session.get(OAuthAccessToken, access_token_id)
        if token is None:
            raise NotFound("Access token not found")
        if token.authorizing_user_id != user_id:
            raise NotFound("Could not find the requested resource.")
        return token

    async def delete_access_token(self, user_id: str, access_token_id: str) -> None:
        async with self.store.write() as session:
            token = await session.get(OAuthAccessToken, access_token_id)
            if token is None:
                raise NotFound("Access token not found")
            if token.authorizing_user_id != user_id:
                raise Unauthorized("User IDs do not match")
            await session.execute(delete(OAuthAccessToken).where(
                OAuthAccessToken.id == access_token_id))


# -- tokens ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TokenAccess:
    """What an OAuth1-scoped token shows, as of now."""

    block: dict[str, str]  # the token's OS-OAUTH1 block
    roles: list[roles_mod.RoleRef]


async def for_token(session: AsyncSession, access_token_id: str, user_id: str,
                    project_id: str | None, error: type[Exception]) -> TokenAccess:
    """Check the access token still backs a token; its roles the user still holds."""
    token = await session.get(OAuthAccessToken, access_token_id)
    if (token is None or token.authorizing_user_id != user_id
            or token.project_id != project_id
            or (token.expires_at is not None and token.expires_at < utcnow())):
        raise error(f"Could not find access token: {access_token_id}.")
    if await session.get(User, user_id) is None:
        raise error(f"Could not find user: {user_id}.")
    wanted = await roles_mod.expand_implied(session, set(token.role_ids))
    held = {r.id for r in await roles_mod.project_roles(session, user_id, token.project_id)}
    rows = (await session.scalars(select(Role).where(Role.id.in_(wanted & held)))).all()
    refs = sorted((roles_mod.RoleRef(r.id, r.name) for r in rows), key=lambda r: r.name)
    return TokenAccess({"access_token_id": token.id, "consumer_id": token.consumer_id}, refs)
