from __future__ import annotations

import hashlib
import json
from typing import Any

from stackling.identity.models import Credential
from tests.functional.conftest import Cloud

TOKENS = "/identity/v3/auth/tokens"
CREDS = "/identity/v3/credentials"


async def _me(cloud: Cloud, token: str) -> dict[str, Any]:
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": token, "X-Subject-Token": token})
    body: dict[str, Any] = r.json()["token"]
    return body


async def test_ec2_credential_crud_encrypted_at_rest(cloud: Cloud) -> None:
    admin = await cloud.token()
    me = await _me(cloud, admin)
    h = {"X-Auth-Token": admin}
    blob = json.dumps({"access": "AKIA-test-access", "secret": "very-secret-value"})
    r = await cloud.client.post(CREDS, headers=h, json={"credential": {
        "user_id": me["user"]["id"], "project_id": me["project"]["id"], "type": "ec2",
        "blob": blob, "label": "extra attribute"}})
    assert r.status_code == 201, r.text
    cred = r.json()["credential"]
    assert cred["id"] == hashlib.sha256(b"AKIA-test-access").hexdigest()
    assert cred["blob"] == blob and cred["label"] == "extra attribute"
    assert cred["links"]["self"].endswith(f"/v3/credentials/{cred['id']}")

    async with cloud.identity.store.read() as session:
        row = await session.get(Credential, cred["id"])
    assert row is not None
    assert "very-secret-value" not in row.encrypted_blob and "AKIA" not in row.encrypted_blob
    keys = cloud.identity.credential_keys.path
    primary = max(int(p.name) for p in keys.iterdir() if p.name.isdigit())
    assert row.key_hash == hashlib.sha1((keys / str(primary)).read_bytes().strip()).hexdigest()

    got = (await cloud.client.get(f"{CREDS}/{cred['id']}", headers=h)).json()["credential"]
    assert json.loads(got["blob"])["secret"] == "very-secret-value"

    new_blob = json.dumps({"access": "AKIA-new", "secret": "other"})
    r = await cloud.client.patch(f"{CREDS}/{cred['id']}", headers=h,
                                 json={"credential": {"blob": new_blob}})
    assert r.status_code == 200 and r.json()["credential"]["id"] == cred["id"]
    assert json.loads(r.json()["credential"]["blob"])["access"] == "AKIA-new"
    r = await cloud.client.patch(f"{CREDS}/{cred['id']}", headers=h,
                                 json={"credential": {"id": "other"}})
    assert r.status_code == 400
    # the same access key twice: conflict
    r = await cloud.client.post(CREDS, headers=h, json={"credential": {
        "user_id": me["user"]["id"], "project_id": me["project"]["id"], "type": "ec2",
        "blob": blob}})
    assert r.status_code == 409

    listed = (await cloud.client.get(f"{CREDS}?type=ec2", headers=h)).json()["credentials"]
    assert [c["id"] for c in listed] == [cred["id"]]
    assert (await cloud.client.get(f"{CREDS}?type=cert", headers=h)).json()[
        "credentials"] == []
    assert (await cloud.client.delete(f"{CREDS}/{cred['id']}", headers=h)).status_code == 204
    assert (await cloud.client.get(f"{CREDS}/{cred['id']}", headers=h)).status_code == 404
    assert (await cloud.client.delete(f"{CREDS}/{cred['id']}", headers=h)).status_code == 404


async def test_validation(cloud: Cloud) -> None:
    admin = await cloud.token()
    me = await _me(cloud, admin)
    h = {"X-Auth-Token": admin}
    uid, pid = me["user"]["id"], me["project"]["id"]
    bad = [
        {"user_id": uid, "type": "cert"},  # no blob
        {"user_id": uid, "blob": "x"},  # no type
        {"type": "cert", "blob": "x"},  # no user
        {"user_id": uid, "type": "ec2", "blob": "{}"},  # ec2 needs project_id
        {"user_id": uid, "type": "ec2", "project_id": pid, "blob": "not json"},
        {"user_id": uid, "type": "ec2", "project_id": pid, "blob": '{"secret": "s"}'},
        {"user_id": uid, "type": "cert", "blob": {"not": "a string"}},
    ]
    for spec in bad:
        r = await cloud.client.post(CREDS, headers=h, json={"credential": spec})
        assert r.status_code == 400, (spec, r.text)
    assert (await cloud.client.post(CREDS, json={"credential": {}})).status_code == 401


async def test_users_see_only_their_own(cloud: Cloud) -> None:
    admin = await cloud.token()
    demo = await cloud.token("demo", "demo")
    admin_id = (await _me(cloud, admin))["user"]["id"]
    demo_id = (await _me(cloud, demo))["user"]["id"]
    r = await cloud.client.post(CREDS, headers={"X-Auth-Token": admin}, json={"credential": {
        "user_id": admin_id, "type": "cert", "blob": "admin-cert"}})
    admin_cred = r.json()["credential"]["id"]
    dh = {"X-Auth-Token": demo}
    r = await cloud.client.post(CREDS, headers=dh, json={"credential": {
        "user_id": demo_id, "type": "totp", "blob": "demo-seed"}})
    assert r.status_code == 201, r.text
    demo_cred = r.json()["credential"]["id"]
    # demo cannot create for, read, change or delete admin's
    r = await cloud.client.post(CREDS, headers=dh, json={"credential": {
        "user_id": admin_id, "type": "totp", "blob": "x"}})
    assert r.status_code == 403
    assert (await cloud.client.get(f"{CREDS}/{admin_cred}", headers=dh)).status_code == 403
    assert (await cloud.client.delete(f"{CREDS}/{admin_cred}", headers=dh)).status_code == 403
    assert (await cloud.client.patch(f"{CREDS}/{admin_cred}", headers=dh, json={
        "credential": {"blob": "mine now"}})).status_code == 403
    # nor give its own away
    r = await cloud.client.patch(f"{CREDS}/{demo_cred}", headers=dh,
                                 json={"credential": {"user_id": admin_id}})
    assert r.status_code == 403
    listed = (await cloud.client.get(CREDS, headers=dh)).json()["credentials"]
    assert [c["id"] for c in listed] == [demo_cred]
    listed = (await cloud.client.get(CREDS, headers={"X-Auth-Token": admin})).json()
    assert {c["id"] for c in listed["credentials"]} == {admin_cred, demo_cred}
    r = await cloud.client.patch(f"{CREDS}/{demo_cred}", headers=dh,
                                 json={"credential": {"blob": "new-seed"}})
    assert r.status_code == 200 and r.json()["credential"]["blob"] == "new-seed"
    assert (await cloud.client.delete(f"{CREDS}/{demo_cred}", headers=dh)).status_code == 204


async def test_rotation_and_migration_keep_blobs_readable(cloud: Cloud) -> None:
    from stackling.identity.service.credentials import Credentials

    admin = await cloud.token()
    me = await _me(cloud, admin)
    h = {"X-Auth-Token": admin}
    r = await cloud.client.post(CREDS, headers=h, json={"credential": {
        "user_id": me["user"]["id"], "type": "cert", "blob": "before-rotation"}})
    cred_id = r.json()["credential"]["id"]
    svc = Credentials(cloud.identity.store, cloud.identity.credential_keys)
    assert await svc.migrate() == 0
    for _ in range(3):  # by the third rotation the original key is purged
        cloud.identity.credential_keys.rotate()
        assert await svc.migrate() == 1
    got = await cloud.client.get(f"{CREDS}/{cred_id}", headers=h)
    assert got.json()["credential"]["blob"] == "before-rotation"
