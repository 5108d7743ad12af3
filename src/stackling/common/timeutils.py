"""Time helpers: everything is timezone-aware UTC inside, ISO 8601 on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def isotime(value: datetime, subsecond: bool = True) -> str:
    """Keystone's wire format: ``2026-11-22T01:02:03.000000Z``."""
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat (C) rather than strftime: this runs twice for every token issued
    return value.replace(tzinfo=None).isoformat(
        timespec="microseconds" if subsecond else "seconds") + "Z"


def parse_isotime(text: str) -> datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC."""
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    value = datetime.fromisoformat(cleaned)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def as_aware(value: datetime) -> datetime:
    """Databases like SQLite give naive datetimes back: they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
