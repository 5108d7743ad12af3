"""Register the tiny guest in the image service, the ways Glance supports booting it:

- ``stackling-tiny-kernel`` (``aki``) and ``stackling-tiny-ramdisk`` (``ari``);
- a machine image (``ami``) naming them with ``kernel_id`` / ``ramdisk_id`` and carrying
  ``os_command_line``; its own data is a small empty root disk (the guest runs from its
  ramdisk). It is ``stackling-tiny`` when there is no disk image, else
  ``stackling-tiny-kernel-boot``;
- ``stackling-tiny`` (``qcow2``, ``bare``): the bootable disk, when it was built.

All public. Every image carries ``stackling_tiny_build`` = the build's cache key: a
registration of the same build is reused, images of an older build (with that property)
are deleted once the new ones are active. Images someone else uploaded under these names
(without the property) are left alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import httpx

from stackling.common.blocking import run_blocking
from stackling.image.guest.builder import TinyGuest

log = logging.getLogger(__name__)

BUILD_PROPERTY = "stackling_tiny_build"
KERNEL_NAME = "stackling-tiny-kernel"
RAMDISK_NAME = "stackling-tiny-ramdisk"
DISK_NAME = "stackling-tiny"
KERNEL_BOOT_NAME = "stackling-tiny-kernel-boot"
ROOT_FILE = "tiny-root.img"
ROOT_SIZE = 1024 * 1024
# the guest hangs during early boot with 64 MiB (TCG, Debian's kernel); 96 MiB boots
MIN_RAM_MB = 128

Say = Callable[[str], None]


@dataclass(frozen=True)
class ImageSpec:
    name: str
    disk_format: str
    container_format: str
    path: Path
    properties: dict[str, str] = field(default_factory=dict)
    visibility: str = "public"
    min_ram: int = 0  # MiB


@dataclass(frozen=True)
class RegisteredImage:
    id: str
    name: str
    status: str
    properties: dict[str, Any]


class ImageRegistrar(Protocol):
    """Where the images go: the REST API (:class:`RestRegistrar`) or, in process, whatever
    the image service offers. Each method raises on failure; ``create`` leaves no image
    behind when its upload fails."""

    async def find(self, name: str) -> list[RegisteredImage]:
        """Images named ``name`` that the registrar can see."""

    async def create(self, spec: ImageSpec) -> str:
        """Create the image, upload ``spec.path`` and return its id once it is active."""

    async def delete(self, image_id: str) -> None:
        """Delete the image (already gone is fine)."""


def _common(guest: TinyGuest) -> dict[str, str]:
    return {BUILD_PROPERTY: guest.key, "architecture": "x86_64", "os_type": "linux",
            "stackling_tiny_kernel": guest.kernel_version}


def root_disk(guest: TinyGuest) -> Path:
    """The ``ami``'s data: an empty (sparse) 1 MiB disk, made on first use."""
    path = guest.directory / ROOT_FILE
    if not path.exists() or path.stat().st_size != ROOT_SIZE:
        tmp = path.with_name(ROOT_FILE + f".{os.getpid()}")
        with tmp.open("wb") as fh:
            fh.truncate(ROOT_SIZE)
        os.replace(tmp, path)
    return path


def _current(images: list[RegisteredImage], guest: TinyGuest,
             expect: dict[str, str]) -> RegisteredImage | None:
    for image in images:
        props = image.properties
        if image.status == "active" and props.get(BUILD_PROPERTY) == guest.key and \
                all(props.get(k) == v for k, v in expect.items()):
            return image
    return None


async def _ensure(registrar: ImageRegistrar, spec: ImageSpec, guest: TinyGuest,
                  say: Say) -> str:
    existing = await registrar.find(spec.name)
    expect = {k: v for k, v in spec.properties.items() if k in ("kernel_id", "ramdisk_id")}
    current = _current(existing, guest, expect)
    if current is not None:
        image_id = current.id
    else:
        say(f"registering {spec.name} ({spec.disk_format}, "
            f"{spec.path.stat().st_size} bytes)")
        image_id = await registrar.create(spec)
    for old in existing:
        if old.id != image_id and BUILD_PROPERTY in old.properties:
            try:
                await registrar.delete(old.id)
                say(f"deleted {spec.name} {old.id} (an older tiny guest build)")
            except Exception as exc:  # a protected or busy image stays: say so, go on
                say(f"could not delete old {spec.name} {old.id}: {exc}")
    return image_id


async def register_tiny_guest(guest: TinyGuest, registrar: ImageRegistrar,
                              say: Say | None = None) -> dict[str, str]:
    """Make sure the images of ``guest`` are registered; returns name -> image id."""
    say = say or log.info
    common = _common(guest)
    ids: dict[str, str] = {}
    ids[KERNEL_NAME] = await _ensure(registrar, ImageSpec(
        KERNEL_NAME, "aki", "aki", guest.kernel, dict(common)), guest, say)
    ids[RAMDISK_NAME] = await _ensure(registrar, ImageSpec(
        RAMDISK_NAME, "ari", "ari", guest.initrd, dict(common)), guest, say)
    ami_name = KERNEL_BOOT_NAME if guest.disk is not None else DISK_NAME
    ids[ami_name] = await _ensure(registrar, ImageSpec(
        ami_name, "ami", "ami", root_disk(guest),
        {**common, "kernel_id": ids[KERNEL_NAME], "ramdisk_id": ids[RAMDISK_NAME],
         "os_command_line": guest.cmdline}, min_ram=MIN_RAM_MB), guest, say)
    if guest.disk is not None:
        ids[DISK_NAME] = await _ensure(registrar, ImageSpec(
            DISK_NAME, "qcow2", "bare", guest.disk, dict(common), min_ram=MIN_RAM_MB),
            guest, say)
    return ids


class RegistrationError(Exception):
    pass


class RestRegistrar:
    """The Glance v2 REST API, with a token from identity (httpx)."""

    def __init__(self, client: httpx.AsyncClient, image_url: str, token: str) -> None:
        self.client = client
        self.image_url = image_url.rstrip("/")
        self.token = token

    @classmethod
    async def connect(cls, auth: dict[str, Any], *, region: str | None = None,
                      interface: str = "public", wait: float = 0.0,
                      request_timeout: float = 120.0) -> RestRegistrar:
        """Authenticate with a clouds.yaml ``auth`` section (password, project scope) and
        find the image endpoint. ``wait``: keep retrying an unreachable identity or a
        missing image endpoint that long (a cloud that is still starting)."""
        client = httpx.AsyncClient(timeout=request_timeout)
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    token, url = await _authenticate(client, auth, region, interface)
                    return cls(client, url, token)
                except (httpx.TransportError, RegistrationError) as exc:
                    if time.monotonic() >= deadline:
                        if isinstance(exc, RegistrationError):
                            raise
                        raise RegistrationError(
                            f"identity at {auth.get('auth_url')} cannot be reached: {exc}"
                        ) from exc
                    await asyncio.sleep(1.0)
        except BaseException:
            await client.aclose()
            raise

    async def __aenter__(self) -> RestRegistrar:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self.client.aclose()

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"X-Auth-Token": self.token, **extra}

    async def find(self, name: str) -> list[RegisteredImage]:
        found: list[RegisteredImage] = []
        url: str | None = f"{self.image_url}/v2/images"
        params: dict[str, str] | None = {"name": name, "limit": "100"}
        while url:
            response = await self.client.get(url, params=params, headers=self._headers())
            _check(response, 200, f"listing images named {name}")
            body = response.json()
            for image in body.get("images", []):
                found.append(RegisteredImage(str(image["id"]), str(image.get("name")),
                                             str(image.get("status")), image))
            nxt = body.get("next")
            url, params = (f"{self.image_url}{nxt}" if nxt else None), None
        return found

    async def create(self, spec: ImageSpec) -> str:
        body: dict[str, Any] = {"name": spec.name, "disk_format": spec.disk_format,
                                "container_format": spec.container_format,
                                "visibility": spec.visibility, "min_ram": spec.min_ram,
                                **spec.properties}
        response = await self.client.post(f"{self.image_url}/v2/images", json=body,
                                          headers=self._headers())
        _check(response, 201, f"creating image {spec.name}")
        image_id = str(response.json()["id"])
        try:
            response = await self.client.put(
                f"{self.image_url}/v2/images/{image_id}/file", content=_chunks(spec.path),
                headers=self._headers(**{"Content-Type": "application/octet-stream",
                                         "Content-Length": str(spec.path.stat().st_size)}))
            _check(response, 204, f"uploading image {spec.name}")
            response = await self.client.get(f"{self.image_url}/v2/images/{image_id}",
                                             headers=self._headers())
            _check(response, 200, f"reading image {spec.name}")
            status = response.json().get("status")
            if status != "active":
                raise RegistrationError(f"image {spec.name} is {status} after its upload")
        except BaseException:
            try:
                await self.delete(image_id)
            except Exception:  # the original error matters more
                log.warning("could not delete half-registered image %s", image_id)
            raise
        return image_id

    async def delete(self, image_id: str) -> None:
        response = await self.client.delete(f"{self.image_url}/v2/images/{image_id}",
                                            headers=self._headers())
        if response.status_code not in (204, 404):
            _check(response, 204, f"deleting image {image_id}")


def _check(response: httpx.Response, expected: int, doing: str) -> None:
    if response.status_code != expected:
        text = response.text[:300].strip()
        raise RegistrationError(f"{doing}: HTTP {response.status_code} {text}")


async def _chunks(path: Path, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while chunk := await run_blocking(fh.read, size):
            yield chunk


async def _authenticate(client: httpx.AsyncClient, auth: dict[str, Any], region: str | None,
                        interface: str) -> tuple[str, str]:
    user: dict[str, Any] = {"name": auth["username"], "password": auth["password"]}
    user["domain"] = ({"id": auth["user_domain_id"]} if auth.get("user_domain_id")
                      else {"name": auth.get("user_domain_name", "Default")})
    project: dict[str, Any] = {"name": auth["project_name"]}
    project["domain"] = ({"id": auth["project_domain_id"]} if auth.get("project_domain_id")
                         else {"name": auth.get("project_domain_name", "Default")})
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                     "scope": {"project": project}}}
    auth_url = str(auth["auth_url"]).rstrip("/")
    if not auth_url.endswith("/v3"):
        auth_url += "/v3"
    response = await client.post(f"{auth_url}/auth/tokens", json=body)
    _check(response, 201, "authenticating")
    token = response.headers["X-Subject-Token"]
    for service in response.json()["token"].get("catalog", []):
        if service.get("type") != "image":
            continue
        for endpoint in service.get("endpoints", []):
            if endpoint.get("interface") == interface and (
                    region is None or region in (endpoint.get("region_id"),
                                                 endpoint.get("region"))):
                return token, str(endpoint["url"])
    raise RegistrationError("the cloud's catalog has no image service endpoint "
                            f"({interface}{', region ' + region if region else ''})")
