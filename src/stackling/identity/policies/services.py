"""Catalog services: admin or system reader reads, admin writes."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, ADMIN_OR_SYSTEM_READER

RULES = {
    "identity:get_service": ADMIN_OR_SYSTEM_READER,
    "identity:list_services": ADMIN_OR_SYSTEM_READER,
    "identity:create_service": ADMIN,
    "identity:update_service": ADMIN,
    "identity:delete_service": ADMIN,
}
