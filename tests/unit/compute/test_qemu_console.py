"""Console tokens and the websocket proxy, against a unix socket server standing in for a
VM's VNC server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from stackling.compute.console.proxy import create_app
from stackling.compute.console.tokens import ConsoleAuth, Grant, load_secret
from tests.unit.compute.asgi_ws import AsgiWebSocket, receive_until


def test_tokens_are_one_time_expiring_and_tamper_proof(tmp_path: Path) -> None:
    secret = load_secret(tmp_path)
    assert load_secret(tmp_path) == secret and (tmp_path / "console-secret").stat().st_mode \
        & 0o077 == 0
    issuer, checker = ConsoleAuth(secret), ConsoleAuth(secret)  # API and proxy
    token = issuer.issue("uuid-1", "node-1", "novnc")
    assert checker.check(token, "serial") is None  # another kind
    grant = checker.check(token, "novnc")
    assert grant is not None and (grant.instance_uuid, grant.host) == ("uuid-1", "node-1")
    assert checker.check(token, "novnc") is None  # used once
    payload, _, mac = issuer.issue("uuid-1", "node-1", "novnc").partition(".")
    assert checker.check(f"{payload}.{'0' * len(mac)}", "novnc") is None
    assert ConsoleAuth(b"another secret").check(issuer.issue("u", "h", "serial"),
                                                 "serial") is None
    expired = ConsoleAuth(secret, ttl=-1).issue("uuid-1", "node-1", "serial")
    assert checker.check(expired, "serial") is None
    assert checker.check("garbage", "serial") is None


@pytest.fixture
async def vnc_server(tmp_path: Path) -> AsyncIterator[Path]:
    """Says an RFB greeting, then echoes."""
    path = tmp_path / "vnc.sock"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"RFB 003.008\n")
        await writer.drain()
        while data := await reader.read(1024):
            writer.write(data.upper())
            await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(serve, path=str(path))
    yield path
    server.close()
    await server.wait_closed()


async def test_proxy_pipes_bytes_after_a_valid_token(vnc_server: Path, tmp_path: Path) -> None:
    auth = ConsoleAuth(load_secret(tmp_path))
    asked: list[tuple[str, str]] = []

    async def locate(grant: Grant, kind: str) -> str:
        asked.append((grant.instance_uuid, kind))
        return str(vnc_server)

    app = create_app(auth, locate, novnc_dir=None)
    token = auth.issue("uuid-1", "node-1", "novnc")
    ws = AsgiWebSocket(app, "/websockify", f"token={token}", ["binary", "base64"])
    accepted = await ws.connect()
    assert accepted == {"type": "websocket.accept", "subprotocol": "binary", "headers": []}
    assert await receive_until(ws, b"RFB 003.008\n") == b"RFB 003.008\n"
    await ws.send(b"hello")
    assert (await receive_until(ws, b"HELLO")).endswith(b"HELLO")
    await ws.close()
    assert asked == [("uuid-1", "vnc")]

    # the same token again, and a serial token on the VNC path: refused before any connect
    for query in (f"token={token}", f"token={auth.issue('uuid-1', 'node-1', 'serial')}"):
        ws = AsgiWebSocket(app, "/websockify", query, ["binary"])
        refused = await ws.connect()
        assert refused["type"] == "websocket.close" and refused["code"] == 1008
    assert len(asked) == 1


async def test_proxy_closes_when_the_console_is_gone(tmp_path: Path) -> None:
    auth = ConsoleAuth(load_secret(tmp_path))

    async def locate(grant: Grant, kind: str) -> str:
        return str(tmp_path / "missing.sock")

    app = create_app(auth, locate, novnc_dir=None)
    ws = AsgiWebSocket(app, "/serial", f"token={auth.issue('u', 'h', 'serial')}", [])
    closed = await ws.connect()
    assert closed["type"] == "websocket.close" and closed["code"] == 1011
