"""Registering the tiny guest: which images, reuse, replacement, and the REST client."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackling.cli import cloudsyaml
from stackling.common.config import Config
from stackling.image.guest import builder, ensure, host, register
from stackling.image.guest.register import (
    BUILD_PROPERTY,
    ImageSpec,
    RegisteredImage,
    RegistrationError,
    RestRegistrar,
)


class FakeRegistrar:
    def __init__(self) -> None:
        self.images: dict[str, dict[str, Any]] = {}
        self.created: list[str] = []
        self.deleted: list[str] = []

    async def find(self, name: str) -> list[RegisteredImage]:
        return [RegisteredImage(i, img["name"], img["status"], img["properties"])
                for i, img in self.images.items() if img["name"] == name]

    async def create(self, spec: ImageSpec) -> str:
        image_id = str(uuid.uuid4())
        self.images[image_id] = {"name": spec.name, "status": "active",
                                 "disk_format": spec.disk_format,
                                 "container_format": spec.container_format,
                                 "visibility": spec.visibility, "min_ram": spec.min_ram,
                                 "properties": dict(spec.properties),
                                 "data": spec.path.read_bytes()}
        self.created.append(spec.name)
        return image_id

    async def delete(self, image_id: str) -> None:
        self.images.pop(image_id, None)
        self.deleted.append(image_id)

    def by_name(self, name: str) -> dict[str, Any]:
        [image] = [img for img in self.images.values() if img["name"] == name]
        return image


def make_guest(root: Path, key: str, with_disk: bool = True) -> builder.TinyGuest:
    directory = root / key
    directory.mkdir(parents=True)
    (directory / "tiny-vmlinuz").write_bytes(b"kernel " + key.encode())
    (directory / "tiny-initrd.img").write_bytes(b"initrd " + key.encode())
    if with_disk:
        (directory / "tiny.qcow2").write_bytes(b"QFI\xfb" + key.encode())
    return builder.TinyGuest(directory, key, "6.1.0-99-amd64", "console=ttyS0", with_disk)


async def test_registers_every_variant(tmp_path: Path) -> None:
    guest = make_guest(tmp_path, "k1")
    fake = FakeRegistrar()
    ids = await register.register_tiny_guest(guest, fake, say=lambda m: None)
    assert set(ids) == {"stackling-tiny-kernel", "stackling-tiny-ramdisk",
                        "stackling-tiny-kernel-boot", "stackling-tiny"}
    kernel = fake.by_name("stackling-tiny-kernel")
    assert (kernel["disk_format"], kernel["container_format"]) == ("aki", "aki")
    assert kernel["data"] == b"kernel k1"
    ramdisk = fake.by_name("stackling-tiny-ramdisk")
    assert (ramdisk["disk_format"], ramdisk["container_format"]) == ("ari", "ari")
    ami = fake.by_name("stackling-tiny-kernel-boot")
    assert (ami["disk_format"], ami["container_format"]) == ("ami", "ami")
    assert ami["properties"]["kernel_id"] == ids["stackling-tiny-kernel"]
    assert ami["properties"]["ramdisk_id"] == ids["stackling-tiny-ramdisk"]
    assert ami["properties"]["os_command_line"] == "console=ttyS0"
    assert len(ami["data"]) == register.ROOT_SIZE
    qcow2 = fake.by_name("stackling-tiny")
    assert (qcow2["disk_format"], qcow2["container_format"]) == ("qcow2", "bare")
    assert qcow2["min_ram"] == ami["min_ram"] == register.MIN_RAM_MB
    for image in fake.images.values():
        assert image["visibility"] == "public"
        assert image["properties"][BUILD_PROPERTY] == "k1"


async def test_without_disk_the_ami_is_stackling_tiny(tmp_path: Path) -> None:
    fake = FakeRegistrar()
    ids = await register.register_tiny_guest(make_guest(tmp_path, "k1", with_disk=False),
                                             fake, say=lambda m: None)
    assert set(ids) == {"stackling-tiny-kernel", "stackling-tiny-ramdisk", "stackling-tiny"}
    assert fake.by_name("stackling-tiny")["disk_format"] == "ami"


async def test_same_build_is_reused(tmp_path: Path) -> None:
    guest = make_guest(tmp_path, "k1")
    fake = FakeRegistrar()
    first = await register.register_tiny_guest(guest, fake, say=lambda m: None)
    fake.created.clear()
    again = await register.register_tiny_guest(guest, fake, say=lambda m: None)
    assert again == first and fake.created == [] and fake.deleted == []


async def test_new_build_replaces_ours_only(tmp_path: Path) -> None:
    fake = FakeRegistrar()
    old = await register.register_tiny_guest(make_guest(tmp_path, "k1"), fake,
                                             say=lambda m: None)
    fake.images["someone-else"] = {"name": "stackling-tiny", "status": "active",
                                   "properties": {}}
    new = await register.register_tiny_guest(make_guest(tmp_path, "k2"), fake,
                                             say=lambda m: None)
    assert set(new.values()).isdisjoint(old.values())
    assert sorted(fake.deleted) == sorted(old.values())
    assert "someone-else" in fake.images  # not ours: left alone
    assert fake.by_name("stackling-tiny-kernel")["properties"][BUILD_PROPERTY] == "k2"


async def test_ami_is_recreated_when_its_kernel_went_away(tmp_path: Path) -> None:
    guest = make_guest(tmp_path, "k1")
    fake = FakeRegistrar()
    ids = await register.register_tiny_guest(guest, fake, say=lambda m: None)
    del fake.images[ids["stackling-tiny-kernel"]]  # someone deleted the kernel
    fake.created.clear()
    again = await register.register_tiny_guest(guest, fake, say=lambda m: None)
    assert fake.created == ["stackling-tiny-kernel", "stackling-tiny-kernel-boot"]
    ami = fake.images[again["stackling-tiny-kernel-boot"]]
    assert ami["properties"]["kernel_id"] == again["stackling-tiny-kernel"]


class FakeCloud:
    """Identity + Glance v2, just what the REST registrar uses."""

    def __init__(self, fail_upload: bool = False) -> None:
        self.images: dict[str, dict[str, Any]] = {}
        self.data: dict[str, bytes] = {}
        self.fail_upload = fail_upload
        self.auth_body: dict[str, Any] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/identity/v3/auth/tokens":
            self.auth_body = json.loads(request.content)
            catalog = [{"type": "image", "name": "glance", "endpoints": [
                {"interface": "internal", "region_id": "RegionOne",
                 "url": "http://internal/image"},
                {"interface": "public", "region_id": "RegionOne",
                 "url": "http://cloud/image"}]}]
            return httpx.Response(201, headers={"X-Subject-Token": "tok"},
                                  json={"token": {"catalog": catalog}})
        assert request.headers["X-Auth-Token"] == "tok"
        if path == "/image/v2/images" and request.method == "GET":
            name = request.url.params.get("name")
            matching = [img for img in self.images.values() if img["name"] == name]
            marker = request.url.params.get("marker")
            if marker is None and len(matching) > 1:  # page of one, with a next link
                return httpx.Response(200, json={
                    "images": matching[:1],
                    "next": f"/v2/images?name={name}&marker={matching[0]['id']}"})
            if marker is not None:
                matching = matching[1:]
            return httpx.Response(200, json={"images": matching})
        if path == "/image/v2/images" and request.method == "POST":
            body = json.loads(request.content)
            image = {**body, "id": str(uuid.uuid4()), "status": "queued"}
            self.images[image["id"]] = image
            return httpx.Response(201, json=image)
        image_id = path.split("/")[4]
        if path.endswith("/file"):
            if self.fail_upload:
                self.images[image_id]["status"] = "killed"
                return httpx.Response(400, json={"message": "bad data"})
            self.data[image_id] = request.read()
            self.images[image_id]["status"] = "active"
            return httpx.Response(204)
        if request.method == "GET":
            return httpx.Response(200, json=self.images[image_id])
        if request.method == "DELETE":
            return httpx.Response(204 if self.images.pop(image_id, None) else 404)
        return httpx.Response(405)


AUTH = {"auth_url": "http://cloud/identity", "username": "admin", "password": "pw",
        "project_name": "admin", "user_domain_name": "Default",
        "project_domain_name": "Default"}


def rest(cloud: FakeCloud) -> RestRegistrar:
    client = httpx.AsyncClient(transport=httpx.MockTransport(cloud.handler))
    return RestRegistrar(client, "http://cloud/image", "tok")


async def test_rest_authenticates_and_finds_the_public_endpoint() -> None:
    cloud = FakeCloud()
    async with httpx.AsyncClient(transport=httpx.MockTransport(cloud.handler)) as client:
        token, url = await register._authenticate(client, AUTH, "RegionOne", "public")
    assert (token, url) == ("tok", "http://cloud/image")
    password = cloud.auth_body["auth"]["identity"]["password"]["user"]
    assert password == {"name": "admin", "password": "pw", "domain": {"name": "Default"}}
    assert cloud.auth_body["auth"]["scope"]["project"]["name"] == "admin"


async def test_rest_register_end_to_end(tmp_path: Path) -> None:
    cloud = FakeCloud()
    guest = make_guest(tmp_path, "k1")
    async with rest(cloud) as registrar:
        ids = await register.register_tiny_guest(guest, registrar, say=lambda m: None)
        assert cloud.data[ids["stackling-tiny"]] == guest.disk.read_bytes()  # type: ignore[union-attr]
        assert cloud.images[ids["stackling-tiny-kernel-boot"]]["kernel_id"] == \
            ids["stackling-tiny-kernel"]
        assert cloud.images[ids["stackling-tiny"]]["min_ram"] == register.MIN_RAM_MB
        # a second image of the same name: find follows the "next" link
        cloud.images["x"] = {"id": "x", "name": "stackling-tiny", "status": "active"}
        found = await registrar.find("stackling-tiny")
        assert sorted(image.id for image in found) == sorted([ids["stackling-tiny"], "x"])


async def test_rest_failed_upload_leaves_no_image(tmp_path: Path) -> None:
    cloud = FakeCloud(fail_upload=True)
    path = tmp_path / "k"
    path.write_bytes(b"kernel")
    async with rest(cloud) as registrar:
        with pytest.raises(RegistrationError, match="HTTP 400"):
            await registrar.create(ImageSpec("stackling-tiny-kernel", "aki", "aki", path))
    assert cloud.images == {}


def test_admin_auth_from_clouds_yaml(tmp_path: Path) -> None:
    path = tmp_path / "clouds.yaml"
    cloudsyaml.write(path, "http://127.0.0.1:8780/identity", "RegionOne",
                     {"admin": "secret-a", "demo": "secret-d"})
    auth, region = ensure.admin_auth(path)
    assert auth["username"] == "admin" and auth["password"] == "secret-a"
    assert region == "RegionOne"
    with pytest.raises(FileNotFoundError, match="stackling up"):
        ensure.admin_auth(tmp_path / "missing.yaml")


async def test_ensure_tiny_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config(data_dir=tmp_path)
    said: list[str] = []

    async def missing(*args: object, **kwargs: object) -> builder.TinyGuest:
        raise host.HostMissing({"a statically linked busybox": "busybox-static"})

    monkeypatch.setattr(builder, "build_tiny_guest", missing)
    assert await ensure.ensure_tiny_image(config, FakeRegistrar(), say=said.append) is None
    assert "busybox-static" in said[-1]

    guest = make_guest(tmp_path, "k1", with_disk=False)

    async def built(*args: object, **kwargs: object) -> builder.TinyGuest:
        return guest

    monkeypatch.setattr(builder, "build_tiny_guest", built)
    fake = FakeRegistrar()
    ids = await ensure.ensure_tiny_image(config, fake, say=said.append)
    assert ids is not None and set(ids) == {"stackling-tiny-kernel", "stackling-tiny-ramdisk",
                                            "stackling-tiny"}
    # no cloud (no clouds.yaml): logged, not raised
    assert await ensure.ensure_tiny_image(config, wait=0, say=said.append) is None
