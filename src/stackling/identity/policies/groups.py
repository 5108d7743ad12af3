"""Group and membership rules (Keystone's ``keystone/common/policies/group.py``)."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, SYSTEM_READER

_GROUP_READER = (
    f"{ADMIN} or {SYSTEM_READER} or (role:reader and domain_id:%(target.group.domain_id)s)"
)
_MEMBER_READER = (
    f"{ADMIN} or {SYSTEM_READER} or (role:reader and domain_id:%(target.group.domain_id)s "
    "and domain_id:%(target.user.domain_id)s)"
)
_GROUP_MANAGER = f"{ADMIN} or (role:manager and domain_id:%(target.group.domain_id)s)"
_MEMBERSHIP_MANAGER = (
    f"{ADMIN} or (role:manager and domain_id:%(target.group.domain_id)s and "
    "domain_id:%(target.user.domain_id)s)"
)

RULES = {
    "identity:get_group": _GROUP_READER,
    "identity:list_groups": _GROUP_READER,
    "identity:list_groups_for_user": (
        f"{ADMIN} or {SYSTEM_READER} or (role:reader and domain_id:%(target.user.domain_id)s)"
        " or user_id:%(user_id)s"
    ),
    "identity:create_group": _GROUP_MANAGER,
    "identity:update_group": _GROUP_MANAGER,
    "identity:delete_group": _GROUP_MANAGER,
    "identity:list_users_in_group": _GROUP_READER,
    "identity:check_user_in_group": _MEMBER_READER,
    "identity:add_user_to_group": _MEMBERSHIP_MANAGER,
    "identity:remove_user_from_group": _MEMBERSHIP_MANAGER,
}
