"""``GET /v3/OS-REVOKE/events``: services and admins only (Keystone's default)."""

from __future__ import annotations

RULES = {
    "identity:list_revoke_events": "rule:service_or_admin",
}
