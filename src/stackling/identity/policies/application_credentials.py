"""Application credentials and access rules (Keystone's secure-RBAC defaults).

The owner check ``rule:owner`` compares the caller with the ``user_id`` of the request path,
which the API replaces with the credential's real owner before checking get/delete (as
Keystone does, so a guessed id of someone else's credential does not pass). Keystone limits
the access-rule rules to system-scoped admins; admin on any scope is allowed here too.
"""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, SYSTEM_ADMIN, SYSTEM_READER

_READ = f"({ADMIN}) or {SYSTEM_READER} or rule:owner"
_RULE_OWNER = "user_id:%(target.user.id)s"

RULES = {
    "identity:get_application_credential": _READ,
    "identity:list_application_credentials": _READ,
    "identity:create_application_credential": "rule:owner",
    "identity:delete_application_credential": "rule:admin_or_owner",
    "identity:get_access_rule": f"({ADMIN}) or {SYSTEM_READER} or {_RULE_OWNER}",
    "identity:list_access_rules": f"({ADMIN}) or {SYSTEM_READER} or {_RULE_OWNER}",
    "identity:delete_access_rule": f"({ADMIN}) or {SYSTEM_ADMIN} or {_RULE_OWNER}",
}
