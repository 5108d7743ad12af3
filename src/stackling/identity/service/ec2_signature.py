"""AWS request signatures, computed the way Keystone's ``/v3/ec2tokens`` and
``/v3/s3tokens`` check them.

ec2tokens receives the parts of the client's request (``verb``, ``host``, ``path``,
``params``, ``headers``, ``body_hash``) and recomputes the signature: versions 0, 1 and 2
(``SignatureVersion`` parameter) and version 4 (``Authorization: AWS4-HMAC-SHA256 ...``
header, or ``X-Amz-Algorithm`` for presigned URLs). s3tokens receives the string the client
signed (base64) and checks an S3 v2 (HMAC-SHA1) or v4 signature of it.

Comparison is constant time. Nothing here logs or returns the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from stackling.common.errors import Unauthorized
from stackling.common.timeutils import parse_isotime, utcnow

AUTH_TTL = timedelta(minutes=15)  # Keystone's [credential] auth_ttl
V4_ALGORITHM = "AWS4-HMAC-SHA256"
S3_V4_SERVICES = (b"s3", b"iam", b"sts")


def _b(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _hmac(key: bytes, msg: Any, digest: str) -> bytes:
    return hmac.new(key, _b(msg), digest).digest()


def _canonical_query(params: Mapping[str, Any]) -> str:
    pairs = []
    for key in sorted(params):
        value = urllib.parse.quote(_b(params[key]), safe="-_~")
        pairs.append(f"{urllib.parse.quote(key, safe='')}={value}")
    return "&".join(pairs)


def v4_signing_key(secret: str, date: Any, region: Any, service: Any) -> bytes:
    key = _hmac(b"AWS4" + _b(secret), date, "sha256")
    key = _hmac(key, region, "sha256")
    key = _hmac(key, service, "sha256")
    return _hmac(key, "aws4_request", "sha256")


class _V4Request:
    """The pieces of a v4-signed request, from its Authorization header or its query."""

    def __init__(self, params: Mapping[str, Any], headers: Mapping[str, str]) -> None:
        self.params = params
        self.headers = headers
        self.auth = headers.get("Authorization")

    def auth_param(self, name: str) -> str:
        if self.auth is not None:
            return self.auth.partition(f"{name}=")[2].split(",")[0].strip()
        return str(self.params.get(f"X-Amz-{name}", ""))

    def date(self) -> str:
        return str(self.headers.get("X-Amz-Date") or self.params.get("X-Amz-Date") or "")

    def canonical_headers(self, signed: str) -> str:
        lowered = {k.lower().strip(): " ".join(str(v).split()) for k, v in self.headers.items()}
        lines = [f"{h}:{lowered[h]}" for h in signed.split(";") if h in lowered]
        return "\n".join(lines) + "\n"


def _is_v4(params: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    auth = headers.get("Authorization")
    if auth is not None:
        return auth.startswith(V4_ALGORITHM)
    return params.get("X-Amz-Algorithm") == V4_ALGORITHM


def _signature_v4(secret: str, verb: str, path: str, params: Mapping[str, Any],
                  headers: Mapping[str, str], body_hash: str) -> str:
    req = _V4Request(params, headers)
    signed = req.auth_param("SignedHeaders")
    query = "" if verb.upper() == "POST" else _canonical_query(
        {k: v for k, v in params.items() if k != "X-Amz-Signature"})
    canonical = "\n".join((verb.upper(), path, query, req.canonical_headers(signed), signed,
                           body_hash))
    scope_parts = req.auth_param("Credential").split("/")
    if len(scope_parts) != 5:
        raise ValueError("malformed credential scope")
    date = req.date()
    if not date.startswith(scope_parts[1]):
        raise ValueError("request date does not match the credential scope")
    string_to_sign = "\n".join((V4_ALGORITHM, date, "/".join(scope_parts[1:]),
                                hashlib.sha256(canonical.encode("utf-8")).hexdigest()))
    key = v4_signing_key(secret, scope_parts[1], scope_parts[2], scope_parts[3])
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def ec2_signature(secret: str, credentials: Mapping[str, Any]) -> str:
    """The signature the client should have sent (raises ValueError when the request's
    shape names no known signature version)."""
    params: dict[str, Any] = dict(credentials.get("params") or {})
    headers: dict[str, str] = dict(credentials.get("headers") or {})
    verb = str(credentials.get("verb", ""))
    host = str(credentials.get("host", ""))
    path = str(credentials.get("path", ""))
    key = _b(secret)
    version = params.get("SignatureVersion")
    if version == "0":
        digest = _hmac(key, f"{params['Action']}{params['Timestamp']}", "sha1")
        return base64.b64encode(digest).decode("ascii")
    if version == "1":
        mac = hmac.new(key, digestmod=hashlib.sha1)
        for name in sorted(params, key=str.lower):
            mac.update(_b(name))
            mac.update(_b(params[name]))
        return base64.b64encode(mac.digest()).decode("ascii")
    if version == "2":
        params["SignatureMethod"] = "HmacSHA256"
        text = f"{verb}\n{host}\n{path}\n{_canonical_query(params)}"
        return base64.b64encode(_hmac(key, text, "sha256")).decode("ascii")
    if _is_v4(params, headers):
        return _signature_v4(secret, verb, path, params, headers,
                             str(credentials.get("body_hash", "")))
    raise ValueError("unknown signature version" if version is not None else
                     "unexpected signature format")


def check_ec2_signature(secret: str, credentials: dict[str, Any]) -> None:
    """401 unless ``credentials['signature']`` is right (also tried without the port in
    ``host``, since some clients sign without it)."""
    given = credentials.get("signature")
    if not given:
        raise Unauthorized("EC2 signature not supplied.")
    try:
        if hmac.compare_digest(_b(given), _b(ec2_signature(secret, credentials))):
            return
        host = str(credentials.get("host", ""))
        if ":" in host:
            bare = urllib.parse.urlsplit("//" + host).hostname or host
            expected = ec2_signature(secret, {**credentials, "host": bare})
            if hmac.compare_digest(_b(given), _b(expected)):
                return
    except (KeyError, ValueError, TypeError) as exc:
        raise Unauthorized("Invalid EC2 signature.") from exc
    raise Unauthorized("Invalid EC2 signature.")


def check_s3_signature(secret: str, credentials: Mapping[str, Any]) -> None:
    """``credentials['token']`` is the base64 string the client signed."""
    try:
        string_to_sign = base64.urlsafe_b64decode(str(credentials.get("token", "")))
    except (binascii.Error, ValueError) as exc:
        raise Unauthorized("Credential signature mismatch") from exc
    if string_to_sign[:4] != b"AWS4":
        digest = _hmac(_b(secret), string_to_sign, "sha1")
        expected = base64.b64encode(digest).decode("ascii")
    else:
        parts = string_to_sign.split(b"\n")
        scope = parts[2].split(b"/") if len(parts) == 4 else []
        if (parts[0] != V4_ALGORITHM.encode() or len(scope) != 4
                or scope[3] != b"aws4_request" or scope[2] not in S3_V4_SERVICES):
            raise Unauthorized("Invalid EC2 signature.")
        key = v4_signing_key(secret, scope[0], scope[1], scope[2])
        expected = hmac.new(key, string_to_sign, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(_b(credentials.get("signature", "")), _b(expected)):
        raise Unauthorized("Credential signature mismatch")


def check_timestamp(credentials: Mapping[str, Any]) -> None:
    """401 when the signed request is older than ``AUTH_TTL`` (no timestamp: accepted)."""
    params = credentials.get("params") or {}
    headers = credentials.get("headers") or {}
    stamp = params.get("Timestamp") or headers.get("X-Amz-Date") or params.get("X-Amz-Date")
    if not stamp:
        return
    try:
        when = parse_isotime(str(stamp))
    except ValueError as exc:
        raise Unauthorized(f"Credential timestamp is invalid: {exc}") from exc
    if utcnow() > when + AUTH_TTL:
        raise Unauthorized("Credential is expired")
