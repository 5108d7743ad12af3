"""Grant rules (Keystone's ``keystone/common/policies/grant.py``): role grants on projects,
domains (also OS-INHERIT) and the system.

Domain readers may look at, and domain admins/managers may change, grants whose actor and
target both live in their domain; managers only for the roles manager, member and reader.
"""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, ADMIN_OR_SYSTEM_READER, SYSTEM_READER
from stackling.web.policy import DOMAIN_MANAGER_ALLOWED_ROLES

_USER = "domain_id:%(target.user.domain_id)s"
_GROUP = "domain_id:%(target.group.domain_id)s"
_PROJECT = "domain_id:%(target.project.domain_id)s"
_DOMAIN = "domain_id:%(target.domain.id)s"
_ROLE = "domain_id:%(target.role.domain_id)s or None:%(target.role.domain_id)s"


def _in_domain(role: str) -> str:
    return " or ".join(f"(role:{role} and {actor} and {target})"
                       for actor in (_USER, _GROUP) for target in (_PROJECT, _DOMAIN))


_READER = f"({SYSTEM_READER}) or ({_in_domain('reader')}) and ({_ROLE})"
_READER_LIST = f"({SYSTEM_READER}) or {_in_domain('reader')}"
_CHANGE = (f"({ADMIN}) or ({_in_domain('admin')}) and ({_ROLE}) or "
           f"({_in_domain('manager')}) and rule:domain_managed_target_role")

RULES = {
    "domain_managed_target_role": DOMAIN_MANAGER_ALLOWED_ROLES,
    "identity:check_grant": f"({ADMIN}) or ({_READER})",
    "identity:list_grants": f"({ADMIN}) or ({_READER_LIST})",
    "identity:create_grant": _CHANGE,
    "identity:revoke_grant": _CHANGE,
    "identity:list_system_grants_for_user": ADMIN_OR_SYSTEM_READER,
    "identity:check_system_grant_for_user": ADMIN_OR_SYSTEM_READER,
    "identity:create_system_grant_for_user": ADMIN,
    "identity:revoke_system_grant_for_user": ADMIN,
    "identity:list_system_grants_for_group": ADMIN_OR_SYSTEM_READER,
    "identity:check_system_grant_for_group": ADMIN_OR_SYSTEM_READER,
    "identity:create_system_grant_for_group": ADMIN,
    "identity:revoke_system_grant_for_group": ADMIN,
}
