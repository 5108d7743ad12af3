"""The stored ``/v3/policies`` blobs: admin or system reader reads, admin writes."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, ADMIN_OR_SYSTEM_READER

RULES = {
    "identity:get_policy": ADMIN_OR_SYSTEM_READER,
    "identity:list_policies": ADMIN_OR_SYSTEM_READER,
    "identity:create_policy": ADMIN,
    "identity:update_policy": ADMIN,
    "identity:delete_policy": ADMIN,
}
