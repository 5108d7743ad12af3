"""Bus URL helpers. A bus URL may carry a password: only ever log :func:`redact_url`."""

from __future__ import annotations

from urllib.parse import urlsplit


def url_scheme(url: str) -> str:
    return urlsplit(url).scheme.lower()


def redact_url(url: str) -> str:
    """``amqp://user:secret@host/vh`` -> ``amqp://user:***@host/vh`` (query dropped too,
    it may hold TLS key paths or tokens)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    return f"{parts.scheme}://{netloc}{parts.path}"
