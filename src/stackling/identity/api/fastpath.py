"""The hot paths of the whole cloud: token validation and rescoping, before routing.

Every service validates every request's token here, so the all-in-one process answers this
one request in a :class:`stackling.web.fastlane.Lane`, before routing. It runs the same
checks as the routed handler (:mod:`stackling.identity.api.tokens`): decrypt and check both
tokens (expiry, revocation, user and scope still valid) and the ``identity:validate_token``
policy. Anything else -- an error, another query, a missing header -- returns ``None`` and
goes to the routed handler, which computes the answer (and its error body) the normal way.
"""

from __future__ import annotations

import json

from starlette.types import Scope

from stackling.common.errors import StacklingError
from stackling.identity.service.identity import Identity, access_rules_of, to_context
from stackling.identity.service.receipts import RECEIPT_HEADER
from stackling.web.fastlane import Answer, Lane
from stackling.web.policy import PolicyEnforcer

PATH = "/v3/auth/tokens"
RECEIPT = RECEIPT_HEADER.lower().encode()
_QUERIES = {b"": True, b"nocatalog": False, b"nocatalog=1": False, b"nocatalog=true": False}


class TokenValidationResponder:
    def __init__(self, identity: Identity, enforcer: PolicyEnforcer) -> None:
        self.identity = identity
        self.enforcer = enforcer

    async def __call__(self, scope: Scope, body: bytes) -> Answer | None:
        include_catalog = _QUERIES.get(scope["query_string"])
        if include_catalog is None:
            return None
        auth = subject = None
        for name, value in scope["headers"]:
            if name == b"x-auth-token":
                auth = value
            elif name == b"x-subject-token":
                subject = value
        if not (auth and subject):
            return None
        tokens = self.identity.tokens
        try:
            caller = await tokens.validate(auth.decode("latin-1"))
            vt = caller if subject == auth else await tokens.validate(subject.decode("latin-1"))
        except StacklingError:
            return None  # the routed handler gives the error
        if access_rules_of(caller.scope.app_cred) or access_rules_of(vt.scope.app_cred):
            return None  # access rules: the routed handler checks them
        target = {"token": {"user_id": vt.data.user_id}}
        if not self.enforcer.enforce("identity:validate_token", {**target, "target": target},
                                     to_context(caller).credentials()):
            return None
        if scope["method"] == "HEAD":
            return 200, [(b"x-subject-token", subject)], b""
        body = await tokens.render_json(vt, include_catalog)
        return 200, [(b"x-subject-token", subject),
                     (b"content-type", b"application/json")], body


class RescopeResponder:
    """``POST /v3/auth/tokens`` with the token method only (rescoping: every service and
    client does it): the same :meth:`Authenticator.authenticate` call as the routed handler,
    without the routing. The token method has no side effect when it fails, so a failure
    simply goes the routed way and is answered there. Other methods (password: lockout
    counters; trusts: use counts; oauth1; receipts) always go the routed way."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    async def __call__(self, scope: Scope, body: bytes) -> Answer | None:
        include_catalog = _QUERIES.get(scope["query_string"])
        if include_catalog is None:
            return None
        for name, _ in scope["headers"]:
            if name == RECEIPT:
                return None
        try:
            request = json.loads(body)
            methods = request["auth"]["identity"]["methods"]
        except (ValueError, TypeError, KeyError):
            return None
        if methods != ["token"]:
            return None
        try:
            vt = await self.identity.authenticator.authenticate(request)
            body = await self.identity.tokens.render_bytes(vt, include_catalog)
        except StacklingError:
            return None
        return 201, [(b"x-subject-token", vt.id.encode()),
                     (b"content-type", b"application/json")], body


def lanes(prefix: str, identity: Identity, enforcer: PolicyEnforcer) -> list[Lane]:
    """The identity lanes for an app mounted at ``prefix`` (e.g. ``/identity``)."""
    validate = TokenValidationResponder(identity, enforcer)
    path = f"{prefix}{PATH}"
    return [Lane("GET", path, "identity", PATH, validate),
            Lane("HEAD", path, "identity", PATH, validate),
            Lane("POST", path, "identity", PATH, RescopeResponder(identity), max_body=65536)]
