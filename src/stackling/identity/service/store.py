"""Identity's store is the shared one (:mod:`stackling.db.store`)."""

from stackling.db.store import Store

__all__ = ["Store"]
