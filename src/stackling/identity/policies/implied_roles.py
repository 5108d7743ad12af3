"""Implied-role rules (Keystone's ``keystone/common/policies/implied_role.py``)."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, ADMIN_OR_SYSTEM_READER

RULES = {
    "identity:get_implied_role": ADMIN_OR_SYSTEM_READER,
    "identity:list_implied_roles": ADMIN_OR_SYSTEM_READER,
    "identity:check_implied_role": ADMIN_OR_SYSTEM_READER,
    "identity:list_role_inference_rules": ADMIN_OR_SYSTEM_READER,
    "identity:create_implied_role": ADMIN,
    "identity:delete_implied_role": ADMIN,
}
