"""Token authentication for every API (the keystonemiddleware part of the seeds).

A service is given a :class:`TokenValidator`. In the all-in-one process that is identity's
own token service (no HTTP round trip); in split mode it is
:class:`stackling.clients.identity.RemoteTokenValidator`. :class:`CachingValidator` wraps any
validator with a bounded TTL cache that forgets tokens when identity announces revocations.
Routes get the caller with ``Depends(request_context)``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from fastapi import Request

from stackling.common.context import RequestContext
from stackling.common.errors import NotFound, Unauthorized
from stackling.common.timeutils import parse_isotime, utcnow
from stackling.web import access_rules
from stackling.web.urls import route_path

log = logging.getLogger(__name__)


class TokenValidator(Protocol):
    async def validate_context(self, token: str, request_id: str) -> RequestContext:
        """The caller's context. Raises Unauthorized for an unknown, expired or revoked
        token; other errors (identity unreachable) propagate as ServiceUnavailable."""
        ...


class CachingValidator:
    """Bounded LRU of validated tokens, each kept at most ``ttl`` seconds and never past
    the token's own expiry. :meth:`forget_all` is called on revocation notifications.

    The announcement can reach this cache before it reaches the identity process that
    answers the next validation, and that process may still call the revoked token valid
    (its own view of the revocations lags by up to its ``cache_ttl``, 2 s). So for
    ``settle`` seconds after a ``forget_all`` (and for any validation that was in flight
    when it came) an answer is kept only until the window ends, then asked again.

    ``generation`` (identity's own cache of its validations: its store's revision) drops
    every answer kept before it last changed."""

    def __init__(self, inner: TokenValidator, ttl: float, size: int,
                 settle: float = 3.0, clock: Callable[[], float] = time.monotonic,
                 generation: Callable[[], int] = lambda: 0) -> None:
        self.inner = inner
        self.clock = clock
        self.generation = generation
        self.ttl = ttl
        self.size = size
        self.settle = settle
        self._settled_at = 0.0
        self._cache: OrderedDict[str, tuple[float, int, RequestContext]] = OrderedDict()

    async def validate_context(self, token: str, request_id: str) -> RequestContext:
        now = self.clock()
        generation = self.generation()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now and hit[1] == generation:
            self._cache.move_to_end(token)
            return dataclasses.replace(hit[2], request_id=request_id)
        context = await self.inner.validate_context(token, request_id)
        if self.size and self.ttl:
            until = now + self.ttl
            if context.expires_at:
                left = (parse_isotime(context.expires_at) - utcnow()).total_seconds()
                until = min(until, now + left)
            if now < self._settled_at:  # asked while a revocation may still be spreading
                until = min(until, self._settled_at)
            self._cache[token] = (until, generation, context)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return context

    def forget_all(self) -> None:
        self._cache.clear()
        self._settled_at = self.clock() + self.settle


async def request_context(request: Request) -> RequestContext:
    """FastAPI dependency: the authenticated caller, or 401."""
    cached = getattr(request.state, "context", None)
    if isinstance(cached, RequestContext):
        return cached
    token = request.headers.get("x-auth-token")
    if not token:
        raise Unauthorized("The request you have made requires authentication.")
    validator: TokenValidator = request.app.state.validator
    try:
        context = await validator.validate_context(token, getattr(request.state, "request_id",
                                                                   ""))
    except NotFound as exc:
        raise Unauthorized("The request you have made requires authentication.") from exc
    if context.access_rules is not None:
        path = route_path(request)
        if not access_rules.permits(context.access_rules, request.app.state.service_types,
                                    request.method, path):
            log.info("token of application credential %s: no access rule allows %s %s",
                     context.application_credential_id, request.method, path)
            raise Unauthorized("The request you have made requires authentication.")
    request.state.context = context
    return context

