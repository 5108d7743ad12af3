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
import json as _json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

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
        # the Host header httpx sends for this URL (the default port left out)
        self.host_header = url.netloc.decode("ascii")
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
        return await _Exchange.of(self._app, request, (self._host, self._port)).run()

    async def aclose(self) -> None:
        await self._fallback.aclose()

    def target(self, url: str) -> tuple[bytes, bytes] | None:
        """(raw path, query) of ``url`` when the attached app serves it, else None."""
        if self._app is None or self._root:
            return None
        parts = urlsplit(url)
        try:
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
        except ValueError:
            return None
        if (parts.scheme != self._scheme or (parts.hostname or "") != self._host
                or port != self._port):
            return None
        return (parts.path or "/").encode("ascii"), parts.query.encode("ascii")

    async def call(self, method: str, raw_path: bytes, query: bytes,
                   headers: list[tuple[bytes, bytes]], body: bytes,
                   read_timeout: float | None) -> httpx.Response:
        """One whole request and answer through the attached app (see LocalClient)."""
        assert self._app is not None
        return await _Exchange(self._app, method, self._scheme, raw_path, query, headers,
                               _once(body), (self._host, self._port), read_timeout).answer()


async def _once(body: bytes) -> AsyncIterator[bytes]:
    if body:
        yield body


class LocalClient(httpx.AsyncClient):
    """The all-in-one's client for calls between its services. A simple request (a body
    of bytes or JSON at most, no per-request auth, cookies or extensions) to this process's
    own public URL goes to the app through :meth:`LocalTransport.call`, without building
    httpx's request and response objects (URL parsing, cookie handling, streams): for the
    small calls services make of each other on every boot and delete that machinery cost
    more than the call. The app sees what it would see from httpx (the same headers, host
    included); the answer is read whole. Everything else goes through httpx as usual."""

    def __init__(self, transport: LocalTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self._local = transport

    async def request(self, method: str, url: httpx.URL | str, *,  # type: ignore[override]
                      content: Any = None, json: Any = None, params: Any = None,
                      headers: Any = None, **rest: Any) -> httpx.Response:
        timeout = rest.get("timeout", httpx.USE_CLIENT_DEFAULT)
        # get()/post()... pass every option; only their defaults keep the short way
        plain = all(v is None or v is httpx.USE_CLIENT_DEFAULT for k, v in rest.items()
                    if k != "timeout")
        target = (self._local.target(url) if isinstance(url, str) and plain
                  and (content is None or isinstance(content, bytes))
                  and (params is None or isinstance(params, dict)) else None)
        if target is None or (params and target[1]):  # (a query in the URL and params:
            # httpx's own rules decide)
            return await super().request(method, url, content=content, json=json,
                                         params=params, headers=headers, **rest)
        raw_path, query = target
        method = method.upper()  # as httpx sends it
        if params:
            query = urlencode([(k, _text(v)) for k, values in params.items()
                               for v in (values if isinstance(values, list | tuple)
                                         else [values])]).encode("ascii")
        merged = {k.lower(): v for k, v in self.headers.items()}
        merged["host"] = self._local.host_header
        if headers:
            merged.update((str(k).lower(), str(v)) for k, v in dict(headers).items())
        body = content or b""
        if json is not None:
            body = _json.dumps(json, ensure_ascii=False, separators=(",", ":"),
                               allow_nan=False).encode("utf-8")
            merged.setdefault("content-type", "application/json")
        if body or method in ("POST", "PUT", "PATCH"):
            merged["content-length"] = str(len(body))
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in merged.items()]
        if timeout is httpx.USE_CLIENT_DEFAULT:
            read = self.timeout.read
        else:
            read = timeout.read if isinstance(timeout, httpx.Timeout) else timeout
        return await self._local.call(method, raw_path, query, raw, body, read)


def _text(value: Any) -> str:
    """A query parameter value as httpx writes it."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)


class _Exchange:
    """One request through the app: scope, receive and send as an ASGI server gives them."""

    def __init__(self, app: ASGIApp, method: str, scheme: str, raw_path: bytes, query: bytes,
                 headers: list[tuple[bytes, bytes]], body: AsyncIterator[bytes],
                 server: tuple[str, int], read_timeout: float | None,
                 request: httpx.Request | None = None) -> None:
        self.app = app
        self.request = request
        self.method = method
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": method, "scheme": scheme,
            "path": unquote(raw_path.decode("ascii")), "raw_path": raw_path,
            "query_string": query, "root_path": "", "headers": headers,
            "server": server, "client": ("127.0.0.1", 0), "extensions": {}}
        self.body = body
        self.body_done = False
        self.finished = asyncio.Event()
        self.started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future())
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue(_QUEUE_CHUNKS)
        self.ended = False  # the last body chunk is in (background work may still run)
        self.read_timeout = read_timeout

    @classmethod
    def of(cls, app: ASGIApp, request: httpx.Request, server: tuple[str, int]) -> _Exchange:
        url = request.url
        timeouts = request.extensions.get("timeout") or {}
        return cls(app, request.method, url.scheme, url.raw_path.split(b"?", 1)[0], url.query,
                   [(k.lower(), v) for k, v in request.headers.raw],
                   request.stream.__aiter__(),  # type: ignore[union-attr]
                   server, timeouts.get("read"), request)

    async def answer(self) -> httpx.Response:
        """Run the app and read its whole answer (a simple call, see LocalClient)."""
        task, status, headers = await self._begin()
        parts = []
        try:
            while (chunk := await self.waiting(self.chunks.get())) is not None:
                parts.append(chunk)
        except BaseException:
            task.cancel()
            raise
        return httpx.Response(status, headers=headers, content=b"".join(parts))

    async def waiting(self, step: Awaitable[Any]) -> Any:
        """``step`` under the client's read timeout (httpx.ReadTimeout, as on a socket)."""
        try:
            return await asyncio.wait_for(step, self.read_timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("in-process request timed out",
                                    request=self.request) from None

    async def run(self) -> httpx.Response:
        task, status, headers = await self._begin()
        return httpx.Response(status, headers=headers, stream=_Body(self, task))

    async def _begin(self) -> tuple[asyncio.Task[None], int, list[tuple[bytes, bytes]]]:
        """Start the app in a task of its own; its status and headers once it answers."""
        task = asyncio.create_task(self._serve(), context=contextvars.Context())
        try:
            status, headers = await self.waiting(asyncio.shield(self.started))
        except BaseException:
            task.cancel()
            raise
        return task, status, headers

    async def _serve(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        except asyncio.CancelledError:  # the reader went away: nobody to tell
            self.finished.set()
            raise
        except Exception:
            log.exception("%s %s failed in process", self.method, self.scope["path"])
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
