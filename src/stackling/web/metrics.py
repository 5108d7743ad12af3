"""Prometheus metrics for the HTTP APIs.

``MetricsMiddleware(app, service="identity")`` wraps a service's ASGI app and records, per
service, method, route template and status:

- ``stackling_http_requests_total`` (counter)
- ``stackling_http_request_duration_seconds`` (histogram, until the response body is sent)

The route label is the matched route's template (``/v3/users/{user_id}``), never the raw path,
and ``other`` when no route matched, so the number of series stays bounded whatever clients
send; unusual methods are labelled ``OTHER``. The template is the one of the innermost matched
route, relative to the router that holds it. ``metrics_app()`` serves ``/metrics``.

Cost per request: two clock reads and one dict lookup for the cached label children, plus
prometheus_client's own increment/observe.
"""

from __future__ import annotations

import os
import time
from typing import Final

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    make_asgi_app,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BUCKETS", "OTHER_ROUTE", "MetricsMiddleware", "RequestRecorder", "metrics_app"]

# Seconds. Dense at the low end: token validation and cached GETs answer in a few ms.
BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LABELS: Final = ("service", "method", "route", "status")
_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "COPY", "TRACE", "CONNECT"}
)
OTHER_ROUTE: Final = "other"


class _Metrics:
    __slots__ = ("duration", "requests")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "stackling_http_requests",
            "HTTP requests handled, by service, method, route template and status.",
            _LABELS,
            registry=registry,
        )
        self.duration = Histogram(
            "stackling_http_request_duration_seconds",
            "Time to handle an HTTP request, until its response is sent.",
            _LABELS,
            buckets=BUCKETS,
            registry=registry,
        )


_BY_REGISTRY: dict[int, tuple[CollectorRegistry, _Metrics]] = {}


def _metrics_for(registry: CollectorRegistry) -> _Metrics:
    entry = _BY_REGISTRY.get(id(registry))
    if entry is None or entry[0] is not registry:
        entry = (registry, _Metrics(registry))
        _BY_REGISTRY[id(registry)] = entry
    return entry[1]


def _route_template(scope: Scope) -> str:
    template = getattr(scope.get("route"), "path_format", None)
    return template if isinstance(template, str) and template else OTHER_ROUTE


class RequestRecorder:
    """Records one service's requests: ``record(method, route, status, seconds)``. Used by
    :class:`MetricsMiddleware` and by fast paths that answer before any routing."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self._metrics = _metrics_for(registry if registry is not None else REGISTRY)
        # (method, route, status) -> bound (counter, histogram) children; bounded by design.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in _METHODS:
            method = "OTHER"
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (self.service, method, route, str(status))
            children = (
                self._metrics.requests.labels(*labels),
                self._metrics.duration.labels(*labels),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class MetricsMiddleware:
    """ASGI middleware counting and timing HTTP requests of one service.

    Non-HTTP scopes (lifespan, websocket) pass through untouched. A request whose app raises
    before responding is recorded with status 500 and the exception propagates.
    """

    def __init__(
        self, app: ASGIApp, service: str, registry: CollectorRegistry | None = None
    ) -> None:
        self.app = app
        self.service = service
        self.recorder = RequestRecorder(service, registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self.recorder.record(scope.get("method", ""), _route_template(scope), status,
                                 time.perf_counter() - start)


def metrics_app(registry: CollectorRegistry | None = None) -> ASGIApp:
    """An ASGI app answering ``GET /metrics`` in the Prometheus text format.

    Uses the default registry, or, when ``PROMETHEUS_MULTIPROC_DIR`` is set (several worker
    processes), a registry aggregating every process's metrics.
    """
    if registry is None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry = REGISTRY
    app: ASGIApp = make_asgi_app(registry=registry)
    return app
