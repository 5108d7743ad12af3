"""Version discovery documents, with links built from the URL the client used."""

from __future__ import annotations

from typing import Any


def version_entry(base: str, version_id: str, *, status: str = "stable",
                  updated: str = "2024-01-01T00:00:00Z", media_type: str | None = None,
                  path: str = "", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    href = f"{base.rstrip('/')}/{path.strip('/')}/" if path else f"{base.rstrip('/')}/"
    entry: dict[str, Any] = {
        "id": version_id,
        "status": status,
        "updated": updated,
        "links": [{"rel": "self", "href": href}],
    }
    if media_type:
        entry["media-types"] = [{"base": "application/json", "type": media_type}]
    if extra:
        entry.update(extra)
    return entry
