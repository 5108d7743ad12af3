"""How services outside identity validate tokens: over REST, with their own service token.

:class:`RemoteTokenValidator` asks identity (``GET /v3/auth/tokens``) and turns the answer
into a :class:`RequestContext`. Wrap it in :class:`stackling.web.auth.CachingValidator` and
call :func:`follow_revocations` with its ``forget_all``, so a revoked token stops working
before its cache entry expires: identity announces every revocation on the bus fanout topic
``identity.revocations``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import httpx

from stackling.bus import Message, Subscription, Transport, register
from stackling.clients.session import ServiceCredentials as ServiceCredentials
from stackling.clients.session import ServiceSession
from stackling.common.context import RequestContext
from stackling.common.errors import NotFound, ServiceUnavailable, Unauthorized
from stackling.web import access_rules

REVOCATION_TOPIC = "identity.revocations"


@register
class TokensRevoked(Message):
    """Some tokens were revoked: drop cached validations."""

    NAME: ClassVar[str] = "identity.tokens_revoked"
    VERSION: ClassVar[str] = "1.0"


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
        access_rules=tuple(rules) if (rules := (tok.get("application_credential") or {})
                                      .get("access_rules")) else None,
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
        self.session = ServiceSession(identity_url, credentials, client, timeout=10.0)
        self.client = self.session.client

    async def service_token(self, force: bool = False) -> str:
        return await self.session.token(force)

    async def validate_context(self, token: str, request_id: str) -> RequestContext:
        for attempt in (0, 1):
            headers = {"X-Auth-Token": await self.service_token(force=attempt == 1),
                       "X-Subject-Token": token,
                       # we enforce access rules (web.auth), so identity may hand us such tokens
                       access_rules.HEADER: access_rules.VERSION}
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
        await self.session.close()


async def announce_revocation(transport: Transport) -> None:
    await transport.fanout(REVOCATION_TOPIC, TokensRevoked())


async def follow_revocations(transport: Transport,
                             forget: Callable[[], None]) -> Subscription:
    """Call ``forget`` whenever any identity process announces a revocation: e.g. a
    :class:`CachingValidator`'s ``forget_all``, or another identity process's cache reset."""

    async def handler(message: Message, context: Any) -> None:
        forget()

    return await transport.serve(REVOCATION_TOPIC, handler, fanout=True)
