"""Identity's default policy rules, Keystone's secure-RBAC defaults in oslo.policy syntax.

One module per resource; this table merges them. An operator overrides any rule with a
YAML file (``identity.policy_file`` or ``policy_file`` in the config).
"""

from __future__ import annotations

from stackling.identity.policies import (
    application_credentials,
    assignments,
    base,
    credentials,
    domain_config,
    domains,
    ec2,
    endpoint_filter,
    endpoints,
    grants,
    groups,
    implied_roles,
    limits,
    oauth1,
    policy,
    projects,
    regions,
    revoke_events,
    roles,
    services,
    tokens,
    trusts,
    users,
)

MODULES = [base, tokens, application_credentials, credentials, ec2, revoke_events]
MODULES += [roles, implied_roles, grants, assignments]
MODULES += [regions, services, endpoints, policy, limits, endpoint_filter, domain_config]
MODULES += [domains, projects, users, groups]
MODULES += [trusts, oauth1]


def default_rules() -> dict[str, str]:
    rules: dict[str, str] = {}
    for module in MODULES:
        rules.update(module.RULES)
    return rules
