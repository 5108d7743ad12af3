from __future__ import annotations

import base64
import hashlib
import urllib.parse
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from tests.functional.conftest import Cloud

TOKENS = "/identity/v3/auth/tokens"


async def _me(cloud: Cloud, token: str) -> dict[str, Any]:
    r = await cloud.client.get(TOKENS, headers={"X-Auth-Token": token, "X-Subject-Token": token})
    body: dict[str, Any] = r.json()["token"]
    return body


def _ec2(user_id: str, suffix: str = "") -> str:
    return f"/identity/v3/users/{user_id}/credentials/OS-EC2{suffix}"


async def _demo_ec2(cloud: Cloud) -> tuple[str, dict[str, Any], dict[str, Any]]:
    token = await cloud.token("demo", "demo")
    me = await _me(cloud, token)
    r = await cloud.client.post(_ec2(me["user"]["id"]), headers={"X-Auth-Token": token},
                                json={"tenant_id": me["project"]["id"]})
    assert r.status_code == 201, r.text
    return token, me, r.json()["credential"]


async def test_ec2_create_list_show_delete(cloud: Cloud) -> None:
    token, me, cred = await _demo_ec2(cloud)
    uid = me["user"]["id"]
    h = {"X-Auth-Token": token}
    assert set(cred) == {"user_id", "tenant_id", "access", "secret", "trust_id", "links"}
    assert cred["user_id"] == uid and cred["tenant_id"] == me["project"]["id"]
    assert len(cred["access"]) == 32 and len(cred["secret"]) == 32 and cred["trust_id"] is None
    assert cred["links"]["self"].endswith(f"/v3/users/{uid}/credentials/OS-EC2/"
                                          f"{cred['access']}")
    listed = (await cloud.client.get(_ec2(uid), headers=h)).json()["credentials"]
    assert [c["access"] for c in listed] == [cred["access"]]
    shown = (await cloud.client.get(_ec2(uid, f"/{cred['access']}"), headers=h)).json()
    assert shown["credential"]["secret"] == cred["secret"]
    # it is a v3 credential too, id = sha256(access)
    v3 = await cloud.client.get(
        f"/identity/v3/credentials/{hashlib.sha256(cred['access'].encode()).hexdigest()}",
        headers=h)
    assert v3.status_code == 200 and v3.json()["credential"]["type"] == "ec2"
    r = await cloud.client.delete(_ec2(uid, f"/{cred['access']}"), headers=h)
    assert r.status_code == 204
    r = await cloud.client.get(_ec2(uid, f"/{cred['access']}"), headers=h)
    assert r.status_code == 404


async def test_ec2_demo_forbidden_on_others(cloud: Cloud) -> None:
    admin = await cloud.token()
    admin_me = await _me(cloud, admin)
    admin_id = admin_me["user"]["id"]
    token, me, cred = await _demo_ec2(cloud)
    h = {"X-Auth-Token": token}
    r = await cloud.client.post(_ec2(admin_id), headers=h,
                                json={"tenant_id": me["project"]["id"]})
    assert r.status_code == 403
    assert (await cloud.client.get(_ec2(admin_id), headers=h)).status_code == 403
    admin_cred = (await cloud.client.post(
        _ec2(admin_id), headers={"X-Auth-Token": admin},
        json={"tenant_id": admin_me["project"]["id"]})).json()["credential"]
    r = await cloud.client.get(_ec2(me["user"]["id"], f"/{admin_cred['access']}"), headers=h)
    assert r.status_code == 403
    r = await cloud.client.delete(_ec2(admin_id, f"/{admin_cred['access']}"), headers=h)
    assert r.status_code == 403
    # admin may look at demo's
    r = await cloud.client.get(_ec2(me["user"]["id"], f"/{cred['access']}"),
                               headers={"X-Auth-Token": admin})
    assert r.status_code == 200
    # unknown project / user
    r = await cloud.client.post(_ec2(me["user"]["id"]), headers=h, json={"tenant_id": "nope"})
    assert r.status_code == 404
    r = await cloud.client.post(_ec2("nobody"), headers={"X-Auth-Token": admin},
                                json={"tenant_id": me["project"]["id"]})
    assert r.status_code == 404


def _boto_v4(cred: dict[str, Any], host: str = "ec2.example:8773") -> dict[str, Any]:
    """An EC2 request signed by botocore, as an EC2 front end would forward it."""
    params = {"Action": "DescribeInstances", "Version": "2016-11-15"}
    url = f"http://{host}/?{urllib.parse.urlencode(params)}"
    req = AWSRequest(method="GET", url=url, data=b"")
    SigV4Auth(BotoCredentials(cred["access"], cred["secret"]), "ec2", "RegionOne").add_auth(req)
    headers = {k: v for k, v in req.headers.items()}
    headers.setdefault("Host", host)
    signature = headers["Authorization"].rsplit("Signature=", 1)[1]
    return {"access": cred["access"], "signature": signature, "host": host, "verb": "GET",
            "path": "/", "params": params, "headers": headers,
            "body_hash": hashlib.sha256(b"").hexdigest()}


async def test_ec2tokens_with_botocore_signature(cloud: Cloud) -> None:
    admin = await cloud.token()
    _, me, cred = await _demo_ec2(cloud)
    signed = _boto_v4(cred)
    r = await cloud.client.post("/identity/v3/ec2tokens", headers={"X-Auth-Token": admin},
                                json={"credentials": signed})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert token["user"]["id"] == me["user"]["id"]
    assert token["project"]["id"] == me["project"]["id"]
    assert token["methods"] == ["ec2credential"]
    assert r.headers["X-Subject-Token"]
    # the token works
    issued = r.headers["X-Subject-Token"]
    assert (await cloud.client.get(TOKENS, headers={"X-Auth-Token": admin,
                                                    "X-Subject-Token": issued})
            ).status_code == 200

    tampered = {**signed, "params": {**signed["params"], "Action": "TerminateInstances"}}
    r = await cloud.client.post("/identity/v3/ec2tokens", headers={"X-Auth-Token": admin},
                                json={"credentials": tampered})
    assert r.status_code == 401 and cred["secret"] not in r.text
    r = await cloud.client.post("/identity/v3/ec2tokens", headers={"X-Auth-Token": admin},
                                json={"credentials": {**signed, "access": "unknown"}})
    assert r.status_code == 404
    r = await cloud.client.post("/identity/v3/ec2tokens", headers={"X-Auth-Token": admin},
                                json={"credentials": {"signature": "x"}})
    assert r.status_code == 401
    # only services and admins may ask
    demo = await cloud.token("demo", "demo")
    r = await cloud.client.post("/identity/v3/ec2tokens", headers={"X-Auth-Token": demo},
                                json={"credentials": signed})
    assert r.status_code == 403
    r = await cloud.client.get("/identity/v3/ec2tokens", headers={"X-Auth-Token": admin})
    assert r.status_code == 405


async def test_ec2tokens_v2_signature(cloud: Cloud) -> None:
    keystoneclient_ec2 = pytest.importorskip("keystoneclient.contrib.ec2.utils")
    admin = await cloud.token()
    _, me, cred = await _demo_ec2(cloud)
    params = {"Action": "DescribeInstances", "AWSAccessKeyId": cred["access"],
              "SignatureVersion": "2", "SignatureMethod": "HmacSHA256",
              "Timestamp": "2099-01-01T00:00:00Z", "Version": "2016-11-15"}
    creds = {"access": cred["access"], "host": "ec2.example:8773", "verb": "GET",
             "path": "/", "params": dict(params)}
    creds["signature"] = keystoneclient_ec2.Ec2Signer(cred["secret"]).generate(
        {**creds, "params": dict(params)})
    r = await cloud.client.post("/identity/v3/ec2tokens", headers={"X-Auth-Token": admin},
                                json={"ec2Credentials": creds})
    assert r.status_code == 200, r.text
    assert r.json()["token"]["project"]["id"] == me["project"]["id"]
    stale = {**creds, "params": {**params, "Timestamp": "2001-01-01T00:00:00Z"}}
    stale["signature"] = keystoneclient_ec2.Ec2Signer(cred["secret"]).generate(
        {**stale, "params": dict(stale["params"])})
    r = await cloud.client.post("/identity/v3/ec2tokens", headers={"X-Auth-Token": admin},
                                json={"ec2Credentials": stale})
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


class _CaptureS3(S3SigV4Auth):
    string: str = ""

    def string_to_sign(self, request: Any, canonical_request: str) -> str:
        self.string = super().string_to_sign(request, canonical_request)
        return self.string


async def test_s3tokens_v4(cloud: Cloud) -> None:
    admin = await cloud.token()
    _, me, cred = await _demo_ec2(cloud)
    req = AWSRequest(method="PUT", url="http://s3.example/bucket/key", data=b"hello",
                     headers={"X-Amz-Content-SHA256": hashlib.sha256(b"hello").hexdigest()})
    auth = _CaptureS3(BotoCredentials(cred["access"], cred["secret"]), "s3", "RegionOne")
    auth.add_auth(req)
    signature = req.headers["Authorization"].rsplit("Signature=", 1)[1]
    body = {"credentials": {"access": cred["access"], "signature": signature,
                            "token": base64.urlsafe_b64encode(auth.string.encode()).decode()}}
    r = await cloud.client.post("/identity/v3/s3tokens", headers={"X-Auth-Token": admin},
                                json=body)
    assert r.status_code == 200, r.text
    assert r.json()["token"]["user"]["id"] == me["user"]["id"]
    body["credentials"]["signature"] = "0" * 64
    r = await cloud.client.post("/identity/v3/s3tokens", headers={"X-Auth-Token": admin},
                                json=body)
    assert r.status_code == 401


async def test_ec2_from_app_cred_token_keeps_its_roles(cloud: Cloud) -> None:
    demo = await cloud.token("demo", "demo")
    me = await _me(cloud, demo)
    uid = me["user"]["id"]
    r = await cloud.client.post(f"/identity/v3/users/{uid}/application_credentials",
                                headers={"X-Auth-Token": demo},
                                json={"application_credential": {
                                    "name": "ro", "roles": [{"name": "reader"}],
                                    "unrestricted": True}})
    app = r.json()["application_credential"]
    login = await cloud.client.post(TOKENS, json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": app["id"], "secret": app["secret"]}}}})
    app_token = login.headers["X-Subject-Token"]
    r = await cloud.client.post(_ec2(uid), headers={"X-Auth-Token": app_token},
                                json={"tenant_id": me["project"]["id"]})
    # Keystone's ec2_create_credential needs the member role; this token only has reader
    assert r.status_code == 403
