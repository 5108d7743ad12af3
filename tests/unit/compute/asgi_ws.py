"""A minimal websocket client that speaks ASGI to an app in the test's event loop (httpx
has no websockets; Starlette's TestClient runs the app in another loop)."""

from __future__ import annotations

import asyncio
import time
from typing import Any


class AsgiWebSocket:
    """A minimal websocket client speaking ASGI to an app in this event loop."""

    def __init__(self, app: Any, path: str, query: str, subprotocols: list[str]) -> None:
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        headers = [(b"sec-websocket-protocol", ", ".join(subprotocols).encode())] \
            if subprotocols else []
        scope = {"type": "websocket", "path": path, "raw_path": path.encode(),
                 "query_string": query.encode(), "headers": headers, "root_path": "",
                 "scheme": "ws", "server": ("test", 80), "client": ("127.0.0.1", 1),
                 "subprotocols": subprotocols, "asgi": {"version": "3.0"}}
        self.task = asyncio.create_task(app(scope, self.to_app.get, self.from_app.put))

    async def connect(self) -> dict[str, Any]:
        await self.to_app.put({"type": "websocket.connect"})
        return await asyncio.wait_for(self.from_app.get(), 30)

    async def send(self, data: bytes) -> None:
        await self.to_app.put({"type": "websocket.receive", "bytes": data})

    async def receive(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.from_app.get(), 30)

    async def close(self) -> None:
        await self.to_app.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 30)


async def receive_until(ws: AsgiWebSocket, wanted: bytes, limit: float = 60) -> bytes:
    data = b""
    deadline = time.monotonic() + limit
    while wanted not in data:
        assert time.monotonic() < deadline, data
        message = await ws.receive()
        assert message["type"] == "websocket.send", message
        data += message.get("bytes") or b""
    return data
