"""``X-Openstack-Request-Id``: one id per request, in the response, in every log line, and
an access log line per request (method, path without the query, status, duration)."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stackling.common.ids import new_request_id
from stackling.common.logging import request_id_var

access_log = logging.getLogger("stackling.access")


_SAFE = {"_stackling_redacted": True}


def log_access(scope: Scope, status: int, seconds: float) -> None:
    """One line per request. The query string is left out: it can carry signatures (S3,
    EC2 presigned URLs)."""
    if access_log.isEnabledFor(logging.INFO):
        # method, path, status and time carry no secret (tokens travel in headers, and the
        # query is left out): the redaction pass is skipped on this hot line
        access_log.info("%s %s %d %.1fms", scope["method"], scope["path"], status,
                        seconds * 1000, extra=_SAFE)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, header: bytes = b"x-openstack-request-id") -> None:
        self.app = app
        self.header = header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        raw = rid.encode()
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (self.header, raw)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log_access(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)
