"""The hot path of the whole cloud: ``GET``/``HEAD /v3/auth/tokens`` answered from caches.

Every service validates every request's token here, so the all-in-one process answers this
one request in a :class:`stackling.web.fastlane.Lane`, before routing. It runs the same
checks as the routed handler (:mod:`stackling.identity.api.tokens`): decrypt and check both
tokens (expiry, revocation, user and scope still valid) and the ``identity:validate_token``
policy. Anything else -- an error, another query, a missing header -- returns ``None`` and
goes to the routed handler, which computes the answer (and its error body) the normal way.
"""

from __future__ import annotations

from starlette.types import Scope

from stackling.common.errors import StacklingError
from stackling.identity.service.identity import Identity, to_context
from stackling.web.fastlane import Answer, Lane
from stackling.web.policy import PolicyEnforcer

PATH = "/v3/auth/tokens"
_QUERIES = {b"": True, b"nocatalog": False, b"nocatalog=1": False, b"nocatalog=true": False}


class TokenValidationResponder:
    def __init__(self, identity: Identity, enforcer: PolicyEnforcer) -> None:
        self.identity = identity
        self.enforcer = enforcer

    async def __call__(self, scope: Scope) -> Answer | None:
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
        target = {"token": {"user_id": vt.data.user_id}}
        if not self.enforcer.enforce("identity:validate_token", {**target, "target": target},
                                     to_context(caller).credentials()):
            return None
        if scope["method"] == "HEAD":
            return 200, [(b"x-subject-token", subject)], b""
        body = await tokens.render_json(vt, include_catalog)
        return 200, [(b"x-subject-token", subject),
                     (b"content-type", b"application/json")], body


def lanes(prefix: str, identity: Identity, enforcer: PolicyEnforcer) -> list[Lane]:
    """The identity lanes for an app mounted at ``prefix`` (e.g. ``/identity``)."""
    responder = TokenValidationResponder(identity, enforcer)
    return [Lane(method, f"{prefix}{PATH}", "identity", PATH, responder)
            for method in ("GET", "HEAD")]
