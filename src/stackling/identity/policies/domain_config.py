"""Domain-specific configuration: admin writes, admin or system reader reads; the default
domain's password-regex settings are readable by anyone authenticated."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, ADMIN_OR_SYSTEM_READER

RULES = {
    "identity:create_domain_config": ADMIN,
    "identity:get_domain_config": ADMIN_OR_SYSTEM_READER,
    "identity:get_security_compliance_domain_config": "",
    "identity:update_domain_config": ADMIN,
    "identity:delete_domain_config": ADMIN,
    "identity:get_domain_config_default": ADMIN_OR_SYSTEM_READER,
}
