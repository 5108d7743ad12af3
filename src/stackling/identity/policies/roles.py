"""Role rules (Keystone's ``keystone/common/policies/role.py`` secure-RBAC defaults)."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, ADMIN_OR_SYSTEM_READER

# A domain manager may see the roles it is allowed to hand out (manager, member, reader).
_ADMIN_READER_OR_MANAGER_ROLE = (
    f"({ADMIN_OR_SYSTEM_READER}) or (role:manager and rule:domain_managed_target_role)"
)
_ADMIN_READER_OR_DOMAIN_MANAGER = (
    f"({ADMIN_OR_SYSTEM_READER}) or (role:manager and not domain_id:None)"
)

RULES = {
    "identity:get_role": _ADMIN_READER_OR_MANAGER_ROLE,
    "identity:list_roles": _ADMIN_READER_OR_DOMAIN_MANAGER,
    "identity:create_role": ADMIN,
    "identity:update_role": ADMIN,
    "identity:delete_role": ADMIN,
    "identity:get_domain_role": ADMIN_OR_SYSTEM_READER,
    "identity:list_domain_roles": ADMIN_OR_SYSTEM_READER,
    "identity:create_domain_role": ADMIN,
    "identity:update_domain_role": ADMIN,
    "identity:delete_domain_role": ADMIN,
}
