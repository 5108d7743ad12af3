"""Image stores behind one small interface (see :mod:`.base`), chosen from an explicit table.

The object-store backend (Swift) plugs in here when the object store lands: a class with the
:class:`~stackling.image.stores.base.Store` interface and a line in :data:`STORES`.
"""

from __future__ import annotations

from pathlib import Path

from stackling.image.stores.base import (
    Store,
    StoreError,
    StoreFull,
    StoreNotFound,
    StoreWriter,
)
from stackling.image.stores.file import FileStore
from stackling.image.stores.memory import MemoryStore

STORES: dict[str, type[Store]] = {"file": FileStore, "memory": MemoryStore}


def create_store(kind: str, name: str, root: Path) -> Store:
    """A store of ``kind`` named ``name``; file stores keep their data under ``root``."""
    if kind == "file":
        return FileStore(name, root)
    if kind == "memory":
        return MemoryStore(name)
    raise ValueError(f"unknown image store {kind!r} (known: {', '.join(STORES)})")


__all__ = ["STORES", "FileStore", "MemoryStore", "Store", "StoreError", "StoreFull",
           "StoreNotFound", "StoreWriter", "create_store"]
