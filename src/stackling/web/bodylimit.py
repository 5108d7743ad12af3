"""Reject request bodies over a size limit with 413 before reading them into memory.

Routes that stream large bodies to disk themselves (image uploads) are exempted with a
predicate on the ASGI scope (``exempt``); they must enforce their own limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stackling.common.errors import PayloadTooLarge
from stackling.web.errors import ErrorFormatter

# True for requests whose body the route streams and limits itself.
ExemptPredicate = Callable[[Scope], bool]


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, formatter: ErrorFormatter,
                 exempt: ExemptPredicate | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.formatter = formatter
        self.exempt = exempt

    async def _reject(self, send: Send) -> None:
        body = json.dumps(self.formatter(413, "Request Entity Too Large",
                                         "Request is too large.")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.exempt is not None and self.exempt(scope)):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await self._reject(send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge()  # rendered by the service's error handlers
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except PayloadTooLarge:
            if started:
                raise
            await self._reject(send)
