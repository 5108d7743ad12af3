"""An in-process cloud with identity and the image service, driven over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from stackling.cli.cloudsyaml import read_passwords
from stackling.cli.image import ImageComponent
from stackling.cli.up import build_root_app, prepare_all, start_bus, start_components
from stackling.common.config import Config
from stackling.image.service.glance import ImageService

PATCH = "application/openstack-images-v2.1-json-patch"


class ImageCloud:
    def __init__(self, config: Config, client: httpx.AsyncClient, passwords: dict[str, str],
                 identity: Any, images: ImageService) -> None:
        self.config = config
        self.client = client
        self.passwords = passwords
        self.identity = identity
        self.images = images
        self._tokens: dict[tuple[str, str | None], str] = {}

    async def token(self, user: str = "admin", project: str | None = "admin") -> str:
        key = (user, project)
        if key not in self._tokens:
            body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {
                "user": {"name": user, "domain": {"id": "default"},
                         "password": self.passwords[user]}}}}}
            if project:
                body["auth"]["scope"] = {"project": {"name": project,
                                                     "domain": {"id": "default"}}}
            r = await self.client.post("/identity/v3/auth/tokens", json=body)
            assert r.status_code == 201, r.text
            self._tokens[key] = r.headers["X-Subject-Token"]
        return self._tokens[key]

    async def headers(self, user: str = "admin", **extra: str) -> dict[str, str]:
        project = "admin" if user == "admin" else user  # demo is in project demo
        return {"X-Auth-Token": await self.token(user, project), **extra}

    async def project_id(self, name: str) -> str:
        r = await self.client.get(f"/identity/v3/projects?name={name}",
                                  headers=await self.headers("admin"))
        return str(r.json()["projects"][0]["id"])

    async def add_user(self, name: str, project: str, role: str = "member") -> None:
        """A user with ``role`` in a new project ``project`` (password = name)."""
        h = await self.headers("admin")
        r = await self.client.post("/identity/v3/projects", headers=h, json={
            "project": {"name": project, "domain_id": "default"}})
        assert r.status_code == 201, r.text
        pid = r.json()["project"]["id"]
        r = await self.client.post("/identity/v3/users", headers=h, json={
            "user": {"name": name, "domain_id": "default", "password": name + "-pw-1A"}})
        assert r.status_code == 201, r.text
        uid = r.json()["user"]["id"]
        roles = (await self.client.get(f"/identity/v3/roles?name={role}", headers=h)).json()
        rid = roles["roles"][0]["id"]
        r = await self.client.put(f"/identity/v3/projects/{pid}/users/{uid}/roles/{rid}",
                                  headers=h)
        assert r.status_code == 204, r.text
        self.passwords[name] = name + "-pw-1A"
        self._tokens.pop((name, project), None)

    async def as_user(self, user: str, project: str) -> dict[str, str]:
        return {"X-Auth-Token": await self.token(user, project)}

    async def create(self, user: str = "admin", project: str | None = None,
                     **body: Any) -> dict[str, Any]:
        h = await self.as_user(user, project or ("admin" if user == "admin" else user))
        body.setdefault("disk_format", "raw")
        body.setdefault("container_format", "bare")
        r = await self.client.post("/image/v2/images", headers=h, json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def upload(self, image_id: str, data: Any, user: str = "admin",
                     project: str | None = None, expect: int = 204) -> httpx.Response:
        h = await self.as_user(user, project or ("admin" if user == "admin" else user))
        h["Content-Type"] = "application/octet-stream"
        r = await self.client.put(f"/image/v2/images/{image_id}/file", headers=h, content=data)
        assert r.status_code == expect, r.text
        return r

    async def show(self, image_id: str, user: str = "admin", project: str | None = None
                   ) -> httpx.Response:
        h = await self.as_user(user, project or ("admin" if user == "admin" else user))
        return await self.client.get(f"/image/v2/images/{image_id}", headers=h)


@pytest.fixture
def image_config(tmp_path: Any) -> Config:
    from stackling.common.config import load_config

    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 0},
        "image": {"build_tiny_image": "never"},
    })


@pytest.fixture
async def image_cloud(image_config: Config) -> AsyncIterator[ImageCloud]:
    async with AsyncExitStack() as stack:
        component = ImageComponent()
        prepared = await prepare_all(image_config, [component])
        stack.push_async_callback(prepared.identity.close)
        bus = await start_bus(image_config, prepared.identity, stack)
        mounted = await start_components(prepared, image_config, bus, stack)
        app = build_root_app(prepared.identity, image_config, mounted)
        passwords = read_passwords(image_config.data_dir / "clouds.yaml")
        assert passwords is not None and component.svc is not None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                     timeout=60) as client:
            yield ImageCloud(image_config, client, dict(passwords), prepared.identity,
                             component.svc)
