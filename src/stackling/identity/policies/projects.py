"""Project and project-tag rules (Keystone's ``keystone/common/policies/project.py``)."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, SYSTEM_READER

_DOMAIN_READER = ("(role:reader and domain_id:%(target.project.domain_id)s and "
                  "not None:%(target.project.domain_id)s)")
_READER_OR_PROJECT_USER = (
    f"{ADMIN} or {SYSTEM_READER} or {_DOMAIN_READER} or project_id:%(target.project.id)s"
)
_ADMIN_OR_DOMAIN_MANAGER = (
    f"{ADMIN} or (role:manager and domain_id:%(target.project.domain_id)s and "
    "not None:%(target.project.domain_id)s)"
)

RULES = {
    "identity:get_project": _READER_OR_PROJECT_USER,
    "identity:list_projects": (
        f"{ADMIN} or {SYSTEM_READER} or (role:reader and domain_id:%(target.domain_id)s)"
    ),
    "identity:list_user_projects": (
        f"{ADMIN} or {SYSTEM_READER} or (role:reader and domain_id:%(target.user.domain_id)s)"
        " or user_id:%(target.user.id)s"
    ),
    "identity:create_project": _ADMIN_OR_DOMAIN_MANAGER,
    "identity:update_project": _ADMIN_OR_DOMAIN_MANAGER,
    "identity:delete_project": _ADMIN_OR_DOMAIN_MANAGER,
    "identity:list_project_tags": _READER_OR_PROJECT_USER,
    "identity:get_project_tag": _READER_OR_PROJECT_USER,
    "identity:update_project_tags": _ADMIN_OR_DOMAIN_MANAGER,
    "identity:create_project_tag": _ADMIN_OR_DOMAIN_MANAGER,
    "identity:delete_project_tags": _ADMIN_OR_DOMAIN_MANAGER,
    "identity:delete_project_tag": _ADMIN_OR_DOMAIN_MANAGER,
}
