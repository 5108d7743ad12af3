"""User rules (Keystone's ``keystone/common/policies/user.py`` defaults)."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, SYSTEM_READER

_ADMIN_OR_DOMAIN_MANAGER = f"{ADMIN} or (role:manager and domain_id:%(target.user.domain_id)s)"

RULES = {
    "identity:get_user": (
        f"{ADMIN} or {SYSTEM_READER} or (role:reader and domain_id:%(target.user.domain_id)s)"
        " or user_id:%(target.user.id)s"
    ),
    "identity:list_users": (
        f"{ADMIN} or {SYSTEM_READER} or (role:reader and domain_id:%(target.domain_id)s)"
    ),
    "identity:create_user": _ADMIN_OR_DOMAIN_MANAGER,
    "identity:update_user": _ADMIN_OR_DOMAIN_MANAGER,
    "identity:delete_user": _ADMIN_OR_DOMAIN_MANAGER,
}
