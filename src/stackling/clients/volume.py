"""The block storage service (Cinder v3 API) as other services use it: over REST, with
their service token (or the end user's own token where the user's view matters).

Only what compute needs: show / create / delete a volume and the attachments API (3.27+,
``os-complete`` 3.44+), the attach flow Nova uses since Queens:

1. ``create_attachment(volume, instance, connector)`` reserves the volume and, with a
   connector, exports it and answers the connection info;
2. the hypervisor connects to it; ``complete_attachment`` marks the volume in-use;
3. ``delete_attachment`` removes the export and frees the volume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from stackling.clients.session import ServiceSession
from stackling.common.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    StacklingError,
)

# the microversion compute speaks (attachments with os-complete)
MICROVERSION = "3.44"


class VolumeNotFound(NotFound):
    pass


class AttachmentNotFound(NotFound):
    pass


class VolumeServiceUnavailable(ServiceUnavailable):
    pass


class VolumeRefused(BadRequest):
    """The volume service refused the request (400: wrong status, bad input)."""


@dataclass(frozen=True)
class Volume:
    id: str
    name: str
    status: str
    size: int
    project_id: str | None = None
    bootable: bool = False
    multiattach: bool = False
    attachments: list[dict[str, Any]] = field(default_factory=list)
    volume_image_metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cinder(cls, body: dict[str, Any]) -> Volume:
        return cls(id=str(body["id"]), name=str(body.get("name") or ""),
                   status=str(body.get("status", "")), size=int(body.get("size") or 0),
                   project_id=body.get("os-vol-tenant-attr:tenant_id"),
                   bootable=str(body.get("bootable", "false")).lower() == "true",
                   multiattach=bool(body.get("multiattach", False)),
                   attachments=list(body.get("attachments") or []),
                   volume_image_metadata=dict(body.get("volume_image_metadata") or {}))


@dataclass(frozen=True)
class Attachment:
    id: str
    volume_id: str
    status: str
    instance: str | None = None
    attach_mode: str | None = None
    connection_info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cinder(cls, body: dict[str, Any]) -> Attachment:
        return cls(id=str(body["id"]), volume_id=str(body.get("volume_id") or ""),
                   status=str(body.get("status") or ""), instance=body.get("instance"),
                   attach_mode=body.get("attach_mode"),
                   connection_info=dict(body.get("connection_info") or {}))


def _message(response: httpx.Response) -> str:
    """The error text of a Cinder fault body (``{"badRequest": {"message": ...}}``)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
    return ""


class VolumeClient:
    """Raises :class:`VolumeNotFound` / :class:`AttachmentNotFound` (404),
    :class:`VolumeRefused` (400), ``Conflict`` (409), ``Forbidden`` (403) and
    :class:`VolumeServiceUnavailable` (503: no volume service in the catalog, unreachable,
    or an unexpected answer)."""

    def __init__(self, session: ServiceSession) -> None:
        self.session = session

    async def _root(self) -> str:
        try:
            url = None
            for service_type in ("block-storage", "volumev3"):
                url = await self.session.endpoint(service_type)
                if url is not None:
                    break
        except StacklingError as exc:
            raise VolumeServiceUnavailable(
                f"The volume service cannot be reached: {exc.message}") from exc
        if url is None:
            raise VolumeServiceUnavailable("This cloud has no block storage service.")
        return url

    async def _send(self, method: str, path: str, token: str | None = None,
                    **kwargs: Any) -> httpx.Response:
        url = f"{await self._root()}{path}"
        headers = {**dict(kwargs.pop("headers", None) or {}),
                   "OpenStack-API-Version": f"volume {MICROVERSION}"}
        try:
            if token is not None:  # the end user's own token: their view of the volumes
                headers["X-Auth-Token"] = token
                return await self.session.client.request(method, url, headers=headers,
                                                         **kwargs)
            return await self.session.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise VolumeServiceUnavailable("The volume service cannot be reached.") from exc

    def _fail(self, response: httpx.Response, what: str,
              not_found: type[NotFound] = VolumeNotFound) -> StacklingError:
        detail = _message(response) or f"HTTP {response.status_code}"
        code = response.status_code
        if code == 404:
            return not_found(detail)
        if code == 400:
            return VolumeRefused(detail)
        if code == 403:
            return Forbidden(detail)
        if code == 409:
            return Conflict(detail)
        if code == 413:
            return Forbidden(f"Quota exceeded in the volume service: {detail}")
        return VolumeServiceUnavailable(
            f"The volume service answered HTTP {code} to {what}.")

    async def send_json(self, method: str, path: str, *, token: str,
                        body: dict[str, Any] | None = None) -> Any:
        """One call with the end user's token, for API proxies (compute's ``os-volumes``):
        the decoded answer (None when empty), or the errors above."""
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        response = await self._send(method, path, token, **kwargs)
        if response.status_code not in (200, 201, 202, 204):
            raise self._fail(response, f"{method} {path.split('?')[0]}")
        return response.json() if response.content else None

    # -- volumes -------------------------------------------------------------------------------
    async def get(self, volume_id: str, *, token: str | None = None) -> Volume:
        response = await self._send("GET", f"/volumes/{volume_id}", token)
        if response.status_code != 200:
            if response.status_code == 404:
                raise VolumeNotFound(f"Volume {volume_id} could not be found.")
            raise self._fail(response, f"the lookup of volume {volume_id}")
        return Volume.from_cinder(response.json()["volume"])

    async def create(self, size: int, *, name: str | None = None,
                     image_id: str | None = None, volume_type: str | None = None,
                     availability_zone: str | None = None,
                     token: str | None = None) -> Volume:
        body: dict[str, Any] = {"size": size}
        if name is not None:
            body["name"] = name
        if image_id is not None:
            body["imageRef"] = image_id
        if volume_type is not None:
            body["volume_type"] = volume_type
        if availability_zone is not None:
            body["availability_zone"] = availability_zone
        response = await self._send("POST", "/volumes", token, json={"volume": body})
        if response.status_code not in (200, 202):
            raise self._fail(response, "a volume create")
        return Volume.from_cinder(response.json()["volume"])

    async def delete(self, volume_id: str, *, token: str | None = None) -> None:
        """Delete the volume (a volume already gone is fine)."""
        response = await self._send("DELETE", f"/volumes/{volume_id}", token)
        if response.status_code not in (202, 204, 404):
            raise self._fail(response, f"the delete of volume {volume_id}")

    # -- attachments (3.27+) -------------------------------------------------------------------
    async def create_attachment(self, volume_id: str, instance_uuid: str,
                                connector: dict[str, Any] | None = None, *,
                                token: str | None = None) -> Attachment:
        """Reserve the volume for the instance; with ``connector`` also export it (the
        answer then carries the connection info)."""
        body: dict[str, Any] = {"volume_uuid": volume_id, "instance_uuid": instance_uuid}
        if connector is not None:
            body["connector"] = connector
        response = await self._send("POST", "/attachments", token, json={"attachment": body})
        if response.status_code != 200:
            if response.status_code == 404:
                raise VolumeNotFound(f"Volume {volume_id} could not be found.")
            raise self._fail(response, f"an attachment of volume {volume_id}")
        return Attachment.from_cinder(response.json()["attachment"])

    async def get_attachment(self, attachment_id: str, *,
                             token: str | None = None) -> Attachment:
        response = await self._send("GET", f"/attachments/{attachment_id}", token)
        if response.status_code != 200:
            raise self._fail(response, f"the lookup of attachment {attachment_id}",
                             AttachmentNotFound)
        return Attachment.from_cinder(response.json()["attachment"])

    async def update_attachment(self, attachment_id: str, connector: dict[str, Any], *,
                                token: str | None = None) -> Attachment:
        """Export the reserved volume to ``connector``; answers the connection info."""
        response = await self._send("PUT", f"/attachments/{attachment_id}", token,
                                    json={"attachment": {"connector": connector}})
        if response.status_code != 200:
            raise self._fail(response, f"the update of attachment {attachment_id}",
                             AttachmentNotFound)
        return Attachment.from_cinder(response.json()["attachment"])

    async def complete_attachment(self, attachment_id: str, *,
                                  token: str | None = None) -> None:
        response = await self._send("POST", f"/attachments/{attachment_id}/action", token,
                                    json={"os-complete": None})
        if response.status_code not in (200, 204):
            raise self._fail(response, f"the completion of attachment {attachment_id}",
                             AttachmentNotFound)

    async def delete_attachment(self, attachment_id: str, *,
                                token: str | None = None) -> None:
        """Remove the attachment (and the export when it was the volume's last one); an
        attachment already gone is fine."""
        response = await self._send("DELETE", f"/attachments/{attachment_id}", token)
        if response.status_code not in (200, 204, 404):
            raise self._fail(response, f"the delete of attachment {attachment_id}",
                             AttachmentNotFound)
