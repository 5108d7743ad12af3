"""Model base helpers. Each service declares its own ``Base`` (its own MetaData), so its
tables and migrations stay its own."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import DateTime, MetaData, Table, TypeDecorator
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from stackling.common.timeutils import as_aware

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Any]) -> Table:
    """A declarative model's Core table (prebuilt statements on hot paths use its columns
    directly, without the ORM's per-statement work)."""
    return cast(Table, model.__table__)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware UTC, whatever the backend."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # MySQL/MariaDB DATETIME drops fractions unless asked: revocation compares
        # sub-second issue times, so keep microseconds everywhere.
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return as_aware(value).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_aware(value)
