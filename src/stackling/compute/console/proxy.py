"""The console websocket proxy (noVNC compatible): ``/websockify?token=...`` to a VM's VNC
server, ``/serial?token=...`` to its serial console, bytes both ways.

The token is checked and consumed first (:class:`~.tokens.ConsoleAuth`); then the agent of
the instance's host names the console's socket (a bus call), and the proxy connects to it.
noVNC asks for the ``binary`` subprotocol (older ones also offer ``base64``, which is not
supported); it is echoed when offered. noVNC's own pages are served from
``/usr/share/novnc`` when the Debian ``novnc`` package is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from stackling.compute.console.tokens import ConsoleAuth, Grant

log = logging.getLogger(__name__)

#: (grant, kind "vnc"|"serial") -> the unix socket to connect to; raises on failure
Locate = Callable[[Grant, str], Awaitable[str]]
NOVNC_DIR = Path("/usr/share/novnc")


async def _pump_ws_to_socket(ws: WebSocket, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None and message.get("text") is not None:
                data = message["text"].encode()
            if data:
                writer.write(data)
                await writer.drain()
    except (WebSocketDisconnect, ConnectionError):
        return


async def _pump_socket_to_ws(reader: asyncio.StreamReader, ws: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, ConnectionError, RuntimeError):
        while chunk := await reader.read(65536):
            await ws.send_bytes(chunk)


def create_app(auth: ConsoleAuth, locate: Locate, novnc_dir: Path | None = NOVNC_DIR
               ) -> Starlette:
    def endpoint(kind: str, socket_kind: str) -> Callable[[WebSocket], Awaitable[None]]:
        async def handler(ws: WebSocket) -> None:
            token = ws.query_params.get("token", "")
            offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "")
                       .split(",") if p.strip()]
            grant = auth.check(token, kind)
            if grant is None:
                await ws.close(code=1008, reason="Invalid or expired console token.")
                return
            try:
                path = await locate(grant, socket_kind)
                reader, writer = await asyncio.open_unix_connection(path)
            except Exception as exc:
                log.info("console of %s unavailable: %s", grant.instance_uuid, exc)
                await ws.close(code=1011, reason="The console is not available.")
                return
            await ws.accept(subprotocol="binary" if "binary" in offered else None)
            up = asyncio.create_task(_pump_ws_to_socket(ws, writer))
            down = asyncio.create_task(_pump_socket_to_ws(reader, ws))
            try:
                await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (up, down):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
                with contextlib.suppress(RuntimeError):
                    await ws.close()
        return handler

    routes: list[Route | WebSocketRoute | Mount] = [
        WebSocketRoute("/websockify", endpoint("novnc", "vnc")),
        WebSocketRoute("/serial", endpoint("serial", "serial")),
    ]
    if novnc_dir is not None and novnc_dir.is_dir():
        routes.append(Mount("/", StaticFiles(directory=novnc_dir, html=True)))
    return Starlette(routes=routes)
