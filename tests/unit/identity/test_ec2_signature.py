"""Our AWS signature checks agree with the reference signers (keystoneclient, botocore)."""

from __future__ import annotations

import hashlib
import urllib.parse
from typing import Any

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from stackling.common.errors import Unauthorized
from stackling.identity.service.ec2_signature import (
    check_ec2_signature,
    check_s3_signature,
    ec2_signature,
)

ec2_utils = pytest.importorskip("keystoneclient.contrib.ec2.utils")
SECRET = "0123456789abcdef0123456789abcdef"


def _reference(creds: dict[str, Any]) -> str:
    copy = {**creds, "params": dict(creds.get("params") or {})}
    signature: str = ec2_utils.Ec2Signer(SECRET).generate(copy)
    return signature


@pytest.mark.parametrize("version", ["0", "1", "2"])
def test_v0_v1_v2_match_keystoneclient(version: str) -> None:
    creds = {"host": "ec2.example:8773", "verb": "POST", "path": "/services/Cloud",
             "params": {"Action": "DescribeImages", "SignatureVersion": version,
                        "Timestamp": "2030-01-01T00:00:00Z", "AWSAccessKeyId": "a",
                        "Filter.1.Name": "name with spaces/ü"}}
    assert ec2_signature(SECRET, creds) == _reference(creds)
    check_ec2_signature(SECRET, {**creds, "signature": _reference(creds)})
    with pytest.raises(Unauthorized):
        check_ec2_signature(SECRET, {**creds, "signature": "wrong"})


def test_v4_header_matches_keystoneclient() -> None:
    headers = {"Host": "ec2.example", "X-Amz-Date": "20300101T000000Z",
               "Authorization": "AWS4-HMAC-SHA256 Credential=a/20300101/RegionOne/ec2/"
                                "aws4_request, SignedHeaders=host;x-amz-date, Signature=x"}
    creds = {"host": "ec2.example", "verb": "GET", "path": "/",
             "params": {"Action": "DescribeInstances", "Version": "2016-11-15"},
             "headers": headers, "body_hash": hashlib.sha256(b"").hexdigest()}
    assert ec2_signature(SECRET, creds) == _reference(creds)


def test_v4_presigned_query_from_botocore() -> None:
    req = AWSRequest(method="GET", url="http://ec2.example/?Action=DescribeRegions")
    SigV4QueryAuth(BotoCredentials("a", SECRET), "ec2", "RegionOne", expires=300).add_auth(req)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(req.url).query))
    signature = query.pop("X-Amz-Signature")
    creds = {"access": "a", "signature": signature, "host": "ec2.example", "verb": "GET",
             "path": "/", "params": query, "headers": {"Host": "ec2.example"},
             "body_hash": hashlib.sha256(b"").hexdigest()}
    check_ec2_signature(SECRET, creds)
    with pytest.raises(Unauthorized):
        check_ec2_signature(SECRET, {**creds, "params": {**query, "Action": "RunInstances"}})


def test_s3_v2_string_to_sign() -> None:
    import base64
    import hmac

    string = b"GET\n\n\nSun, 22 Nov 2026 00:00:00 GMT\n/bucket/key"
    good = base64.b64encode(hmac.new(SECRET.encode(), string, hashlib.sha1).digest()).decode()
    token = base64.urlsafe_b64encode(string).decode()
    check_s3_signature(SECRET, {"token": token, "signature": good})
    with pytest.raises(Unauthorized):
        check_s3_signature(SECRET, {"token": token, "signature": "bad"})
    with pytest.raises(Unauthorized):  # a v4 scope for a service S3 tokens do not cover
        bad = base64.urlsafe_b64encode(b"AWS4-HMAC-SHA256\n20300101T000000Z\n"
                                       b"20300101/r/ec2/aws4_request\nabc").decode()
        check_s3_signature(SECRET, {"token": bad, "signature": "x"})
