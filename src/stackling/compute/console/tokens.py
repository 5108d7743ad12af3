"""Console tokens: one-time, expiring, and tamper-proof.

A token is ``<payload>.<mac>``: the payload (base64url JSON: instance, host, console kind,
expiry, a random nonce) signed with HMAC-SHA256 under a per-cloud secret kept in
``<data_dir>/console-secret`` (0600), so the API that issues tokens and the proxy that
checks them need no shared memory or database, only the same data dir (or secret). The
proxy remembers every nonce it accepted until its expiry: a token works once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

KINDS = ("novnc", "serial")


@dataclass(frozen=True)
class Grant:
    instance_uuid: str
    host: str
    kind: str  # novnc | serial
    expires: float
    nonce: str


def load_secret(data_dir: Path) -> bytes:
    """The cloud's console secret (created on first use)."""
    path = data_dir / "console-secret"
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_bytes(32)
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value.hex())
        try:
            os.link(path.with_suffix(".tmp"), path)  # first writer wins
        except FileExistsError:
            pass
        finally:
            path.with_suffix(".tmp").unlink(missing_ok=True)
        return bytes.fromhex(path.read_text().strip())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ConsoleAuth:
    def __init__(self, secret: bytes, ttl: float = 600.0) -> None:
        self.secret = secret
        self.ttl = ttl
        self._used: dict[str, float] = {}  # nonce -> expiry

    def _mac(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()

    def issue(self, instance_uuid: str, host: str, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown console kind {kind!r}")
        payload = _b64(json.dumps({"i": instance_uuid, "h": host, "k": kind,
                                   "e": time.time() + self.ttl,
                                   "n": secrets.token_hex(16)}).encode())
        return f"{payload}.{self._mac(payload)}"

    def check(self, token: str, kind: str) -> Grant | None:
        """The grant, consumed (None: forged, expired, already used or another kind)."""
        payload, _, mac = token.partition(".")
        if not payload or not hmac.compare_digest(self._mac(payload), mac):
            return None
        try:
            data = json.loads(_unb64(payload))
            grant = Grant(str(data["i"]), str(data["h"]), str(data["k"]), float(data["e"]),
                          str(data["n"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        now = time.time()
        self._used = {n: e for n, e in self._used.items() if e > now}
        if grant.kind != kind or grant.expires <= now or grant.nonce in self._used:
            return None
        self._used[grant.nonce] = grant.expires
        return grant
