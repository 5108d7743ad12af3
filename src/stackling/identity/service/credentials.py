"""User credentials (``/v3/credentials`` and the OS-EC2 views of them).

Blobs are encrypted at rest with Fernet under the credential key repository (a separate
repository from the token keys, as in Keystone) and decrypted on read. Each row keeps
``key_hash``, the SHA-1 of the primary key that encrypted it, so a rotation can tell which
rows still need re-encrypting. An ``ec2`` credential's blob is JSON with at least ``access``,
and its id is the SHA-256 of the access key, so ``/v3/ec2tokens`` finds it without a scan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import BadRequest, NotFound, StacklingError, Unauthorized
from stackling.common.ids import new_id
from stackling.identity.models import ApplicationCredential, Credential, Project, User
from stackling.identity.service.fernet import KeyRepository
from stackling.identity.service.store import Store

EC2 = "ec2"
CORE_FIELDS = ("id", "user_id", "project_id", "type", "blob")
# blob keys that tie an ec2 credential to a delegation; they may not change on update
_SCOPE_KEYS = ("trust_id", "app_cred_id", "access_token_id", "access_id")


class CredentialEncryptionError(StacklingError):
    def default_message(self) -> str:
        return "An unexpected error prevented the server from accessing encrypted credentials."


def hash_access_key(access: str) -> str:
    return hashlib.sha256(access.encode("utf-8")).hexdigest()


def ec2_blob(blob: Any) -> dict[str, Any]:
    """The parsed blob of an ec2 credential, or 400 as Keystone."""
    try:
        parsed = json.loads(blob) if isinstance(blob, str) else None
    except ValueError as exc:
        raise BadRequest("Invalid blob in credential") from exc
    if not parsed or not isinstance(parsed, dict):
        raise BadRequest(_expecting("blob", "credential"))
    if parsed.get("access") is None:
        raise BadRequest(_expecting("access", "credential"))
    return parsed


def _expecting(attribute: str, target: str) -> str:
    return (f"Expecting to find {attribute} in {target}. The server could not comply with the "
            "request since it is either malformed or otherwise incorrect. The client is "
            "assumed to be in error.")


@dataclass(frozen=True, slots=True)
class Ec2Login:
    """Who an accepted EC2/S3 signature authenticates, and for which project."""

    user_id: str
    project_id: str
    app_cred_id: str | None = None


class Credentials:
    def __init__(self, store: Store, keys: KeyRepository) -> None:
        self.store = store
        self.keys = keys

    # -- encryption ------------------------------------------------------------------------
    def _primary_key_hash(self) -> str:
        numbers = sorted(int(p.name) for p in self.keys.path.iterdir() if p.name.isdigit())
        primary = (self.keys.path / str(numbers[-1])).read_bytes().strip()
        return hashlib.sha1(primary, usedforsecurity=False).hexdigest()

    def encrypt(self, blob: str) -> tuple[str, str]:
        token = self.keys.fernet().encrypt(blob.encode("utf-8")).decode("ascii")
        return token, self._primary_key_hash()

    def decrypt(self, encrypted: str) -> str:
        try:
            return self.keys.fernet().decrypt(encrypted.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError) as exc:
            raise CredentialEncryptionError() from exc

    def to_dict(self, row: Credential) -> dict[str, Any]:
        return {**(row.extra or {}), "id": row.id, "user_id": row.user_id,
                "project_id": row.project_id, "type": row.type,
                "blob": self.decrypt(row.encrypted_blob)}

    async def migrate(self) -> int:
        """Re-encrypt every blob not encrypted under the current primary key (Keystone's
        ``credential_migrate``): run it after a rotation and before the next one, or the
        keys those blobs need may be purged. Returns how many rows changed."""
        current = self._primary_key_hash()
        changed = 0
        async with self.store.write() as session:
            rows = (await session.scalars(select(Credential).where(
                Credential.key_hash != current))).all()
            for row in rows:
                row.encrypted_blob, row.key_hash = self.encrypt(self.decrypt(row.encrypted_blob))
                changed += 1
        return changed

    # -- CRUD ------------------------------------------------------------------------------
    async def create(self, ref: dict[str, Any]) -> dict[str, Any]:
        """``ref``: user_id, type, blob (string), optional project_id/id, anything else is
        kept as extra attributes. An ec2 credential's id is the hash of its access key."""
        if str(ref.get("type", "")).lower() == EC2:
            cred_id = hash_access_key(str(ec2_blob(ref.get("blob"))["access"]))
        else:
            cred_id = ref.get("id") or new_id()
        encrypted, key_hash = self.encrypt(ref["blob"])
        extra = {k: v for k, v in ref.items() if k not in CORE_FIELDS}
        row = Credential(id=cred_id, user_id=ref["user_id"], project_id=ref.get("project_id"),
                         type=ref["type"], encrypted_blob=encrypted, key_hash=key_hash,
                         extra=extra)
        async with self.store.write(
                conflict="Conflict occurred attempting to store credential - Duplicate entry."
        ) as session:
            session.add(row)
        return {**extra, "id": cred_id, "user_id": row.user_id, "project_id": row.project_id,
                "type": row.type, "blob": ref["blob"]}

    async def get(self, cred_id: str) -> dict[str, Any]:
        async with self.store.read() as session:
            row = await session.get(Credential, cred_id)
        if row is None:
            raise NotFound(f"Could not find credential: {cred_id}.")
        return self.to_dict(row)

    async def find(self, cred_id: str) -> dict[str, Any] | None:
        try:
            return await self.get(cred_id)
        except NotFound:
            return None

    async def search(self, user_id: str | None = None, type: str | None = None
                   ) -> list[dict[str, Any]]:
        async with self.store.read() as session:
            query = select(Credential)
            if user_id is not None:
                query = query.where(Credential.user_id == user_id)
            if type is not None:
                query = query.where(Credential.type == type)
            rows = (await session.scalars(query.order_by(Credential.id))).all()
        return [self.to_dict(r) for r in rows]

    async def update(self, cred_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        async with self.store.write() as session:
            row = await session.get(Credential, cred_id)
            if row is None:
                raise NotFound(f"Could not find credential: {cred_id}.")
            current = self.to_dict(row)
            new_type = changes.get("type", row.type)
            if row.type == EC2 and "blob" in changes:
                old_blob = ec2_blob(current["blob"]) if current["blob"] else {}
                new_blob = ec2_blob(changes["blob"])
                for key in _SCOPE_KEYS:
                    if old_blob.get(key) != new_blob.get(key):
                        raise BadRequest(f"{key} can not be updated for credential")
            if new_type == EC2 and not (changes.get("project_id") or row.project_id):
                raise BadRequest(_expecting("project_id", "credential"))
            if "blob" in changes:
                row.encrypted_blob, row.key_hash = self.encrypt(changes["blob"])
            for key in ("user_id", "project_id", "type"):
                if key in changes:
                    setattr(row, key, changes[key])
            extra = {k: v for k, v in changes.items() if k not in CORE_FIELDS}
            if extra:
                row.extra = {**(row.extra or {}), **extra}
            await session.flush()
            return self.to_dict(row)

    async def delete(self, cred_id: str) -> None:
        async with self.store.write() as session:
            row = await session.get(Credential, cred_id)
            if row is None:
                raise NotFound(f"Could not find credential: {cred_id}.")
            await session.delete(row)

    async def delete_for(self, session: AsyncSession, *, user_id: str | None = None,
                         project_id: str | None = None) -> None:
        """Remove a deleted user's or project's credentials, in the caller's transaction."""
        query = delete(Credential)
        if user_id is not None:
            query = query.where(Credential.user_id == user_id)
        if project_id is not None:
            query = query.where(Credential.project_id == project_id)
        if user_id is not None or project_id is not None:
            await session.execute(query)

    async def require_user(self, user_id: str) -> None:
        async with self.store.read() as session:
            if await session.get(User, user_id) is None:
                raise NotFound(f"Could not find user: {user_id}.")

    async def require_project(self, project_id: Any) -> None:
        async with self.store.read() as session:
            found = (await session.get(Project, project_id)
                     if isinstance(project_id, str) else None)
        if found is None or found.is_domain:
            raise NotFound(f"Could not find project: {project_id}.")

    # -- EC2 / S3 signatures ---------------------------------------------------------------
    async def ec2_login(self, credentials: dict[str, Any],
                        check: Callable[[str, dict[str, Any]], None]) -> Ec2Login:
        """Find the ec2 credential named by ``credentials['access']`` and check the request
        signature with ``check(secret, credentials)`` (which raises Unauthorized). The
        caller issues the token; user/project state is checked when it does."""
        access = credentials.get("access")
        if not isinstance(access, str) or not access:
            raise Unauthorized("EC2 Signature not supplied")
        ref = await self.find(hash_access_key(access))
        if ref is None or ref["type"] != EC2:
            raise NotFound("EC2 access key not found.")
        try:
            blob = json.loads(ref["blob"])
        except ValueError as exc:
            raise Unauthorized("Invalid EC2 signature.") from exc
        if not isinstance(blob, dict) or not isinstance(blob.get("secret"), str):
            raise Unauthorized("Invalid EC2 signature.")
        check(blob["secret"], credentials)
        if not ref.get("project_id"):
            raise Unauthorized("User not valid for project.")
        if blob.get("trust_id") or blob.get("access_token_id"):
            raise Unauthorized("Delegated EC2 credentials (trusts, OAuth1) are not "
                               "supported by this cloud.")
        app_cred_id = blob.get("app_cred_id")
        if app_cred_id:
            async with self.store.read() as session:
                app_cred = await session.get(ApplicationCredential, app_cred_id)
            if app_cred is None:
                raise Unauthorized(f"Could not find Application Credential: {app_cred_id}.")
            if app_cred.project_id != ref["project_id"]:
                raise Unauthorized("EC2 credential project does not match the application "
                                   "credential project.")
        return Ec2Login(ref["user_id"], ref["project_id"], app_cred_id or None)
