"""Calls between services of one process, without the socket.

In the all-in-one cloud every API is mounted in one ASGI app, and services still call each
other over REST at their catalog URLs (compute asks image for an image, network for a
server's ports). Over the loopback each such call is parsed twice (httpx/h11 on the way
out, uvicorn on the way in), which costs more CPU than most of the handlers it reaches.

:class:`LocalTransport` is an httpx transport that hands requests for this process's own
public URL to the ASGI app directly, as uvicorn would (same scope, same middleware, same
token check), and sends everything else over the network. The app runs in a task of its
own with a fresh context, like a request on another connection; the response body streams
through a small bounded queue, so an image download is not held in memory whole; the
client's read timeout applies as it would on a socket. A public URL with a path (a proxy
that strips a prefix) is left to the network: the proxy decides what the app sees.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.types import ASGIApp, Message

log = logging.getLogger("stackling.clients.local")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_QUEUE_CHUNKS = 8  # response chunks held between the app and a slow reader


class LocalTransport(httpx.AsyncBaseTransport):
    """Requests under ``base_url`` go to the :meth:`attach`-ed app; the rest (and all of
    them until an app is attached) to ``fallback``."""

    def __init__(self, base_url: str, fallback: httpx.AsyncBaseTransport | None = None
                 ) -> None:
        url = httpx.URL(base_url)
        self._scheme = url.scheme
        self._host = url.host
        self._port = url.port or _DEFAULT_PORTS.get(url.scheme, 80)
        self._root = url.path.rstrip("/")
        self._fallback = fallback or httpx.AsyncHTTPTransport()
        self._app: ASGIApp | None = None

    def attach(self, app: ASGIApp) -> None:
        self._app = app

    def serves(self, url: httpx.URL) -> bool:
        port = url.port or _DEFAULT_PORTS.get(url.scheme, 80)
        return (self._app is not None and not self._root and url.scheme == self._scheme
                and url.host == self._host and port == self._port)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._app is None or not self.serves(request.url):
            return await self._fallback.handle_async_request(request)
        return await _Exchange(self._app, request, (self._host, self._port)).run()

    async def aclose(self) -> None:
        await self._fallback.aclose()


class _Exchange:
    """One request through the app: scope, receive and send as an ASGI server gives them."""

    def __init__(self, app: ASGIApp, request: httpx.Request, server: tuple[str, int]
                 ) -> None:
        self.app = app
        self.request = request
        url = request.url
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": request.method, "scheme": url.scheme,
            "path": unquote(url.path), "raw_path": url.raw_path.split(b"?", 1)[0],
            "query_string": url.query, "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": server, "client": ("127.0.0.1", 0), "extensions": {}}
        self.body = request.stream.__aiter__()  # type: ignore[union-attr]
        self.body_done = False
        self.finished = asyncio.Event()
        self.started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future())
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUE_CHUNKS)
        self.ended = False  # the last body chunk is in (background work may still run)
        timeouts = request.extensions.get("timeout") or {}
        self.read_timeout: float | None = timeouts.get("read")

    async def waiting(self, step: Awaitable[Any]) -> Any:
        """``step`` under the client's read timeout (httpx.ReadTimeout, as on a socket)."""
        try:
            return await asyncio.wait_for(step, self.read_timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("in-process request timed out",
                                    request=self.request) from None

    async def run(self) -> httpx.Response:
        task = asyncio.create_task(self._serve(), context=contextvars.Context())
        try:
            status, headers = await self.waiting(asyncio.shield(self.started))
        except BaseException:
            task.cancel()
            raise
        return httpx.Response(status, headers=headers, stream=_Body(self, task))

    async def _serve(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        except asyncio.CancelledError:  # the reader went away: nobody to tell
            self.finished.set()
            raise
        except Exception:
            log.exception("%s %s failed in process", self.request.method, self.request.url.path)
            if not self.started.done():
                self.started.set_result((500, [(b"content-type", b"text/plain")]))
                await self.chunks.put(b"Internal Server Error")
        if not self.started.done():  # the app returned without answering
            self.started.set_result((500, []))
        self.finished.set()
        await self._end()

    async def _end(self) -> None:
        if not self.ended:
            self.ended = True
            await self.chunks.put(None)

    async def _receive(self) -> Message:
        if self.body_done:
            await self.finished.wait()
            return {"type": "http.disconnect"}
        try:
            chunk = await self.body.__anext__()
        except StopAsyncIteration:
            self.body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": bytes(chunk), "more_body": True}

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started.set_result((int(message["status"]),
                                     list(message.get("headers", []))))
        elif kind == "http.response.body":
            body = message.get("body", b"")
            if body and not self.ended:
                await self.chunks.put(bytes(body))
            if not message.get("more_body", False):
                await self._end()


class _Body(httpx.AsyncByteStream):
    def __init__(self, exchange: _Exchange, task: asyncio.Task[None]) -> None:
        self._exchange = exchange
        self._task = task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        exchange, chunks = self._exchange, self._exchange.chunks
        while True:
            # usually already queued: the app ran while this task waited for the start
            chunk = (chunks.get_nowait() if not chunks.empty()
                     else await exchange.waiting(chunks.get()))
            if chunk is None:
                return
            yield chunk

    async def aclose(self) -> None:
        if not self._task.done():  # the reader stopped early: stop the app too
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
