"""Role-assignment listing rules (Keystone's ``keystone/common/policies/role_assignment.py``).

There is no "my own assignments" rule: a project member gets 403, as in Keystone.
"""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, SYSTEM_READER, domain_reader

_ADMIN_OR_READER = f"({ADMIN}) or {SYSTEM_READER} or {domain_reader('target.domain_id')}"

RULES = {
    "identity:list_role_assignments": _ADMIN_OR_READER,
    "identity:list_role_assignments_for_tree": _ADMIN_OR_READER,
}
