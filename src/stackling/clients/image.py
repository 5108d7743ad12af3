"""The image service (Glance v2 API) as other services use it: over REST, with their
service token. Only what compute needs: look an image up, create a snapshot record and
upload its data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from stackling.clients.session import ServiceSession
from stackling.common.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    StacklingError,
)

# the fields of a Glance image that are not custom properties
_CORE = {"id", "name", "status", "visibility", "protected", "checksum", "os_hash_algo",
         "os_hash_value", "owner", "size", "virtual_size", "min_ram", "min_disk",
         "disk_format", "container_format", "created_at", "updated_at", "tags", "file",
         "self", "schema", "direct_url", "locations", "stores", "os_hidden"}


class ImageNotFound(NotFound):
    pass


class ImageServiceUnavailable(ServiceUnavailable):
    pass


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    status: str
    owner: str | None = None
    visibility: str = "public"
    size: int | None = None
    min_ram: int = 0
    min_disk: int = 0
    disk_format: str | None = None
    container_format: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_glance(cls, body: dict[str, Any]) -> Image:
        return cls(id=str(body["id"]), name=str(body.get("name") or ""),
                   status=str(body.get("status", "")), owner=body.get("owner"),
                   visibility=str(body.get("visibility", "public")), size=body.get("size"),
                   min_ram=int(body.get("min_ram") or 0), min_disk=int(body.get("min_disk") or 0),
                   disk_format=body.get("disk_format"),
                   container_format=body.get("container_format"),
                   created_at=body.get("created_at"), updated_at=body.get("updated_at"),
                   properties={k: v for k, v in body.items() if k not in _CORE})


class ImageClient:
    """Raises :class:`ImageNotFound` (404) and :class:`ImageServiceUnavailable` (503: no
    image service in the catalog, unreachable, or an unexpected answer)."""

    def __init__(self, session: ServiceSession) -> None:
        self.session = session

    async def _root(self) -> str:
        try:
            url = await self.session.endpoint("image")
        except StacklingError as exc:
            raise ImageServiceUnavailable(f"The image service cannot be reached: {exc.message}"
                                          ) from exc
        if url is None:
            raise ImageServiceUnavailable("This cloud has no image service.")
        return url

    async def _send(self, method: str, path: str, token: str | None = None,
                    **kwargs: Any) -> httpx.Response:
        url = f"{await self._root()}{path}"
        try:
            if token is not None:  # the end user's own token: their view of the images
                headers = {**dict(kwargs.pop("headers", None) or {}), "X-Auth-Token": token}
                return await self.session.client.request(method, url, headers=headers,
                                                         **kwargs)
            return await self.session.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ImageServiceUnavailable("The image service cannot be reached.") from exc

    async def get(self, image_id: str, *, token: str | None = None) -> Image:
        """The image as ``token``'s owner sees it (default: the service user, who sees every
        image)."""
        response = await self._send("GET", f"/v2/images/{image_id}", token)
        if response.status_code == 404:
            raise ImageNotFound(f"Image {image_id} could not be found.")
        if response.status_code != 200:
            raise ImageServiceUnavailable(
                f"The image service answered HTTP {response.status_code} for image "
                f"{image_id}.")
        return Image.from_glance(response.json())

    async def list_images(self, *, token: str | None = None,
                   filters: dict[str, str] | None = None, page: int = 200) -> list[Image]:
        """Every image matching the Glance ``filters`` (following ``next`` links)."""
        images: list[Image] = []
        params: dict[str, str] = {**(filters or {}), "limit": str(page)}
        while True:
            response = await self._send("GET", "/v2/images", token, params=params)
            if response.status_code != 200:
                raise ImageServiceUnavailable(
                    f"The image service answered HTTP {response.status_code} to a list.")
            body = response.json()
            images.extend(Image.from_glance(i) for i in body.get("images", []))
            if not body.get("next") or not body.get("images"):
                return images
            params = {**params, "marker": str(body["images"][-1]["id"])}

    async def update_properties(self, image_id: str, *, token: str | None = None,
                                set_: dict[str, str] | None = None,
                                remove: list[str] | None = None) -> Image:
        """Add/replace and remove custom properties (a JSON patch)."""
        current = await self.get(image_id, token=token)
        ops: list[dict[str, Any]] = []
        for key, value in (set_ or {}).items():
            op = "replace" if key in current.properties else "add"
            ops.append({"op": op, "path": f"/{key}", "value": value})
        for key in remove or []:
            if key in current.properties:
                ops.append({"op": "remove", "path": f"/{key}"})
        if not ops:
            return current
        response = await self._send(
            "PATCH", f"/v2/images/{image_id}", token, json=ops,
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        if response.status_code == 404:
            raise ImageNotFound(f"Image {image_id} could not be found.")
        if response.status_code == 403:
            raise Forbidden("You are not allowed to change this image.")
        if response.status_code != 200:
            raise ImageServiceUnavailable(
                f"The image service refused the update (HTTP {response.status_code}).")
        return Image.from_glance(response.json())

    async def create(self, body: dict[str, Any], *, token: str | None = None) -> Image:
        response = await self._send("POST", "/v2/images", token, json=body)
        if response.status_code in (400, 403, 409, 413):
            detail = response.json().get("message", "") if response.headers.get(
                "content-type", "").startswith("application/json") else ""
            raise (Forbidden if response.status_code in (403, 413) else BadRequest)(
                f"The image service refused the image: {detail or response.status_code}")
        if response.status_code != 201:
            raise ImageServiceUnavailable(
                f"The image service refused to create an image (HTTP {response.status_code}).")
        return Image.from_glance(response.json())

    async def public_url(self, image_id: str) -> str:
        """Where the image lives in the image service (Nova's ``Location`` for snapshots)."""
        return f"{await self._root()}/v2/images/{image_id}"

    async def upload(self, image_id: str, data: AsyncIterator[bytes] | bytes) -> None:
        response = await self._send("PUT", f"/v2/images/{image_id}/file", content=data,
                                    headers={"Content-Type": "application/octet-stream"})
        if response.status_code not in (201, 204):
            raise ImageServiceUnavailable(
                f"The image service refused the image data (HTTP {response.status_code}).")

    async def download(self, image_id: str, sink: Callable[[bytes], object]) -> dict[str, Any]:
        """Stream the image's data into ``sink`` with the service token (a hypervisor
        caching a base image); returns the image's Glance record, whose ``checksum`` /
        ``os_hash_algo`` / ``os_hash_value`` the caller verifies the data against."""
        response = await self._send("GET", f"/v2/images/{image_id}")
        if response.status_code == 404:
            raise ImageNotFound(f"Image {image_id} could not be found.")
        if response.status_code != 200:
            raise ImageServiceUnavailable(
                f"The image service answered HTTP {response.status_code} for image "
                f"{image_id}.")
        record: dict[str, Any] = response.json()
        url = f"{await self._root()}/v2/images/{image_id}/file"
        try:
            for attempt in (0, 1):
                headers = {"X-Auth-Token": await self.session.token(force=attempt == 1)}
                async with self.session.client.stream("GET", url, headers=headers) as data:
                    if data.status_code == 401 and attempt == 0:
                        continue
                    if data.status_code == 404:
                        raise ImageNotFound(f"Image {image_id} could not be found.")
                    if data.status_code == 204:
                        raise ImageServiceUnavailable(f"Image {image_id} has no data.")
                    if data.status_code != 200:
                        raise ImageServiceUnavailable(
                            f"The image service answered HTTP {data.status_code} to the "
                            f"download of image {image_id}.")
                    async for chunk in data.aiter_bytes(1 << 20):
                        sink(chunk)
                    return record
        except httpx.HTTPError as exc:
            raise ImageServiceUnavailable("The image service cannot be reached.") from exc
        raise ImageServiceUnavailable(f"The image service refused the download of {image_id}.")

    async def delete(self, image_id: str, *, token: str | None = None) -> None:
        response = await self._send("DELETE", f"/v2/images/{image_id}", token)
        if response.status_code == 404 and token is not None:
            raise ImageNotFound(f"Image {image_id} could not be found.")
        if response.status_code == 403:
            raise Forbidden("You are not allowed to delete this image.")
        if response.status_code not in (204, 404):
            raise ImageServiceUnavailable(
                f"The image service refused to delete image {image_id} "
                f"(HTTP {response.status_code}).")
