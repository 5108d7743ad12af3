"""``X-Openstack-Request-Id``: one id per request, in the response, in every log line, and
an access log line per request (method, path without the query, status, duration)."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stackling.common.logging import request_id_var

access_log = logging.getLogger("stackling.access")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, header: bytes = b"x-openstack-request-id") -> None:
        self.app = app
        self.header = header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = f"req-{uuid.uuid4()}"
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
            if access_log.isEnabledFor(logging.INFO):
                # the query string is left out: it can carry signatures (S3, EC2)
                access_log.info("%s %s %d %.1fms", scope["method"], scope["path"], status,
                                (time.perf_counter() - started) * 1000)
            request_id_var.reset(token)
