from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from stackling.common.logging import request_id_var
from stackling.web.requestid import RequestIdMiddleware


def test_request_id_header_log_context_and_access_log(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str | None] = []

    async def hello(request: Request) -> PlainTextResponse:
        seen.append(request_id_var.get())
        return PlainTextResponse("hi", status_code=201)

    app = RequestIdMiddleware(Starlette(routes=[Route("/x", hello)]))
    with caplog.at_level(logging.INFO, logger="stackling.access"):
        response = TestClient(app).get("/x?Signature=secret-value")
    rid = response.headers["x-openstack-request-id"]
    assert rid.startswith("req-") and seen == [rid]
    line = next(r.getMessage() for r in caplog.records if r.name == "stackling.access")
    assert line.startswith("GET /x 201 ") and "secret-value" not in line
