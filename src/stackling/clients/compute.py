"""The compute service (Nova v2.1) as other services use it: over REST, with their service
token. Only what they need: ``os-server-external-events`` (the network service's
``network-vif-plugged``)."""

from __future__ import annotations

from typing import Any

import httpx

from stackling.clients.session import ServiceSession
from stackling.common.errors import ServiceUnavailable


class ComputeUnavailable(ServiceUnavailable):
    pass


class ComputeClient:
    def __init__(self, session: ServiceSession) -> None:
        self.session = session

    async def external_events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Post events (``name``, ``server_uuid``, ``status``, ``tag``). Returns Nova's
        per-event results; an unknown server is a result with ``code`` 404, not an error.
        Raises ComputeUnavailable when compute cannot be reached or is not in the catalog."""
        base = await self.session.endpoint("compute")
        if base is None:
            raise ComputeUnavailable("The compute service is not in the catalog.")
        try:
            response = await self.session.request(
                "POST", f"{base}/os-server-external-events", json={"events": events},
                headers={"OpenStack-API-Version": "compute 2.1"})
        except httpx.HTTPError as exc:
            raise ComputeUnavailable("The compute service cannot be reached.") from exc
        if response.status_code not in (200, 207, 404):
            raise ComputeUnavailable(f"compute answered HTTP {response.status_code} to "
                                     "external events")
        try:
            body = response.json()
        except ValueError:
            return []
        return list(body.get("events", [])) if isinstance(body, dict) else []
