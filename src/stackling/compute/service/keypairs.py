"""Keypairs: SSH (or x509) public keys a user injects into servers; generated on request."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from stackling.common.blocking import run_blocking
from stackling.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stackling.compute.models import KeyPair
from stackling.compute.service import quotas
from stackling.db.store import Store


@dataclass
class KeyPairRecord:
    id: int
    user_id: str
    name: str
    fingerprint: str
    public_key: str
    type: str
    created_at: datetime
    private_key: str | None = None  # only right after generation


def _record(row: KeyPair, private_key: str | None = None) -> KeyPairRecord:
    return KeyPairRecord(row.id, row.user_id, row.name, row.fingerprint, row.public_key,
                         row.type, row.created_at, private_key)


def _colons(digest: str) -> str:
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def fingerprint(public_key: str, key_type: str) -> str:
    """Nova's fingerprints: MD5 of the SSH key blob, SHA-1 of an x509 certificate's DER."""
    if key_type == "x509":
        try:
            cert = x509.load_pem_x509_certificate(public_key.encode())
        except ValueError as exc:
            raise BadRequest("Keypair data is invalid: failed to generate fingerprint"
                             ) from exc
        der = cert.public_bytes(serialization.Encoding.DER)
        return _colons(hashlib.sha1(der).hexdigest())  # noqa: S324 - Nova's format
    try:
        key = serialization.load_ssh_public_key(public_key.strip().encode())
    except (ValueError, UnicodeError, TypeError) as exc:
        raise BadRequest("Keypair data is invalid: failed to generate fingerprint") from exc
    blob = key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).split()[1]
    return _colons(hashlib.md5(base64.b64decode(blob)).hexdigest())  # noqa: S324


def _generate() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} Generated-by-Stackling"


def _generate_x509() -> tuple[str, str]:
    """A private key and a self-signed certificate for it (Nova's x509 keypairs)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenStack"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "stackling keypair")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    return private, cert.public_bytes(serialization.Encoding.PEM).decode()


async def create(store: Store, user_id: str, name: str, public_key: str | None,
                 key_type: str, quota: int) -> KeyPairRecord:
    """Import ``public_key``, or generate a pair when it is None (the private key is
    returned once and never stored)."""
    private: str | None = None
    if public_key is None:
        private, public_key = await run_blocking(
            _generate_x509 if key_type == "x509" else _generate)
    assert public_key is not None
    fp = fingerprint(public_key, key_type)
    lock_key = f"user:{user_id}"
    await quotas.ensure_lock(store, lock_key)
    async with store.write(conflict=f"Key pair '{name}' already exists.") as session:
        await quotas.lock(session, lock_key)  # concurrent imports count one after the other
        if quota >= 0 and await quotas.user_keypairs(session, user_id) >= quota:
            raise Forbidden("Quota exceeded, too many key pairs.")
        if (await session.execute(select(KeyPair.id).where(
                KeyPair.user_id == user_id, KeyPair.name == name))).first():
            raise Conflict(f"Key pair '{name}' already exists.")
        row = KeyPair(user_id=user_id, name=name, fingerprint=fp, public_key=public_key,
                      type=key_type)
        session.add(row)
        await session.flush()
        return _record(row, private)


def not_found(user_id: str, name: str) -> NotFound:
    return NotFound(f"Keypair {name} not found for user {user_id}")


async def get(store: Store, user_id: str, name: str) -> KeyPairRecord:
    async with store.read() as session:
        row = (await session.execute(select(KeyPair).where(
            KeyPair.user_id == user_id, KeyPair.name == name))).scalar_one_or_none()
        if row is None:
            raise not_found(user_id, name)
        return _record(row)


async def list_keypairs(store: Store, user_id: str, limit: int | None,
                        marker: str | None) -> list[KeyPairRecord]:
    query = select(KeyPair).where(KeyPair.user_id == user_id).order_by(KeyPair.id)
    async with store.read() as session:
        if marker is not None:
            mark = (await session.execute(select(KeyPair.id).where(
                KeyPair.user_id == user_id, KeyPair.name == marker))).scalar_one_or_none()
            if mark is None:
                raise BadRequest(f"marker [{marker}] not found")
            query = query.where(KeyPair.id > mark)
        if limit is not None:
            query = query.limit(limit)
        return [_record(r) for r in (await session.execute(query)).scalars()]


async def delete(store: Store, user_id: str, name: str) -> None:
    async with store.write() as session:
        row = (await session.execute(select(KeyPair).where(
            KeyPair.user_id == user_id, KeyPair.name == name))).scalar_one_or_none()
        if row is None:
            raise not_found(user_id, name)
        await session.delete(row)
