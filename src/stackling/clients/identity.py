"""How services outside identity validate tokens: over REST, with their own service token.

:class:`RemoteTokenValidator` asks identity (``GET /v3/auth/tokens``) and turns the answer
into a :class:`RequestContext`. Wrap it in :class:`stackling.web.auth.CachingValidator` and
call :func:`follow_revocations` with its ``forget_all``, so a revoked token stops working
before its cache entry expires: identity announces every revocation on the bus fanout topic
``identity.revocations``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from stackling.bus import Message, Subscription, Transport, register
from stackling.common.context import RequestContext
from stackling.common.errors import NotFound, ServiceUnavailable, Unauthorized
from stackling.common.timeutils import parse_isotime, utcnow

REVOCATION_TOPIC = "identity.revocations"


@register
class TokensRevoked(Message):
    """Some tokens were revoked: drop cached validations."""

    NAME: ClassVar[str] = "identity.tokens_revoked"
    VERSION: ClassVar[str] = "1.0"


@dataclass(frozen=True, slots=True)
class ServiceCredentials:
    username: str
    password: str
    project_name: str = "service"
    user_domain_id: str = "default"
    project_domain_id: str = "default"

    def __repr__(self) -> str:  # never show the password
        return f"ServiceCredentials(username={self.username!r}, project={self.project_name!r})"


def context_from_token(body: dict[str, Any], token: str, request_id: str) -> RequestContext:
    tok = body["token"]
    project = tok.get("project") or {}
    domain = tok.get("domain") or {}
    roles = tuple(r["name"] for r in tok.get("roles", []))
    return RequestContext(
        request_id=request_id,
        user_id=tok["user"]["id"],
        user_name=tok["user"].get("name"),
        user_domain_id=tok["user"].get("domain", {}).get("id"),
        project_id=project.get("id"),
        project_name=project.get("name"),
        project_domain_id=project.get("domain", {}).get("id") if project else None,
        domain_id=domain.get("id"),
        domain_name=domain.get("name"),
        system_scope="all" if tok.get("system", {}).get("all") else None,
        roles=roles,
        role_ids=tuple(r["id"] for r in tok.get("roles", [])),
        audit_ids=tuple(tok.get("audit_ids", ())),
        methods=tuple(tok.get("methods", ())),
        is_service="service" in roles,
        token=token,
        application_credential_id=(tok.get("application_credential") or {}).get("id"),
        expires_at=tok.get("expires_at"),
        # delegation, as identity's own context has it (stackling.identity.service.identity)
        extra={name: tok[key] for name, key in (("trust", "OS-TRUST:trust"),
                                                ("oauth1", "OS-OAUTH1")) if key in tok},
    )


class RemoteTokenValidator:
    def __init__(self, identity_url: str, credentials: ServiceCredentials,
                 client: httpx.AsyncClient | None = None) -> None:
        self.identity_url = identity_url.rstrip("/")
        self.credentials = credentials
        self.client = client or httpx.AsyncClient(timeout=10.0)
        self._service_token: tuple[str, float] | None = None
        self._lock = asyncio.Lock()

    async def service_token(self, force: bool = False) -> str:
        async with self._lock:
            cached = self._service_token
            if cached is not None and not force and cached[1] > time.monotonic():
                return cached[0]
            c = self.credentials
            body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": c.username, "domain": {"id": c.user_domain_id},
                "password": c.password}}},
                "scope": {"project": {"name": c.project_name,
                                      "domain": {"id": c.project_domain_id}}}}}
            try:
                response = await self.client.post(
                    f"{self.identity_url}/v3/auth/tokens?nocatalog", json=body)
            except httpx.HTTPError as exc:
                raise ServiceUnavailable("The identity service cannot be reached.") from exc
            if response.status_code != 201:
                raise ServiceUnavailable("This service cannot authenticate to identity "
                                         f"(HTTP {response.status_code}).")
            token = response.headers["X-Subject-Token"]
            expires = parse_isotime(response.json()["token"]["expires_at"])
            # renew a minute before it expires
            left = (expires - utcnow()).total_seconds() - 60
            self._service_token = (token, time.monotonic() + max(left, 0))
            return token

    async def validate_context(self, token: str, request_id: str) -> RequestContext:
        for attempt in (0, 1):
            headers = {"X-Auth-Token": await self.service_token(force=attempt == 1),
                       "X-Subject-Token": token}
            try:
                response = await self.client.get(f"{self.identity_url}/v3/auth/tokens",
                                                 headers=headers)
            except httpx.HTTPError as exc:
                raise ServiceUnavailable("The identity service cannot be reached.") from exc
            if response.status_code == 200:
                return context_from_token(response.json(), token, request_id)
            if response.status_code == 404:
                raise NotFound("The token is not valid.")
            if response.status_code != 401:
                break  # 401: our own service token went stale; get a new one once
        raise Unauthorized("The request you have made requires authentication.")

    async def close(self) -> None:
        await self.client.aclose()


async def announce_revocation(transport: Transport) -> None:
    await transport.fanout(REVOCATION_TOPIC, TokensRevoked())


async def follow_revocations(transport: Transport,
                             forget: Callable[[], None]) -> Subscription:
    """Call ``forget`` whenever any identity process announces a revocation: e.g. a
    :class:`CachingValidator`'s ``forget_all``, or another identity process's cache reset."""

    async def handler(message: Message, context: Any) -> None:
        forget()

    return await transport.serve(REVOCATION_TOPIC, handler, fanout=True)
