"""The trust id rides at the end of the token payload, only when set: tokens made before it
(and tokens without a trust) keep the eight-element payload and still decode."""

from __future__ import annotations

from datetime import timedelta

import msgpack
from cryptography.fernet import Fernet, MultiFernet

from stackling.common.timeutils import utcnow
from stackling.identity.service.token_format import TokenData, decode, encode, new_audit_id


def _data(**kw: str | None) -> TokenData:
    now = utcnow()
    return TokenData(user_id="a" * 32, methods=("password",), expires_at=now + timedelta(hours=1),
                     issued_at=now, audit_ids=(new_audit_id(),), project_id="b" * 32, **kw)


def _payload(token: str, fernet: MultiFernet) -> list[object]:
    raw = token.encode() + b"=" * (-len(token) % 4)
    value: list[object] = msgpack.unpackb(fernet.decrypt(raw))
    return value


def test_trust_id_round_trips_and_is_appended() -> None:
    fernet = MultiFernet([Fernet(Fernet.generate_key())])
    token = encode(_data(trust_id="c" * 32), fernet)
    assert decode(token, fernet).trust_id == "c" * 32
    payload = _payload(token, fernet)
    assert len(payload) == 9 and payload[8] == bytes.fromhex("c" * 32)


def test_tokens_without_trust_keep_the_old_payload() -> None:
    fernet = MultiFernet([Fernet(Fernet.generate_key())])
    token = encode(_data(), fernet)
    assert len(_payload(token, fernet)) == 8
    data = decode(token, fernet)
    assert data.trust_id is None and data.project_id == "b" * 32


def test_oauth1_access_token_id_follows_the_trust_slot() -> None:
    fernet = MultiFernet([Fernet(Fernet.generate_key())])
    token = encode(_data(access_token_id="d" * 32), fernet)
    payload = _payload(token, fernet)
    assert len(payload) == 10 and payload[8] is None
    data = decode(token, fernet)
    assert data.access_token_id == "d" * 32 and data.trust_id is None
