"""Password (and application-credential secret) hashing with bcrypt.

bcrypt reads at most 72 bytes; longer secrets are first reduced with SHA-256 (base64, 44
bytes) so every byte counts, as passlib's bcrypt_sha256 does. Hashing and verifying run in
worker threads, one per core (bcrypt drops the GIL), so the event loop stays free and every
core works.
"""

from __future__ import annotations

import base64
import hashlib

import bcrypt

from stackling.common.blocking import run_cpu_bound

_BCRYPT_MAX = 72


def _prepare(secret: str) -> bytes:
    raw = secret.encode("utf-8")
    if len(raw) > _BCRYPT_MAX:
        raw = base64.b64encode(hashlib.sha256(raw).digest())
    return raw


class PasswordHasher:
    def __init__(self, rounds: int = 12) -> None:
        self.rounds = rounds

    def hash_sync(self, secret: str) -> str:
        return bcrypt.hashpw(_prepare(secret), bcrypt.gensalt(self.rounds)).decode("ascii")

    async def hash(self, secret: str) -> str:
        return await run_cpu_bound(self.hash_sync, secret)

    async def verify(self, secret: str, hashed: str | None) -> bool:
        """Constant-time check (bcrypt.checkpw). A missing hash still costs one bcrypt round
        so that "no such user" and "wrong password" take the same time."""
        if not hashed:
            await run_cpu_bound(self.hash_sync, secret)
            return False
        try:
            return await run_cpu_bound(bcrypt.checkpw, _prepare(secret), hashed.encode("ascii"))
        except ValueError:
            return False
