"""OS-OAUTH1 consumers: the applications that may ask users for delegated access.

A consumer's secret is made here (32 hex characters, as Keystone), shown once in the create
answer and never again. It signs the consumer's OAuth1 requests (HMAC-SHA1), so the server
must be able to read it back: it is kept Fernet-encrypted under the credential keys (Keystone
keeps it in clear). :func:`reencrypt` moves every stored secret to the current primary
credential key; run it before retiring an old key.

Deleting a consumer deletes its request and access tokens; tokens made with those access
tokens stop validating because validation looks the access token up.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from stackling.common.errors import NotFound
from stackling.identity.models import OAuthAccessToken, OAuthConsumer, OAuthRequestToken
from stackling.identity.service.fernet import KeyRepository
from stackling.identity.service.store import Store


def consumer_not_found() -> NotFound:
    return NotFound("Consumer not found")


def consumer_dict(row: OAuthConsumer) -> dict[str, Any]:
    out: dict[str, Any] = dict(row.extra or {})
    out.update(id=row.id, description=row.description)
    return out


@dataclass(frozen=True, slots=True)
class NewConsumer:
    consumer: dict[str, Any]
    secret: str


class Consumers:
    def __init__(self, store: Store, keys: KeyRepository) -> None:
        self.store = store
        self.keys = keys

    def _encrypt(self, secret: str) -> str:
        return self.keys.fernet().encrypt(secret.encode()).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        return self.keys.fernet().decrypt(encrypted.encode("ascii")).decode()

    async def create(self, description: str | None, extra: dict[str, Any]) -> NewConsumer:
        secret = uuid.uuid4().hex
        row = OAuthConsumer(id=uuid.uuid4().hex, description=description,
                            encrypted_secret=self._encrypt(secret), extra=extra)
        async with self.store.write() as session:
            session.add(row)
        return NewConsumer(consumer_dict(row), secret)

    async def get(self, consumer_id: str) -> dict[str, Any]:
        async with self.store.read() as session:
            row = await session.get(OAuthConsumer, consumer_id)
        if row is None:
            raise consumer_not_found()
        return consumer_dict(row)

    async def secret(self, consumer_id: str) -> str | None:
        """The consumer's secret, or None when there is no such consumer."""
        async with self.store.read() as session:
            row = await session.get(OAuthConsumer, consumer_id)
        return None if row is None else self.decrypt(row.encrypted_secret)

    async def list(self) -> list[dict[str, Any]]:
        async with self.store.read() as session:
            rows = (await session.scalars(select(OAuthConsumer).order_by(OAuthConsumer.id)))
            return [consumer_dict(r) for r in rows.all()]

    async def update(self, consumer_id: str, description: Any, set_description: bool,
                     extra: dict[str, Any]) -> dict[str, Any]:
        async with self.store.write() as session:
            row = await session.get(OAuthConsumer, consumer_id)
            if row is None:
                raise consumer_not_found()
            if set_description:
                row.description = description
            if extra:
                row.extra = {**(row.extra or {}), **extra}
            return consumer_dict(row)

    async def delete(self, consumer_id: str) -> None:
        async with self.store.write() as session:
            row = await session.get(OAuthConsumer, consumer_id)
            if row is None:
                raise consumer_not_found()
            await session.execute(delete(OAuthRequestToken).where(
                OAuthRequestToken.consumer_id == consumer_id))
            await session.execute(delete(OAuthAccessToken).where(
                OAuthAccessToken.consumer_id == consumer_id))
            await session.delete(row)

    async def reencrypt(self) -> int:
        """Re-encrypt every consumer secret under the current primary credential key."""
        fernet = self.keys.fernet()
        count = 0
        async with self.store.write() as session:
            rows: list[OAuthConsumer | OAuthRequestToken | OAuthAccessToken] = [
                *(await session.scalars(select(OAuthConsumer))).all(),
                *(await session.scalars(select(OAuthRequestToken))).all(),
                *(await session.scalars(select(OAuthAccessToken))).all()]
            for row in rows:
                row.encrypted_secret = fernet.rotate(
                    row.encrypted_secret.encode("ascii")).decode("ascii")
                count += 1
        return count
