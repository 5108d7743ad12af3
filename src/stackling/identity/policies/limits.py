"""Unified limits. Reading registered limits, the model and the limit list is open to anyone
authenticated (the list itself is narrowed to the caller's scope); one limit is readable by
admins, system readers, and users scoped to its project or domain."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, SYSTEM_READER

_LIMIT_READER = (
    f"{ADMIN} or {SYSTEM_READER} or "
    "(domain_id:%(target.limit.domain.id)s or "
    "domain_id:%(target.limit.project.domain_id)s) or "
    "(project_id:%(target.limit.project_id)s and not None:%(target.limit.project_id)s)"
)

RULES = {
    "identity:get_registered_limit": "",
    "identity:list_registered_limits": "",
    "identity:create_registered_limits": ADMIN,
    "identity:update_registered_limit": ADMIN,
    "identity:delete_registered_limit": ADMIN,
    "identity:get_limit_model": "",
    "identity:get_limit": _LIMIT_READER,
    "identity:list_limits": "",
    "identity:create_limits": ADMIN,
    "identity:update_limit": ADMIN,
    "identity:delete_limit": ADMIN,
}
