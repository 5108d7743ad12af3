"""OAuth 1.0a request signatures (RFC 5849), server side.

What Keystone's oauthlib endpoints check, restated: the ``Authorization: OAuth ...`` header
carries ``oauth_consumer_key``, ``oauth_signature_method``, ``oauth_signature``,
``oauth_timestamp`` (within ten minutes of now) and ``oauth_nonce``; ``oauth_version`` is
``1.0`` if given. Signatures are HMAC-SHA1 (what keystoneauth and keystoneclient send),
HMAC-SHA256/512 or PLAINTEXT, over the base string of section 3.4.1: the method, the URL the
client used (no query) and the sorted, percent-encoded parameters of the header and the query.
Nonces are not remembered (Keystone does not either).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

TIMESTAMP_WINDOW = 600
_HASHES = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256,
           "HMAC-SHA512": hashlib.sha512}
METHODS = (*_HASHES, "PLAINTEXT")


class OAuthRequestError(Exception):
    """The request is malformed (oauthlib's ``invalid_request``): a 400."""


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What of an HTTP request the signature covers."""

    method: str
    url: str  # the URL the client used, without its query
    authorization: str | None
    query: list[tuple[str, str]] = field(default_factory=list)

    @property
    def oauth(self) -> dict[str, str]:
        """The ``oauth_*`` parameters of the Authorization header (empty when absent)."""
        return parse_authorization(self.authorization)


def encode(value: str) -> str:
    """RFC 5849 section 3.6: only unreserved characters stay as they are."""
    return quote(value, safe="-._~")


def parse_authorization(header: str | None) -> dict[str, str]:
    if not header or not header[:6].lower() == "oauth ":
        return {}
    params: dict[str, str] = {}
    for item in header[6:].split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        params[unquote(name.strip())] = unquote(value)
    return params


def _base_uri(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", "", ""))


def base_string(request: SignedRequest, oauth: dict[str, str]) -> str:
    params = [(k, v) for k, v in oauth.items() if k not in ("oauth_signature", "realm")]
    params += request.query
    normalized = "&".join(f"{n}={v}" for n, v in sorted(
        (encode(n), encode(v)) for n, v in params))
    return "&".join((request.method.upper(), encode(_base_uri(request.url)),
                     encode(normalized)))


def signature(request: SignedRequest, oauth: dict[str, str], client_secret: str,
              token_secret: str = "") -> str:
    key = f"{encode(client_secret)}&{encode(token_secret)}"
    method = oauth.get("oauth_signature_method", "")
    if method == "PLAINTEXT":
        return key
    digest = hmac.new(key.encode(), base_string(request, oauth).encode(), _HASHES[method])
    return base64.b64encode(digest.digest()).decode("ascii")


def check_parameters(oauth: dict[str, str], *required: str) -> None:
    """Raise :class:`OAuthRequestError` when the request is malformed."""
    for name in ("oauth_consumer_key", "oauth_signature_method", "oauth_signature",
                 "oauth_timestamp", "oauth_nonce", *required):
        if not oauth.get(name):
            raise OAuthRequestError(f"Missing mandatory OAuth parameters: {name}.")
    if oauth.get("oauth_version", "1.0") != "1.0":
        raise OAuthRequestError("Invalid OAuth version.")
    if oauth["oauth_signature_method"] not in METHODS:
        raise OAuthRequestError("Invalid signature, "
                                f"{oauth['oauth_signature_method']} not in {list(METHODS)}.")
    stamp = oauth["oauth_timestamp"]
    if not stamp.isdigit() or len(stamp) != 10:
        raise OAuthRequestError("Invalid timestamp size")
    if abs(time.time() - int(stamp)) > TIMESTAMP_WINDOW:
        raise OAuthRequestError("Timestamp given is invalid, differ from allowed by over "
                                f"{TIMESTAMP_WINDOW} seconds.")


def verify(request: SignedRequest, oauth: dict[str, str], client_secret: str,
           token_secret: str = "") -> bool:
    """True when the request carries the signature the two secrets make."""
    expected = signature(request, oauth, client_secret, token_secret)
    return hmac.compare_digest(expected.encode(), oauth.get("oauth_signature", "").encode())
