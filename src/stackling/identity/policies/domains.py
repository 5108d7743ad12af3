"""Domain rules (Keystone's ``keystone/common/policies/domain.py`` defaults).

Keystone's ``token.domain.id`` / ``token.project.domain.id`` are our ``domain_id`` /
``project_domain_id`` credentials.
"""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, SYSTEM_READER

RULES = {
    "identity:get_domain": (
        f"{ADMIN} or {SYSTEM_READER} or domain_id:%(target.domain.id)s or "
        "project_domain_id:%(target.domain.id)s"
    ),
    "identity:list_domains": (
        f"{ADMIN} or {SYSTEM_READER} or (role:reader and domain_id:%(target.domain.id)s)"
    ),
    "identity:create_domain": ADMIN,
    "identity:update_domain": ADMIN,
    "identity:delete_domain": ADMIN,
}
