"""What a token carries, and its Fernet (msgpack) encoding.

A token is authenticated encryption of a small msgpack list; nothing about it is stored.
Everything else a token response shows (names, roles, catalog) is looked up at validation,
so disabling a user or removing a role takes effect on existing tokens at once.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgpack
from cryptography.fernet import InvalidToken, MultiFernet

from stackling.common.errors import NotFound
from stackling.common.ids import random_bytes

FORMAT_VERSION = 1
METHODS = ("password", "token", "application_credential", "totp", "external", "mapped",
           "ec2credential", "oauth1")  # append only: the bit positions are in issued tokens


@dataclass(frozen=True, slots=True)
class TokenData:
    user_id: str
    methods: tuple[str, ...]
    expires_at: datetime
    issued_at: datetime
    audit_ids: tuple[str, ...]
    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None
    app_cred_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    trust_id: str | None = None  # OS-TRUST: the trust the token was made with
    access_token_id: str | None = None  # OS-OAUTH1: the access token it was made with

    @property
    def scope_key(self) -> tuple[str, str | None]:
        if self.project_id:
            return ("project", self.project_id)
        if self.domain_id:
            return ("domain", self.domain_id)
        if self.system:
            return ("system", self.system)
        return ("unscoped", None)


def new_audit_id() -> str:
    """16 random bytes, URL-safe base64 without padding (22 characters), as Keystone's."""
    return base64.urlsafe_b64encode(random_bytes(16)).decode("ascii")[:22]


def _pack_id(value: str | None) -> bytes | str | None:
    """Keystone-style ids are 32 hex chars: store them as 16 bytes to keep tokens short."""
    if value is not None and len(value) == 32:
        try:
            return uuid.UUID(hex=value).bytes
        except ValueError:
            pass
    return value


def _unpack_id(value: bytes | str | None) -> str | None:
    if isinstance(value, bytes):
        return uuid.UUID(bytes=value).hex
    return value


def _methods_mask(methods: tuple[str, ...]) -> int:
    mask = 0
    for name in methods:
        mask |= 1 << METHODS.index(name)
    return mask


def _methods_from_mask(mask: int) -> tuple[str, ...]:
    return tuple(name for i, name in enumerate(METHODS) if mask & (1 << i))


def encode(data: TokenData, fernet: MultiFernet) -> str:
    scope: list[object]
    if data.project_id:
        scope = [1, _pack_id(data.project_id)]
    elif data.domain_id:
        scope = [2, _pack_id(data.domain_id)]
    elif data.system:
        scope = [3, data.system]
    else:
        scope = [0, None]
    payload = [
        FORMAT_VERSION,
        _pack_id(data.user_id),
        _methods_mask(data.methods),
        scope,
        data.expires_at.timestamp(),
        list(data.audit_ids),
        _pack_id(data.app_cred_id),
        data.issued_at.timestamp(),  # sub-second: revocation compares precisely
    ]
    # appended, and only when set: older tokens (and readers) unchanged
    if data.trust_id or data.access_token_id:
        payload.append(_pack_id(data.trust_id))
    if data.access_token_id:
        payload.append(_pack_id(data.access_token_id))
    token = fernet.encrypt_at_time(msgpack.packb(payload), int(data.issued_at.timestamp()))
    return token.rstrip(b"=").decode("ascii")


def decode(token: str, fernet: MultiFernet) -> TokenData:
    """Decrypt and parse. Any token we did not make, or tampered with, is NotFound."""
    try:
        raw = token.encode("ascii")
        raw += b"=" * (-len(raw) % 4)
        plain = fernet.decrypt(raw)
        payload = msgpack.unpackb(plain)
        version, user, mask, scope, expires, audit_ids, app_cred, issued = payload[:8]
        trust = payload[8] if len(payload) > 8 else None
        access_token = payload[9] if len(payload) > 9 else None
        if version != FORMAT_VERSION:
            raise ValueError("unknown token format")
        kind, scope_id = scope
        return TokenData(
            user_id=_unpack_id(user) or "",
            methods=_methods_from_mask(mask),
            expires_at=datetime.fromtimestamp(expires, UTC),
            issued_at=datetime.fromtimestamp(issued, UTC),
            audit_ids=tuple(audit_ids),
            project_id=_unpack_id(scope_id) if kind == 1 else None,
            domain_id=_unpack_id(scope_id) if kind == 2 else None,
            system=scope_id if kind == 3 else None,
            app_cred_id=_unpack_id(app_cred),
            trust_id=_unpack_id(trust),
            access_token_id=_unpack_id(access_token),
        )
    except (InvalidToken, ValueError, TypeError, UnicodeError, msgpack.ExtraData,
            msgpack.FormatError, msgpack.StackError) as exc:
        raise NotFound("Could not recognize Fernet token") from exc
