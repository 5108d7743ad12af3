"""``stackling db upgrade`` and ``stackling identity rotate-keys``."""

from __future__ import annotations

from stackling.common.config import Config
from stackling.db.engine import create_engine
from stackling.db.migrate import upgrade
from stackling.identity.service.fernet import KeyRepository
from stackling.identity.service.identity import Identity
from stackling.image.service.glance import MIGRATIONS as IMAGE_MIGRATIONS
from stackling.image.service.glance import VERSION_TABLE as IMAGE_VERSION_TABLE
from stackling.network.service.core import MIGRATIONS as NETWORK_MIGRATIONS
from stackling.network.service.core import VERSION_TABLE as NETWORK_VERSION_TABLE


async def db_upgrade(config: Config) -> int:
    identity = Identity(config)
    try:
        await identity.start()
    finally:
        await identity.close()
    print("identity: database at the newest schema")
    engine = create_engine(config.database_url("image"), echo=config.database.echo)
    try:
        await upgrade(engine, IMAGE_MIGRATIONS, IMAGE_VERSION_TABLE)
    finally:
        await engine.dispose()
    print("image: database at the newest schema")
    engine = create_engine(config.database_url("network"), echo=config.database.echo)
    try:
        await upgrade(engine, NETWORK_MIGRATIONS, NETWORK_VERSION_TABLE)
    finally:
        await engine.dispose()
    print("network: database at the newest schema")
    return 0


def rotate_keys(config: Config) -> int:
    repo = KeyRepository(config.key_repository(), config.identity.max_active_keys)
    repo.setup()
    primary = repo.rotate()
    print(f"rotated fernet keys in {repo.path}: primary key is now {primary}")
    return 0
