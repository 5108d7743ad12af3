"""A service's own session with identity: a token for its service user (renewed a minute
before it expires, or at once after a 401) and the catalog, to find other services.

Services call each other over REST with this session, like any other client would.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from stackling.common.errors import ServiceUnavailable
from stackling.common.timeutils import parse_isotime, utcnow


@dataclass(frozen=True, slots=True)
class ServiceCredentials:
    username: str
    password: str
    project_name: str = "service"
    user_domain_id: str = "default"
    project_domain_id: str = "default"

    def __repr__(self) -> str:  # never show the password
        return f"ServiceCredentials(username={self.username!r}, project={self.project_name!r})"


class ServiceSession:
    def __init__(self, identity_url: str, credentials: ServiceCredentials,
                 client: httpx.AsyncClient | None = None, *, interface: str = "public",
                 region: str | None = None, timeout: float = 30.0) -> None:
        self.identity_url = identity_url.rstrip("/")
        self.credentials = credentials
        self.client = client or httpx.AsyncClient(timeout=timeout)
        self._own_client = client is None
        self.interface = interface
        self.region = region
        self._token: tuple[str, float] | None = None
        self._catalog: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()

    async def token(self, force: bool = False) -> str:
        """A valid project-scoped token of the service user (ServiceUnavailable when
        identity cannot be reached or refuses the credentials)."""
        async with self._lock:
            cached = self._token
            if cached is not None and not force and cached[1] > time.monotonic():
                return cached[0]
            c = self.credentials
            body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": c.username, "domain": {"id": c.user_domain_id},
                "password": c.password}}},
                "scope": {"project": {"name": c.project_name,
                                      "domain": {"id": c.project_domain_id}}}}}
            try:
                response = await self.client.post(f"{self.identity_url}/v3/auth/tokens",
                                                  json=body)
            except httpx.HTTPError as exc:
                raise ServiceUnavailable("The identity service cannot be reached.") from exc
            if response.status_code != 201:
                raise ServiceUnavailable("This service cannot authenticate to identity "
                                         f"(HTTP {response.status_code}).")
            token = response.headers["X-Subject-Token"]
            data = response.json()["token"]
            self._catalog = list(data.get("catalog", []))
            left = (parse_isotime(data["expires_at"]) - utcnow()).total_seconds() - 60
            self._token = (token, time.monotonic() + max(left, 0))
            return token

    async def endpoint(self, service_type: str) -> str | None:
        """The catalog URL of ``service_type`` (None when the cloud has no such service)."""
        await self.token()
        for service in self._catalog:
            if service.get("type") != service_type:
                continue
            for ep in service.get("endpoints", []):
                if ep.get("interface") != self.interface:
                    continue
                if self.region and self.region not in (ep.get("region_id"), ep.get("region")):
                    continue
                return str(ep["url"]).rstrip("/")
        return None

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with the service token; on 401 renew the token once and retry.
        httpx errors propagate (callers map them to their own "unavailable" error)."""
        for attempt in (0, 1):
            headers = dict(kwargs.pop("headers", None) or {})
            headers["X-Auth-Token"] = await self.token(force=attempt == 1)
            response = await self.client.request(method, url, headers=headers, **kwargs)
            if response.status_code != 401:
                return response
            kwargs["headers"] = headers
        return response

    async def close(self) -> None:
        if self._own_client:
            await self.client.aclose()
