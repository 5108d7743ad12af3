"""LocalTransport: requests for this process's URL reach its ASGI app without a socket."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from stackling.clients.local import LocalClient, LocalTransport

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="")
produced: list[int] = []


async def show(request: Request) -> JSONResponse:
    caller = seen.get()
    seen.set("callee")  # must not leak into the caller either
    return JSONResponse({"path": request.url.path, "query": request.url.query,
                         "token": request.headers.get("x-auth-token"),
                         "caller_context": caller}, headers={"x-one": "1"})


async def echo(request: Request) -> Response:
    return Response(await request.body(), status_code=201)


async def chunks(request: Request) -> StreamingResponse:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(1000):
            produced.append(i)
            yield b"%d," % i
    return StreamingResponse(gen())


async def headers(request: Request) -> JSONResponse:
    return JSONResponse({"headers": dict(request.headers), "query": request.url.query,
                         "body": (await request.body()).decode()})


async def broken(request: Request) -> Response:
    raise RuntimeError("boom")


async def slow(request: Request) -> Response:
    await asyncio.sleep(5)
    return Response(b"late")


APP = Starlette(routes=[Mount("/image", routes=[
    Route("/v2/images/{id}", show), Route("/echo", echo, methods=["POST"]),
    Route("/chunks", chunks), Route("/broken", broken), Route("/slow", slow),
    Route("/headers", headers, methods=["GET", "POST", "DELETE"])])])


def remote(request: httpx.Request) -> httpx.Response:
    return httpx.Response(299, json={"remote": str(request.url)})


@pytest.fixture(params=["httpx", "local"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """The transport under a plain httpx client, and under LocalClient (whose simple
    requests skip httpx's request and response objects): both must behave the same."""
    local = LocalTransport("http://127.0.0.1:8780", fallback=httpx.MockTransport(remote))
    local.attach(APP)
    c = (httpx.AsyncClient(transport=local) if request.param == "httpx"
         else LocalClient(local))
    async with c:
        yield c


async def test_the_app_sees_what_httpx_would_send() -> None:
    """LocalClient's short way gives the app the headers, query and body httpx gives it."""
    local = LocalTransport("http://127.0.0.1:8780", fallback=httpx.MockTransport(remote))
    local.attach(APP)
    url = "http://127.0.0.1:8780/image/headers"
    kinds = [("GET", {"params": {"device_id": "d 1", "x": ["p", "q"], "flag": True}}),
             ("GET", {"params": {"a": "1"}, "timeout": 5}),
             ("POST", {"json": {"k": "välue", "n": [1, None]},
                       "headers": {"X-Auth-Token": "t"}}),
             ("POST", {"content": b"raw"}), ("DELETE", {})]
    calls = []
    real_call = local.call

    async def counted(*args: object, **kwargs: object) -> httpx.Response:
        calls.append(args[0])
        return await real_call(*args, **kwargs)  # type: ignore[arg-type]

    local.call = counted  # type: ignore[method-assign]
    async with httpx.AsyncClient(transport=local) as plain, LocalClient(local) as short:
        assert (await short.get(url, params={"a": "1"})).status_code == 200
        assert calls == ["GET"]  # get() with its defaults takes the short way too
        for method, kwargs in kinds:
            a = (await plain.request(method, url, **kwargs)).json()  # type: ignore[arg-type]
            b = (await short.request(method, url, **kwargs)).json()  # type: ignore[arg-type]
            assert a == b, (method, kwargs)
            c = (await short.request(method, url + "?q=1", **kwargs)).json()  # type: ignore
            assert c == (await plain.request(method, url + "?q=1", **kwargs)).json()  # type: ignore
        assert "host" in a["headers"] and a["headers"]["host"] == "127.0.0.1:8780"
    # the short way, except for params beside a query in the URL (httpx's rules then)
    assert len(calls) == 1 + len(kinds) + sum("params" not in kw for _, kw in kinds)


async def test_own_url_reaches_the_app_with_path_query_and_headers(
        client: httpx.AsyncClient) -> None:
    seen.set("caller")
    r = await client.get("http://127.0.0.1:8780/image/v2/images/a%20b?x=1&y=2",
                         headers={"X-Auth-Token": "t"})
    assert r.status_code == 200 and r.headers["x-one"] == "1"
    assert r.json() == {"path": "/image/v2/images/a b", "query": "x=1&y=2", "token": "t",
                        "caller_context": ""}  # a fresh context, as on another connection
    assert seen.get() == "caller"


async def test_request_body_and_status(client: httpx.AsyncClient) -> None:
    r = await client.post("http://127.0.0.1:8780/image/echo", content=b"x" * 100_000)
    assert r.status_code == 201 and r.content == b"x" * 100_000


async def test_other_urls_go_over_the_network(client: httpx.AsyncClient) -> None:
    for url in ("http://127.0.0.1:9999/image/v2/images/1", "http://10.0.0.1:8780/image",
                "https://127.0.0.1:8780/image", "http://127.0.0.1/image"):
        r = await client.get(url)
        assert r.status_code == 299 and r.json() == {"remote": url}


async def test_before_attach_everything_goes_over_the_network() -> None:
    local = LocalTransport("http://127.0.0.1:8780", fallback=httpx.MockTransport(remote))
    async with httpx.AsyncClient(transport=local) as c:
        assert (await c.get("http://127.0.0.1:8780/image/v2/images/1")).status_code == 299


async def test_a_response_streams_and_an_early_close_stops_the_app(
        client: httpx.AsyncClient) -> None:
    url = "http://127.0.0.1:8780/image/chunks"
    assert (await client.get(url)).content == b"".join(b"%d," % i for i in range(1000))
    produced.clear()
    async with client.stream("GET", url) as r:
        async for _ in r.aiter_raw():
            break  # stop reading after the first chunk
    await asyncio.sleep(0.05)
    made = len(produced)
    await asyncio.sleep(0.05)
    assert made == len(produced) < 50  # a few chunks ahead of the reader, then stopped


async def test_an_app_failure_is_a_500(client: httpx.AsyncClient) -> None:
    r = await client.get("http://127.0.0.1:8780/image/broken")
    assert r.status_code == 500


async def test_the_read_timeout_applies(client: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ReadTimeout):
        await client.get("http://127.0.0.1:8780/image/slow", timeout=0.1)


async def test_a_public_url_with_a_path_is_left_to_the_network() -> None:
    local = LocalTransport("http://127.0.0.1:8780/cloud", fallback=httpx.MockTransport(remote))
    local.attach(APP)
    async with httpx.AsyncClient(transport=local) as c:
        assert (await c.get("http://127.0.0.1:8780/cloud/image/v2/images/1")).status_code == 299
