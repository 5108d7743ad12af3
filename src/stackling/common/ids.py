"""Identifiers.

Ids are random (version 4) UUIDs like OpenStack's, but drawn from a per-process pool of
``os.urandom`` bytes refilled 4 KiB at a time and formatted without building a
``uuid.UUID``: a request makes several ids (request id, audit id, resource ids) and one
``getrandom`` system call plus a ``UUID`` object each cost more than the rest of the id.
The bytes are the operating system's CSPRNG output either way. Secrets (passwords, keys,
EC2 secrets) do not come from here: :func:`new_secret` and the callers that need key
material read ``secrets``/``os.urandom`` directly.
"""

from __future__ import annotations

import os
import secrets
import threading

_POOL_SIZE = 4096


class _RandomPool:
    """``os.urandom`` bytes handed out in slices; thread-safe; emptied in a forked child so
    parent and child never hand out the same bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            pos = self._pos
            if pos + n > len(self._buf):
                self._buf, pos = os.urandom(max(_POOL_SIZE, n)), 0
            self._pos = pos + n
            return self._buf[pos:pos + n]

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._buf, self._pos = b"", 0


_pool = _RandomPool()
os.register_at_fork(after_in_child=_pool.reset)


def random_bytes(n: int) -> bytes:
    """``n`` random bytes for identifiers (not for keys or secrets)."""
    return _pool.take(n)


def _uuid4_hex() -> str:
    b = bytearray(_pool.take(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    return b.hex()


def new_id() -> str:
    """A 32-hex-character id, as Keystone uses."""
    return _uuid4_hex()


def new_uuid() -> str:
    """A dashed UUID, as Nova/Neutron/Glance/Cinder use."""
    h = _uuid4_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_request_id() -> str:
    """``req-`` + a dashed UUID (``X-Openstack-Request-Id``)."""
    return f"req-{new_uuid()}"


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
