"""Compute's default policy rules: Nova's secure-RBAC defaults in oslo.policy syntax.

Targets carry ``project_id`` (and ``user_id``) of the resource; an operator overrides any
rule with a YAML file (``compute.policy_file`` or ``policy_file`` in the config).
"""

from __future__ import annotations

ADMIN = "rule:context_is_admin"
MEMBER = "rule:project_member_or_admin"
READER = "rule:project_reader_or_admin"
ANY = ""

BASE = {
    "context_is_admin": "role:admin",
    "admin_api": "role:admin",
    "project_member_api": "role:member and project_id:%(project_id)s",
    "project_reader_api": "role:reader and project_id:%(project_id)s",
    "project_member_or_admin": "rule:project_member_api or rule:context_is_admin",
    "project_reader_or_admin": "rule:project_reader_api or rule:context_is_admin",
    "owner_or_admin": "rule:context_is_admin or user_id:%(user_id)s",
}

SERVERS = {f"os_compute_api:servers:{name}": rule for name, rule in {
    "index": READER, "detail": READER, "show": READER,
    "index:get_all_tenants": ADMIN, "detail:get_all_tenants": ADMIN,
    "allow_all_filters": ADMIN,
    "show:host_status": ADMIN, "show:host_status:unknown-only": ADMIN,
    "show:flavor-extra-specs": READER,
    "create": MEMBER, "create:forced_host": ADMIN, "create:requested_destination": ADMIN,
    "create:attach_volume": MEMBER, "create:attach_network": MEMBER,
    "create:trusted_certs": MEMBER, "create:zero_disk_flavor": ADMIN,
    "update": MEMBER, "delete": MEMBER,
    "start": MEMBER, "stop": MEMBER, "reboot": MEMBER,
    "resize": MEMBER, "confirm_resize": MEMBER, "revert_resize": MEMBER,
    "rebuild": MEMBER, "rebuild:trusted_certs": MEMBER, "create_image": MEMBER,
}.items()}

OTHERS = {
    "os_compute_api:os-extended-server-attributes": ADMIN,
    "os_compute_api:os-pause-server:pause": MEMBER,
    "os_compute_api:os-pause-server:unpause": MEMBER,
    "os_compute_api:os-suspend-server:suspend": MEMBER,
    "os_compute_api:os-suspend-server:resume": MEMBER,
    "os_compute_api:os-lock-server:lock": MEMBER,
    "os_compute_api:os-lock-server:unlock": MEMBER,
    "os_compute_api:os-lock-server:unlock:unlock_override": ADMIN,
    "os_compute_api:os-console-output": MEMBER,
    "os_compute_api:os-volumes:list": READER,
    "os_compute_api:os-volumes:detail": READER,
    "os_compute_api:os-volumes:show": READER,
    "os_compute_api:os-volumes:create": MEMBER,
    "os_compute_api:os-volumes:delete": MEMBER,
    "os_compute_api:os-volumes:snapshots:list": READER,
    "os_compute_api:os-volumes:snapshots:detail": READER,
    "os_compute_api:os-volumes:snapshots:show": READER,
    "os_compute_api:os-volumes:snapshots:create": MEMBER,
    "os_compute_api:os-volumes:snapshots:delete": MEMBER,
    "os_compute_api:os-volumes-attachments:index": READER,
    "os_compute_api:os-volumes-attachments:show": READER,
    "os_compute_api:os-volumes-attachments:create": MEMBER,
    "os_compute_api:os-volumes-attachments:update": MEMBER,  # Nova: swap stays admin
    "os_compute_api:os-volumes-attachments:swap": ADMIN,
    "os_compute_api:os-volumes-attachments:delete": MEMBER,
    "os_compute_api:os-remote-consoles": MEMBER,
    "os_compute_api:os-instance-actions:list": READER,
    "os_compute_api:os-instance-actions:show": READER,
    "os_compute_api:os-instance-actions:events": ADMIN,
    "os_compute_api:os-instance-actions:events:details": ADMIN,
    "os_compute_api:os-server-password:show": READER,
    "os_compute_api:os-server-password:clear": MEMBER,
    "os_compute_api:server-metadata:index": READER,
    "os_compute_api:server-metadata:show": READER,
    "os_compute_api:server-metadata:create": MEMBER,
    "os_compute_api:server-metadata:update": MEMBER,
    "os_compute_api:server-metadata:update_all": MEMBER,
    "os_compute_api:server-metadata:delete": MEMBER,
    "os_compute_api:os-flavor-manage:create": ADMIN,
    "os_compute_api:os-flavor-manage:update": ADMIN,
    "os_compute_api:os-flavor-manage:delete": ADMIN,
    "os_compute_api:os-flavor-extra-specs:index": READER,
    "os_compute_api:os-flavor-extra-specs:show": READER,
    "os_compute_api:os-flavor-extra-specs:create": ADMIN,
    "os_compute_api:os-flavor-extra-specs:update": ADMIN,
    "os_compute_api:os-flavor-extra-specs:delete": ADMIN,
    "os_compute_api:os-flavor-access": ADMIN,
    "os_compute_api:os-flavor-access:add_tenant_access": ADMIN,
    "os_compute_api:os-flavor-access:remove_tenant_access": ADMIN,
    "os_compute_api:os-keypairs:index": "rule:owner_or_admin",
    "os_compute_api:os-keypairs:show": "rule:owner_or_admin",
    "os_compute_api:os-keypairs:create": "rule:owner_or_admin",
    "os_compute_api:os-keypairs:delete": "rule:owner_or_admin",
    "os_compute_api:os-services:list": ADMIN,
    "os_compute_api:os-services:update": ADMIN,
    "os_compute_api:os-services:delete": ADMIN,
    "os_compute_api:os-hypervisors:list": ADMIN,
    "os_compute_api:os-hypervisors:list-detail": ADMIN,
    "os_compute_api:os-hypervisors:show": ADMIN,
    "os_compute_api:os-hypervisors:statistics": ADMIN,
    "os_compute_api:os-hypervisors:uptime": ADMIN,
    "os_compute_api:os-hypervisors:search": ADMIN,
    "os_compute_api:os-hypervisors:servers": ADMIN,
    "os_compute_api:os-availability-zone:list": READER,
    "os_compute_api:os-availability-zone:detail": ADMIN,
    "os_compute_api:os-server-groups:create": MEMBER,
    "os_compute_api:os-server-groups:index": READER,
    "os_compute_api:os-server-groups:index:all_projects": ADMIN,
    "os_compute_api:os-server-groups:show": READER,
    "os_compute_api:os-server-groups:delete": MEMBER,
    **{f"os_compute_api:os-aggregates:{name}": ADMIN for name in (
        "index", "create", "show", "update", "delete", "add_host", "remove_host",
        "set_metadata")},
    "os_compute_api:os-admin-actions:reset_state": ADMIN,
    "os_compute_api:os-admin-actions:inject_network_info": ADMIN,
    "os_compute_api:os-security-groups:add": MEMBER,
    "os_compute_api:os-security-groups:remove": MEMBER,
    # the deprecated network proxies (the network service enforces its own policy too)
    **{f"os_compute_api:os-security-groups:{name}": READER for name in (
        "get", "show", "list")},
    **{f"os_compute_api:os-security-groups:{name}": MEMBER for name in (
        "create", "update", "delete", "rule:create", "rule:delete")},
    **{f"os_compute_api:os-floating-ips:{name}": READER for name in ("list", "show")},
    **{f"os_compute_api:os-floating-ips:{name}": MEMBER for name in (
        "create", "delete", "add", "remove")},
    "os_compute_api:os-floating-ip-pools:list": ANY,
    "os_compute_api:os-networks:list": READER,
    "os_compute_api:os-networks:view": READER,
    "os_compute_api:os-tenant-networks:list": READER,
    "os_compute_api:os-tenant-networks:view": READER,
    "os_compute_api:os-deferred-delete:restore": MEMBER,
    "os_compute_api:os-deferred-delete:force": MEMBER,
    "os_compute_api:os-server-external-events:create": f"{ADMIN} or role:service",
    "os_compute_api:os-assisted-volume-snapshots:create": f"{ADMIN} or role:service",
    "os_compute_api:os-assisted-volume-snapshots:delete": f"{ADMIN} or role:service",
    "os_compute_api:os-server-diagnostics": ADMIN,
    "os_compute_api:ips:index": READER,
    "os_compute_api:ips:show": READER,
    "os_compute_api:os-attach-interfaces:list": READER,
    "os_compute_api:os-attach-interfaces:show": READER,
    "os_compute_api:os-attach-interfaces:create": MEMBER,
    "os_compute_api:os-attach-interfaces:delete": MEMBER,
    "os_compute_api:os-simple-tenant-usage:list": ADMIN,
    "os_compute_api:os-simple-tenant-usage:show": READER,
    "os_compute_api:os-instance-usage-audit-log:list": ADMIN,
    "os_compute_api:os-instance-usage-audit-log:show": ADMIN,
    "os_compute_api:os-migrations:index": ADMIN,
    "os_compute_api:servers:migrations:index": ADMIN,
    **{f"os_compute_api:os-hosts:{name}": ADMIN for name in (
        "list", "show", "update", "reboot", "shutdown", "startup")},
    "os_compute_api:os-create-backup": MEMBER,
    "os_compute_api:limits": ANY,
    "os_compute_api:os-quota-sets:show": READER,
    "os_compute_api:os-quota-sets:detail": READER,
    "os_compute_api:os-quota-sets:defaults": ANY,
    "os_compute_api:os-quota-sets:update": ADMIN,
    "os_compute_api:os-quota-sets:delete": ADMIN,
    "os_compute_api:os-quota-class-sets:show": f"{ADMIN} or quota_class:%(quota_class)s",
    "os_compute_api:os-quota-class-sets:update": ADMIN,
    "os_compute_api:limits:other_project": ADMIN,
}


def default_rules() -> dict[str, str]:
    return {**BASE, **SERVERS, **OTHERS}
