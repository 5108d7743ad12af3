"""Neutron's default policies for what the code checks by rule name (oslo.policy syntax;
override with ``network.policy_file`` or ``policy_file``).

Resource visibility (own project, shared and external networks, admins see all) is the
service's code, as Neutron's ``admin_or_owner`` defaults are; the rules here are the
attribute- and admin-level ones: who may set provider attributes, share, bind ports, pick
SNAT or floating addresses, see bindings, manage agents and quotas.
"""

from __future__ import annotations

ADMIN = "rule:context_is_admin"
OWNER = "project_id:%(project_id)s"

_ADMIN_ATTRS = {
    "create_network": ("shared", "router:external", "is_default", "provider:network_type",
                       "provider:physical_network", "provider:segmentation_id"),
    "update_network": ("shared", "router:external", "is_default"),
    "get_network": ("provider:network_type", "provider:physical_network",
                    "provider:segmentation_id"),
    "create_port": ("binding:host_id", "binding:profile"),
    "update_port": ("binding:host_id", "binding:profile"),
    "get_port": ("binding:host_id", "binding:vif_type", "binding:vif_details",
                 "binding:profile"),
    "create_router": ("external_gateway_info:enable_snat",
                      "external_gateway_info:external_fixed_ips"),
    "update_router": ("external_gateway_info:enable_snat",
                      "external_gateway_info:external_fixed_ips"),
    "create_floatingip": ("floating_ip_address",),
    "create_subnetpool": ("shared", "is_default"),
    "update_subnetpool": ("is_default",),
}


def default_rules() -> dict[str, str]:
    rules = {
        "context_is_admin": "role:admin",
        "admin_only": ADMIN,
        "admin_or_owner": f"{ADMIN} or {OWNER}",
        "get_agent": ADMIN, "update_agent": ADMIN, "delete_agent": ADMIN,
        "get_network_ip_availability": ADMIN,
        "get_quota": f"{ADMIN} or {OWNER}", "update_quota": ADMIN, "delete_quota": ADMIN,
    }
    for action, attrs in _ADMIN_ATTRS.items():
        for attr in attrs:
            rules[f"{action}:{attr}"] = ADMIN
    return rules


#: attribute -> the rule that shows it (views drop it for callers the rule refuses)
READ_RULES = {attr: f"{action}:{attr}" for action in ("get_network", "get_port")
              for attr in _ADMIN_ATTRS[action]}
