"""The metadata proxy's request handling on a loopback listener (no namespaces, no root)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from stackling.network.dataplane.linuxbridge.metadata import Instance, MetadataProxy, sign


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    return sock


def upstream(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"path": request.url.path, "method": request.method,
                                     "body": request.content.decode(),
                                     "headers": dict(request.headers)})


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[MetadataProxy, str]]:
    known = {("net1", "127.0.0.1"): Instance("inst-1", "proj-1")}
    http = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    proxy = MetadataProxy(lambda net, ip: known.get((net, ip)), "http://nova.example/md",
                          "s3cret", http)
    sock = listener()
    port = sock.getsockname()[1]
    await proxy.serve_socket("net1", "test-ns", sock)
    yield proxy, f"http://127.0.0.1:{port}"
    await proxy.close()
    await http.aclose()


async def get(url: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.request(kw.pop("method", "GET"), url, **kw)


async def test_forwards_with_neutron_headers(proxy: tuple[MetadataProxy, str]) -> None:
    _, url = proxy
    resp = await get(f"{url}/openstack/latest/meta_data.json?x=1")
    assert resp.status_code == 200
    seen = resp.json()
    assert seen["path"] == "/md/openstack/latest/meta_data.json"
    assert seen["headers"]["x-instance-id"] == "inst-1"
    assert seen["headers"]["x-tenant-id"] == "proj-1"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    expected = hmac.new(b"s3cret", b"inst-1", hashlib.sha256).hexdigest()
    assert seen["headers"]["x-instance-id-signature"] == expected == sign("s3cret", "inst-1")
    posted = await get(f"{url}/openstack/latest/password", method="POST", content=b"pw")
    assert json.loads(posted.content)["body"] == "pw"


async def test_unknown_source_and_missing_upstream(proxy: tuple[MetadataProxy, str]) -> None:
    p, url = proxy
    p.lookup = lambda net, ip: None
    resp = await get(f"{url}/latest/meta-data/")
    assert resp.status_code == 404
    p.lookup = lambda net, ip: Instance("inst-1", "proj-1")
    p.upstream = None
    assert (await get(f"{url}/latest/meta-data/")).status_code == 503
    assert (await get(f"{url}/x", method="DELETE")).status_code == 400
    assert p.served() == {"net1"}
