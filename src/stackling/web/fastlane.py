"""Answer a few very hot requests before any routing or framework middleware.

A :class:`Lane` names one ``(method, path)`` and a responder that either returns the whole
answer or ``None``. On ``None`` the request continues to the normal app (with the body, if
the lane read it, replayed), which must compute the same answer (and every error) on its
own: a lane is a faster copy of a routed handler's success path, never different behaviour,
and its responder must have no side effect when it returns ``None``. A lane's answer still
gets what every response gets: an ``X-Openstack-Request-Id``, an access log line and request
metrics.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stackling.common.ids import new_request_id
from stackling.common.logging import request_id_var
from stackling.web.metrics import RequestRecorder
from stackling.web.requestid import log_access

# (status, headers, body); headers without content-length (added here)
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
Responder = Callable[[Scope, bytes], Awaitable[Answer | None]]  # (scope, body)


@dataclass
class Lane:
    method: str
    path: str  # the full path as the client sends it, e.g. /identity/v3/auth/tokens
    service: str  # metrics label
    route: str  # metrics label, the route template inside the service
    responder: Responder
    max_body: int = 0  # >0: read a body up to this size (with a Content-Length) first
    recorder: RequestRecorder = field(init=False)

    def __post_init__(self) -> None:
        self.recorder = RequestRecorder(self.service)


class FastLane:
    def __init__(self, app: ASGIApp, lanes: Sequence[Lane]) -> None:
        self.app = app
        self.lanes = {(lane.method, lane.path): lane for lane in lanes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = None
        if scope["type"] == "http":
            lane = self.lanes.get((scope["method"], scope["path"]))
        if lane is not None:
            started = time.perf_counter()
            body = b""
            if lane.max_body:
                read = await _read_body(scope, receive, lane.max_body)
                if read is None:
                    await self.app(scope, receive, send)
                    return
                body, receive = read
            rid = new_request_id()
            token = request_id_var.set(rid)
            try:
                answer = await lane.responder(scope, body)
                if answer is not None:
                    status, headers, body = answer
                    headers = [*headers, (b"content-length", str(len(body)).encode()),
                               (b"x-openstack-request-id", rid.encode())]
                    await send({"type": "http.response.start", "status": status,
                                "headers": headers})
                    await send({"type": "http.response.body",
                                "body": b"" if scope["method"] == "HEAD" else body})
                    elapsed = time.perf_counter() - started
                    lane.recorder.record(scope["method"], lane.route, status, elapsed)
                    log_access(scope, status, elapsed)
                    return
            finally:
                request_id_var.reset(token)
        await self.app(scope, receive, send)


async def _read_body(scope: Scope, receive: Receive,
                     limit: int) -> tuple[bytes, Receive] | None:
    """The whole body and a ``receive`` that replays it, or None (nothing read) when the
    request has no Content-Length or a larger one."""
    length = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
    if length is None or length > limit:
        return None
    chunks: list[bytes] = []
    messages: list[Message] = []
    more = True
    while more:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return b"".join(chunks), replay
