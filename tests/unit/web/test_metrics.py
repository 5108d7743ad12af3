"""Tests for stackling.web.metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from stackling.web.metrics import MetricsMiddleware, metrics_app


async def get_user(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["user_id"]})


async def boom(request: Request) -> JSONResponse:
    raise RuntimeError("boom")


def service_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v3/users/{user_id}", get_user, methods=["GET"]),
            Route("/v3/boom", boom),
        ]
    )


def count(registry: CollectorRegistry, **labels: str) -> float:
    value = registry.get_sample_value("stackling_http_requests_total", labels)
    return value or 0.0


def hist_count(registry: CollectorRegistry, **labels: str) -> float:
    value = registry.get_sample_value("stackling_http_request_duration_seconds_count", labels)
    return value or 0.0


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_counts_by_route_template(registry: CollectorRegistry) -> None:
    app = MetricsMiddleware(service_app(), "identity", registry=registry)
    client = TestClient(app)
    for uid in ("a", "b", "c"):
        assert client.get(f"/v3/users/{uid}").status_code == 200
    labels = {"service": "identity", "method": "GET", "route": "/v3/users/{user_id}"}
    assert count(registry, **labels, status="200") == 3
    assert hist_count(registry, **labels, status="200") == 3
    # No series per raw path.
    text = registry_text(registry)
    assert "/v3/users/a" not in text


def registry_text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_unmatched_path_is_other(registry: CollectorRegistry) -> None:
    client = TestClient(MetricsMiddleware(service_app(), "identity", registry=registry))
    for i in range(5):
        assert client.get(f"/random/{i}").status_code == 404
    assert count(registry, service="identity", method="GET", route="other", status="404") == 5


def test_method_not_allowed_uses_template(registry: CollectorRegistry) -> None:
    client = TestClient(MetricsMiddleware(service_app(), "identity", registry=registry))
    assert client.delete("/v3/users/x").status_code == 405
    labels = {"service": "identity", "method": "DELETE", "route": "/v3/users/{user_id}"}
    assert count(registry, **labels, status="405") == 1


def test_unusual_method_bucketed(registry: CollectorRegistry) -> None:
    client = TestClient(MetricsMiddleware(service_app(), "identity", registry=registry))
    client.request("FROBNICATE", "/v3/users/x")
    assert registry_text(registry).count("FROBNICATE") == 0
    assert (
        count(
            registry, service="identity", method="OTHER", route="/v3/users/{user_id}", status="405"
        )
        == 1
    )


def test_exception_recorded_as_500(registry: CollectorRegistry) -> None:
    # Outermost wrapper: the app's exception propagates through the middleware.
    client = TestClient(
        MetricsMiddleware(service_app(), "identity", registry=registry),
        raise_server_exceptions=False,
    )
    assert client.get("/v3/boom").status_code == 500
    assert count(registry, service="identity", method="GET", route="/v3/boom", status="500") == 1


def test_exception_propagates(registry: CollectorRegistry) -> None:
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise ValueError("nope")

    client = TestClient(MetricsMiddleware(failing, "image", registry=registry))
    with pytest.raises(ValueError, match="nope"):
        client.get("/x")
    assert count(registry, service="image", method="GET", route="other", status="500") == 1


def test_mounted_services_and_metrics_endpoint(registry: CollectorRegistry) -> None:
    compute = Starlette(routes=[Route("/v2.1/servers/{server_id}", get_user_like)])
    root = Starlette(
        routes=[
            Mount("/identity", app=MetricsMiddleware(service_app(), "identity", registry=registry)),
            Mount("/compute", app=MetricsMiddleware(compute, "compute", registry=registry)),
            Mount("/metrics", app=metrics_app(registry)),
        ]
    )
    client = TestClient(root)
    assert client.get("/identity/v3/users/u1").status_code == 200
    assert client.get("/compute/v2.1/servers/s1").status_code == 200
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert "text/plain" in resp.headers["content-type"]
    body = resp.text
    assert (
        'stackling_http_requests_total{method="GET",route="/v3/users/{user_id}",'
        'service="identity",status="200"} 1.0'
    ) in body
    assert (
        'stackling_http_requests_total{method="GET",route="/v2.1/servers/{server_id}",'
        'service="compute",status="200"} 1.0'
    ) in body
    assert "stackling_http_request_duration_seconds_bucket" in body


async def get_user_like(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def test_fastapi_route_template(registry: CollectorRegistry) -> None:
    api = FastAPI()

    @api.get("/v2/images/{image_id}")
    async def show(image_id: str) -> dict[str, str]:
        return {"id": image_id}

    client = TestClient(MetricsMiddleware(api, "image", registry=registry))
    assert client.get("/v2/images/abc").status_code == 200
    assert (
        count(registry, service="image", method="GET", route="/v2/images/{image_id}", status="200")
        == 1
    )


def test_lifespan_passes_through(registry: CollectorRegistry) -> None:
    started: list[bool] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started.append(True)
        yield

    app = Starlette(routes=[], lifespan=lifespan)
    with TestClient(MetricsMiddleware(app, "x", registry=registry)):
        pass
    assert started == [True]
    assert "stackling_http_requests_total{" not in registry_text(registry)


def test_same_registry_shared_between_middlewares(registry: CollectorRegistry) -> None:
    # Creating several middlewares on one registry must not re-register the metrics.
    MetricsMiddleware(service_app(), "a", registry=registry)
    MetricsMiddleware(service_app(), "b", registry=registry)


def test_default_registry() -> None:
    client = TestClient(MetricsMiddleware(service_app(), "default-reg-test"))
    client.get("/v3/users/q")
    labels = {
        "service": "default-reg-test",
        "method": "GET",
        "route": "/v3/users/{user_id}",
        "status": "200",
    }
    assert (REGISTRY.get_sample_value("stackling_http_requests_total", labels) or 0) >= 1
    body = TestClient(metrics_app()).get("/metrics").text
    assert 'service="default-reg-test"' in body


def test_multiprocess_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    resp = TestClient(metrics_app()).get("/metrics")
    assert resp.status_code == 200


def test_overhead_is_small(registry: CollectorRegistry) -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = MetricsMiddleware(inner, "bench", registry=registry)
    scope: Scope = {"type": "http", "method": "GET", "path": "/"}

    async def receive() -> dict[str, object]:
        return {"type": "http.request"}

    async def send(message: object) -> None:
        return None

    async def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await mw(dict(scope), receive, send)  # type: ignore[arg-type]
        return time.perf_counter() - start

    elapsed = asyncio.run(run(5000))
    assert elapsed / 5000 < 100e-6  # a few microseconds in practice
