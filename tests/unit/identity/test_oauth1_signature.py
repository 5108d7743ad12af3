"""OAuth1 signatures against RFC 5849's own examples (and a header oauthlib made)."""

from __future__ import annotations

import time

import pytest

from stackling.identity.service.oauth1_signature import (
    OAuthRequestError,
    SignedRequest,
    base_string,
    check_parameters,
    parse_authorization,
    signature,
    verify,
)


def test_base_string_of_rfc5849_section_3_4_1_1() -> None:
    request = SignedRequest("POST", "http://example.com/request", None, [
        ("b5", "=%3D"), ("a3", "a"), ("c@", ""), ("a2", "r b"), ("c2", ""), ("a3", "2 q")])
    header = ('OAuth realm="Example", oauth_consumer_key="9djdj82h48djs9d2", '
              'oauth_token="kkk9d7dh3k39sjv7", oauth_signature_method="HMAC-SHA1", '
              'oauth_timestamp="137131201", oauth_nonce="7d8f3e4a", '
              'oauth_signature="bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"')
    assert base_string(request, parse_authorization(header)) == (
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D"
        "%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26"
        "oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D"
        "137131201%26oauth_token%3Dkkk9d7dh3k39sjv7")


def test_signature_of_rfc5849_section_1_2() -> None:
    request = SignedRequest("GET", "http://photos.example.net:80/photos", None,
                            [("file", "vacation.jpg"), ("size", "original")])
    oauth = {"oauth_consumer_key": "dpf43f3p2l4k3l03", "oauth_token": "nnch734d00sl2jdk",
             "oauth_signature_method": "HMAC-SHA1", "oauth_timestamp": "137131202",
             "oauth_nonce": "chapoH", "oauth_signature": "MdpQcU8iPSUjWoN/UDMsK2sui9I="}
    assert signature(request, oauth, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00") == \
        oauth["oauth_signature"]
    assert verify(request, oauth, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00")
    assert not verify(request, oauth, "kd94hf93k423kf44", "wrong")


def test_header_signed_by_oauthlib() -> None:
    # oauthlib 4.0.1 Client(..., signature_method=HMAC-SHA1, verifier=...).sign(url, "POST")
    header = ('OAuth oauth_nonce="75736118956802733421795313632", '
              'oauth_timestamp="1795313632", oauth_version="1.0", '
              'oauth_signature_method="HMAC-SHA1", '
              f'oauth_consumer_key="{"a" * 32}", oauth_token="{"c" * 32}", '
              'oauth_verifier="AbCdEfGh", oauth_signature="8NAIoIhp4eQltli9T4bd4i0DYZM%3D"')
    request = SignedRequest("POST", "http://127.0.0.1:8805/identity/v3/OS-OAUTH1/access_token",
                            header, [("x", "1 2")])
    assert request.oauth["oauth_verifier"] == "AbCdEfGh"
    assert verify(request, request.oauth, "b" * 32, "d" * 32)


def test_plaintext() -> None:
    oauth = {"oauth_signature_method": "PLAINTEXT", "oauth_signature": "c%20s&t"}
    assert verify(SignedRequest("POST", "http://x/y", None), oauth, "c s", "t")


def _oauth(**kw: str) -> dict[str, str]:
    base = {"oauth_consumer_key": "k", "oauth_signature_method": "HMAC-SHA1",
            "oauth_signature": "s", "oauth_timestamp": str(int(time.time())),
            "oauth_nonce": "n"}
    return {**base, **kw}


def test_parameter_checks() -> None:
    check_parameters(_oauth())
    check_parameters(_oauth(oauth_callback="oob"), "oauth_callback")
    bad = [_oauth(oauth_nonce=""), _oauth(oauth_version="2.0"),
           _oauth(oauth_signature_method="RSA-SHA1"),
           _oauth(oauth_timestamp=str(int(time.time()) - 3600)), _oauth(oauth_timestamp="x")]
    for oauth in bad:
        with pytest.raises(OAuthRequestError):
            check_parameters(oauth)
    with pytest.raises(OAuthRequestError):
        check_parameters(_oauth(), "oauth_callback")
    assert parse_authorization("Basic abc") == {}
