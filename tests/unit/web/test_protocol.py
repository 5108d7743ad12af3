"""The coalescing uvicorn protocol: one segment per small response, nothing lost or reordered."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from stackling.web.protocol import CoalescingHttpToolsProtocol, CoalescingTransport


class _Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0


async def test_writes_in_one_turn_leave_as_one() -> None:
    inner = _Recorder()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(bytearray(b"body"))
    assert inner.writes == []  # nothing before the end of this turn
    assert transport.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert inner.writes[-1] == b"next"


async def test_close_writes_what_is_gathered_and_abort_drops_it() -> None:
    inner = _Recorder()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"last words")
    transport.close()
    assert inner.writes == [b"last words"] and inner.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing more
    assert inner.writes == [b"last words"]

    inner2 = _Recorder()
    transport2 = CoalescingTransport(inner2, asyncio.get_running_loop())
    transport2.write(b"never")
    transport2.abort()
    await asyncio.sleep(0)
    assert inner2.writes == [] and inner2.aborted


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(50):
            await send({"type": "http.response.body", "body": b"%04d" % i + b"x" * 65536,
                        "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"end"})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-length", str(len(body) + 3).encode())]})
    await send({"type": "http.response.body", "body": b"ok:" + body})


@pytest.fixture
async def server() -> Any:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    srv = uvicorn.Server(uvicorn.Config(_app, log_config=None, access_log=False,
                                        lifespan="off", http=CoalescingHttpToolsProtocol))
    task = asyncio.create_task(srv.serve(sockets=[sock]))
    while not srv.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    srv.should_exit = True
    await task
    sock.close()


async def test_keep_alive_and_streaming_through_uvicorn(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        answers = await asyncio.gather(*(client.post("/echo", content=b"%d" % i)
                                          for i in range(20)))
        assert [a.status_code for a in answers] == [201] * 20
        assert [a.content for a in answers] == [b"ok:%d" % i for i in range(20)]
        streamed = await client.get("/stream")
        assert streamed.status_code == 200
        expected = b"".join(b"%04d" % i + b"x" * 65536 for i in range(50)) + b"end"
        assert streamed.content == expected
