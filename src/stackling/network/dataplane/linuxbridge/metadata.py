"""The metadata proxy: 169.254.169.254:80 inside each ``qdhcp-`` namespace, forwarded to
the compute metadata service with the instance identified by its port.

No process per network: a short helper (``ip netns exec <ns> python3 -c ...``) binds the
listening socket *inside* the namespace and hands the file descriptor back over a Unix
socket (SCM_RIGHTS); the agent serves all namespaces from its own event loop. A socket keeps
the namespace it was created in, so the agent itself stays in the host namespace and can
reach the compute service on 127.0.0.1. When the agent stops, the listeners go with it.

Each request: source IP -> the network's port with that fixed IP -> ``device_id`` (the
instance) and ``project_id``; forwarded with Neutron's headers ``X-Instance-ID``,
``X-Tenant-ID``, ``X-Forwarded-For`` and ``X-Instance-ID-Signature`` = hex
HMAC-SHA256(shared secret, instance id). Unknown source: 404. No upstream configured: 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

import httpx

from stackling.network.dataplane.linuxbridge.dhcp import METADATA_IP

log = logging.getLogger("stackling.network.dataplane")

_BIND_HELPER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: the address may come a moment later
s.bind((sys.argv[2], int(sys.argv[3])))
s.listen(128)
socket.send_fds(socket.socket(fileno=int(sys.argv[1])), [b"fd"], [s.fileno()])
"""

MAX_HEADER_BYTES = 16384
MAX_BODY_BYTES = 1024 * 1024


def sign(secret: str, instance_id: str) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Instance:
    device_id: str
    project_id: str


#: (network id, source ip) -> the instance, or None
Lookup = Callable[[str, str], Instance | None]


async def bind_in_netns(netns: str, address: str = METADATA_IP, port: int = 80
                        ) -> socket.socket:
    """A listening TCP socket created inside ``netns``."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", netns, sys.executable, "-c", _BIND_HELPER,
            str(child.fileno()), address, str(port), pass_fds=(child.fileno(),),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        child.close()
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise OSError(f"binding {address}:{port} in {netns} failed: "
                          f"{err.decode(errors='replace').strip()[-300:]}")
        parent.setblocking(True)
        _, fds, _, _ = socket.recv_fds(parent, 16, 1)
        if not fds:
            raise OSError(f"binding {address}:{port} in {netns}: no socket came back")
        sock = socket.socket(fileno=fds[0])
        sock.setblocking(False)
        return sock
    finally:
        parent.close()
        child.close()


class MetadataProxy:
    """One listener per network namespace, all forwarding to ``upstream``."""

    def __init__(self, lookup: Lookup, upstream: str | None, secret: str,
                 http: httpx.AsyncClient | None = None) -> None:
        self.lookup = lookup
        self.upstream = upstream.rstrip("/") if upstream else None
        self.secret = secret
        self._http = http
        self._own_http = http is None
        self._servers: dict[str, tuple[str, asyncio.Server]] = {}  # network id -> (ns, server)

    async def ensure(self, network_id: str, netns: str) -> None:
        current = self._servers.get(network_id)
        if current is not None and current[0] == netns and current[1].is_serving():
            return
        await self.remove(network_id)
        await self.serve_socket(network_id, netns, await bind_in_netns(netns))

    async def serve_socket(self, network_id: str, netns: str, sock: socket.socket) -> None:
        """Serve ``network_id``'s metadata requests on the listening ``sock``."""
        server = await asyncio.start_server(
            lambda r, w: self._serve(network_id, r, w), sock=sock)
        self._servers[network_id] = (netns, server)

    async def remove(self, network_id: str) -> None:
        entry = self._servers.pop(network_id, None)
        if entry is not None:
            entry[1].close()
            with contextlib.suppress(Exception):
                await entry[1].wait_closed()

    def served(self) -> set[str]:
        return set(self._servers)

    async def close(self) -> None:
        for network_id in list(self._servers):
            await self.remove(network_id)
        if self._http is not None and self._own_http:
            await self._http.aclose()
            self._http = None

    # -- one request --------------------------------------------------------------------
    async def _serve(self, network_id: str, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        try:
            peer = writer.get_extra_info("peername")
            source = peer[0] if peer else ""
            status, ctype, body = await self._answer(network_id, source, reader)
        except Exception as exc:  # never let one bad request take the listener down
            log.warning("metadata request failed: %s", exc)
            status, ctype, body = 500, "text/plain", b"metadata proxy error\n"
        head = (f"HTTP/1.1 {status} {_reason(status)}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n")
        with contextlib.suppress(Exception):
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()

    async def _answer(self, network_id: str, source: str, reader: asyncio.StreamReader
                      ) -> tuple[int, str, bytes]:
        async with asyncio.timeout(30):
            raw = await reader.readuntil(b"\r\n\r\n")
        if len(raw) > MAX_HEADER_BYTES:
            return 400, "text/plain", b"request too large\n"
        lines = raw.decode("latin-1").split("\r\n")
        method, target, _ = [*lines[0].split(" "), "", "", ""][:3]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY_BYTES:
            return 413, "text/plain", b"request body too large\n"
        body = await reader.readexactly(length) if length else b""
        if method not in ("GET", "HEAD", "POST") or not target.startswith("/"):
            return 400, "text/plain", b"bad request\n"
        instance = self.lookup(network_id, source)
        if instance is None or not instance.device_id:
            return 404, "text/plain", b"no instance with this address\n"
        if self.upstream is None:
            return 503, "text/plain", b"metadata service not configured\n"
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=30)
        forward = {"X-Instance-ID": instance.device_id, "X-Tenant-ID": instance.project_id,
                   "X-Forwarded-For": source,
                   "X-Instance-ID-Signature": sign(self.secret, instance.device_id)}
        if "content-type" in headers:
            forward["Content-Type"] = headers["content-type"]
        resp = await self._http.request(method, self.upstream + target, headers=forward,
                                        content=body)
        return (resp.status_code, resp.headers.get("content-type", "text/plain"),
                b"" if method == "HEAD" else resp.content)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"
