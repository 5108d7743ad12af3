"""Shared rule fragments (Keystone's ``keystone/common/policies/base.py``, restated)."""

from __future__ import annotations

SYSTEM_READER = "(role:reader and system_scope:all)"
SYSTEM_ADMIN = "(role:admin and system_scope:all)"
ADMIN = "rule:admin_required"
ADMIN_OR_SYSTEM_READER = f"{ADMIN} or {SYSTEM_READER}"


def domain_reader(target: str) -> str:
    return f"(role:reader and domain_id:%({target})s)"


def domain_manager(target: str) -> str:
    return f"(role:manager and domain_id:%({target})s)"


RULES = {
    "admin_required": "role:admin",
    "service_role": "role:service",
    "service_or_admin": "rule:admin_required or rule:service_role",
    "owner": "user_id:%(user_id)s",
    "admin_or_owner": "rule:admin_required or rule:owner",
    "token_subject": "user_id:%(target.token.user_id)s",
    "admin_or_token_subject": "rule:admin_required or rule:token_subject",
    "service_admin_or_token_subject": "rule:service_or_admin or rule:token_subject",
}
