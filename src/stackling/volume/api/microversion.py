"""Block Storage microversions: ``OpenStack-API-Version: volume 3.x`` picks the behaviour;
responses echo the version used. Requests under ``/v3`` may carry a ``{project_id}``
segment (``/v3/<project>/volumes``, the classic catalog form) or not (3.67's form); the
segment is dropped before routing. ``/v2`` is not served.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stackling.web.errors import cinder_error


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
MIN_VERSION: Final = APIVersion(3, 0)
MAX_VERSION: Final = APIVersion(3, 70)
HEADER: Final = "OpenStack-API-Version"
PREFIX: Final = "/v3"
_PROJECT_SEGMENT: Final = re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F-]{36}$")


def version(request: HTTPConnection) -> APIVersion:
    value = request.scope.get("state", {}).get("api_version")
    return value if isinstance(value, APIVersion) else MIN_VERSION


def at_least(request: HTTPConnection, text: str) -> bool:
    return version(request) >= APIVersion.parse(text)


class VersionError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def requested_version(headers: dict[str, str]) -> APIVersion:
    text = None
    for item in headers.get(HEADER.lower(), "").split(","):
        service, _, value = item.strip().partition(" ")
        if service.lower() in ("volume", "block-storage"):
            text = value.strip()
            break
    if not text:
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
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = str(scope.get("root_path", "")).rstrip("/")
        path = str(scope.get("path", ""))
        local = path[len(root):] if root and path.startswith(root) else path
        if not local.startswith(PREFIX + "/") or local == PREFIX + "/":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        try:
            asked = requested_version(headers)
        except VersionError as exc:
            await _reply_error(send, exc.code, exc.message)
            return
        parts = local.split("/")  # ["", "v3", maybe-project, ...]
        if len(parts) > 3 and _PROJECT_SEGMENT.match(parts[2]):
            local = "/".join(parts[:2] + parts[3:])
            scope = dict(scope)
            scope["path"] = (root + local) if root and path.startswith(root) else local
            scope["raw_path"] = scope["path"].encode()
            scope["url_project_id"] = parts[2]
        scope.setdefault("state", {})["api_version"] = asked
        extra = [(HEADER.lower().encode(), f"volume {asked}".encode()),
                 (b"vary", HEADER.encode())]

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_version)


async def _reply_error(send: Send, code: int, message: str) -> None:
    body = json.dumps(cinder_error(code, "", message)).encode()
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
