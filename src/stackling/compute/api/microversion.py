"""Compute API microversions: the ``OpenStack-API-Version: compute 2.x`` (or legacy
``X-OpenStack-Nova-API-Version: 2.x``) request header picks the behaviour; responses echo
the version used and ``Vary`` on both headers.

:data:`MAX_VERSION` is what the API advertises: raise it only together with the behaviour
of every version up to it (views check ``version(request) >= (2, n)``).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Final

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stackling.web.errors import nova_error


@dataclass(frozen=True, order=True)
class APIVersion:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        match = _VERSION_RE.match(text.strip())
        if match is None:
            raise ValueError(text)
        return cls(int(match.group(1)), int(match.group(2)))


_VERSION_RE: Final = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")
MIN_VERSION: Final = APIVersion(2, 1)
MAX_VERSION: Final = APIVersion(2, 96)
HEADER: Final = "OpenStack-API-Version"
LEGACY_HEADER: Final = "X-OpenStack-Nova-API-Version"
VERSIONED_PREFIX: Final = "/v2.1"
LEGACY_PREFIX: Final = "/v2"
_PROJECT_SEGMENT: Final = re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F-]{36}$")


def version(request: HTTPConnection) -> APIVersion:
    """The microversion of this request (2.1 when none was asked for)."""
    value = request.scope.get("state", {}).get("api_version")
    return value if isinstance(value, APIVersion) else MIN_VERSION


def at_least(request: HTTPConnection, text: str) -> bool:
    return version(request) >= _parsed(text)


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> APIVersion:
    """The versions the code compares with are a few literals: each parsed once."""
    return APIVersion.parse(text)


class VersionError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def requested_version(headers: dict[str, str]) -> APIVersion:
    """The version a request asks for. Raises VersionError (400 malformed, 406 out of
    range)."""
    text = None
    modern = headers.get(HEADER.lower())
    if modern:
        for item in modern.split(","):
            service, _, value = item.strip().partition(" ")
            if service.lower() == "compute":
                text = value.strip()
                break
    if text is None:
        text = headers.get(LEGACY_HEADER.lower())
    if text is None or text == "":
        return MIN_VERSION
    if text.lower() == "latest":
        return MAX_VERSION
    try:
        asked = APIVersion.parse(text)
    except ValueError:
        raise VersionError(400, f"API Version String {text} is of invalid format. Must be of "
                                "format MajorNum.MinorNum.") from None
    if not MIN_VERSION <= asked <= MAX_VERSION:
        raise VersionError(406, f"Version {asked} is not supported by the API. Minimum is "
                                f"{MIN_VERSION} and maximum is {MAX_VERSION}.")
    return asked


class MicroversionMiddleware:
    """For requests under ``/v2.1``: parse the version into ``request.state.api_version``,
    drop an optional ``{project_id}`` path segment (Nova accepts both URL forms), and add the
    version headers to the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = str(scope.get("root_path", "")).rstrip("/")
        path = str(scope.get("path", ""))
        local = path[len(root):] if root and path.startswith(root) else path
        legacy = local.startswith(LEGACY_PREFIX + "/") and local != LEGACY_PREFIX + "/"
        if legacy:  # the v2.0 API: the 2.1 API without microversions
            local = VERSIONED_PREFIX + local[len(LEGACY_PREFIX):]
        elif not (local == VERSIONED_PREFIX or local.startswith(VERSIONED_PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        try:
            asked = MIN_VERSION if legacy else requested_version(headers)
        except VersionError as exc:
            await _reply_error(send, exc.code, exc.message)
            return
        parts = local.split("/")  # ["", "v2.1", maybe-project, ...]
        if len(parts) > 3 and _PROJECT_SEGMENT.match(parts[2]):
            local = "/".join(parts[:2] + parts[3:])
        if legacy or local != path[len(root):]:
            scope = dict(scope)
            scope["path"] = (root + local) if root and path.startswith(root) else local
            scope["raw_path"] = scope["path"].encode()
        state = scope.setdefault("state", {})
        state["api_version"] = asked
        extra = [] if legacy else [
            (HEADER.lower().encode(), f"compute {asked}".encode()),
            (LEGACY_HEADER.lower().encode(), str(asked).encode()),
            (b"vary", f"{HEADER}, {LEGACY_HEADER}".encode())]

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                headers = [*message.get("headers", []), *extra]
                # Nova repeats the request id as X-Compute-Request-Id (Tempest reads it to
                # find a request's instance action); the id is set by then
                rid = state.get("request_id")
                if rid:
                    headers.append((b"x-compute-request-id", str(rid).encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_version)


async def _reply_error(send: Send, code: int, message: str) -> None:
    body = json.dumps(nova_error(code, "", message)).encode()
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
