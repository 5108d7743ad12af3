"""The metadata service: signed requests from the metadata proxy, OpenStack and EC2 paths."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from stackling.compute.metadata.app import create_app, sign
from stackling.compute.rpcapi import FlavorInfo, InstanceInfo

SECRET = "s3cret-shared"
UUID = "0b5d2a61-6b1c-4c55-9d4e-2f0c3c0e0001"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRpbnk alice@test"


def instance(**extra: object) -> InstanceInfo:
    base: dict[str, object] = dict(
        uuid=UUID, name="vm1", instance_name="instance-0000002a", hostname="vm1",
        project_id="p1", user_id="u1", vm_state="active",
        flavor=FlavorInfo(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=128),
        image_ref="6b1e3b1c-3e7a-4d5e-9f00-000000000001", key_data=KEY,
        user_data=base64.b64encode(b"#!/bin/sh\necho hi\n").decode(),
        metadata={"purpose": "test", "key_name": "alice"})
    base.update(extra)
    return InstanceInfo.model_validate(base)


@pytest.fixture
def client() -> httpx.AsyncClient:
    known = {UUID: instance(), "nodata": instance(uuid="nodata", user_data=None)}

    async def lookup(uuid: str) -> InstanceInfo | None:
        return known.get(uuid)

    app = create_app(lookup, SECRET)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://md")


def signed(uuid: str = UUID, **extra: str) -> dict[str, str]:
    return {"X-Instance-ID": uuid, "X-Instance-ID-Signature": sign(SECRET, uuid), **extra}


async def test_unsigned_forged_and_unknown_requests_are_refused(
        client: httpx.AsyncClient) -> None:
    r = await client.get("/openstack/latest/meta_data.json")
    assert r.status_code == 403
    r = await client.get("/openstack/latest/meta_data.json",
                         headers={"X-Instance-ID": UUID, "X-Instance-ID-Signature": "0" * 64})
    assert r.status_code == 403
    other = "11111111-2222-3333-4444-555555555555"  # a valid signature for another id
    r = await client.get("/openstack/latest/meta_data.json", headers=signed(other))
    assert r.status_code == 404
    r = await client.get("/openstack/latest/meta_data.json",
                         headers=signed(**{"X-Tenant-ID": "someone-else"}))
    assert r.status_code == 403
    assert SECRET not in r.text


async def test_no_secret_configured_answers_503() -> None:
    async def lookup(uuid: str) -> InstanceInfo | None:
        return instance()
    app = create_app(lookup, None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://md") as c:
        r = await c.get("/openstack/latest/meta_data.json", headers=signed())
    assert r.status_code == 503


async def test_openstack_documents(client: httpx.AsyncClient) -> None:
    r = await client.get("/openstack", headers=signed())
    assert r.text.splitlines()[-1] == "latest" and "2012-08-10" in r.text
    r = await client.get("/openstack/latest/", headers=signed())
    assert "meta_data.json" in r.text.splitlines() and "user_data" in r.text.splitlines()
    r = await client.get("/openstack/latest/meta_data.json", headers=signed())
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    md = r.json()
    assert md["uuid"] == UUID and md["hostname"] == "vm1.novalocal"
    assert md["public_keys"] == {"alice": KEY} and md["meta"]["purpose"] == "test"
    assert md["project_id"] == "p1"
    r = await client.get("/openstack/2013-10-17/user_data", headers=signed())
    assert r.content == b"#!/bin/sh\necho hi\n"
    for name in ("network_data.json", "vendor_data2.json", "vendor_data.json"):
        r = await client.get(f"/openstack/latest/{name}", headers=signed())
        assert r.status_code == 200 and isinstance(r.json(), dict), name
    r = await client.get("/openstack/latest/user_data", headers=signed("nodata"))
    assert r.status_code == 404
    r = await client.get("/openstack/1999-01-01/meta_data.json", headers=signed())
    assert r.status_code == 404


async def test_ec2_tree(client: httpx.AsyncClient) -> None:
    r = await client.get("/", headers=signed())
    assert "2009-04-04" in r.text.splitlines() and r.text.endswith("latest")
    r = await client.get("/latest/", headers=signed())
    assert r.text.splitlines() == ["meta-data/", "user-data"]
    r = await client.get("/latest/meta-data/", headers=signed())
    listing = r.text.splitlines()
    assert "instance-id" in listing and "placement/" in listing and "public-keys/" in listing
    r = await client.get("/latest/meta-data/instance-id", headers=signed())
    assert r.text == "i-0000002a"
    r = await client.get("/2009-04-04/meta-data/placement/availability-zone",
                         headers=signed())
    assert r.text == "nova"
    r = await client.get("/latest/meta-data/public-keys/", headers=signed())
    assert r.text == "0=alice"
    r = await client.get("/latest/meta-data/public-keys/0/openssh-key", headers=signed())
    assert r.text == KEY
    r = await client.get("/latest/user-data", headers=signed())
    assert r.content == b"#!/bin/sh\necho hi\n"
    r = await client.get("/latest/meta-data/no-such-thing", headers=signed())
    assert r.status_code == 404
    r = await client.get("/latest/meta-data.json", headers=signed())
    assert json.loads(r.text)["instance-type"] == "m1.tiny"


async def test_password_is_posted_once_and_read_back() -> None:
    known = {UUID: instance()}

    async def lookup(uuid: str) -> InstanceInfo | None:
        return known.get(uuid)

    async def set_password(uuid: str, password: str) -> bool | None:
        if uuid not in known:
            return None
        if known[uuid].password:
            return False
        known[uuid] = known[uuid].model_copy(update={"password": password})
        return True

    app = create_app(lookup, SECRET, set_password=set_password)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://md") as md:
        url = "/openstack/latest/password"
        assert (await md.get(url, headers=signed())).text == ""
        r = await md.post(url, headers=signed(), content=b"x" * 1021)
        assert r.status_code == 400  # over four chunks of 255
        r = await md.post(url, headers=signed(), content=b"ZW5jcnlwdGVk")
        assert r.status_code == 200
        assert (await md.get(url, headers=signed())).text == "ZW5jcnlwdGVk"
        r = await md.post(url, headers=signed(), content=b"other")
        assert r.status_code == 409
        r = await md.post("/openstack/latest/meta_data.json", headers=signed(), content=b"x")
        assert r.status_code == 405
        r = await md.put(url, headers=signed(), content=b"x")
        assert r.status_code == 405
        r = await md.post(url, content=b"unsigned")
        assert r.status_code == 403
