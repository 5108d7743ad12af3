"""Block storage default policy rules: Cinder's secure-RBAC defaults in oslo.policy syntax.

Targets carry ``project_id`` (and ``user_id``) of the resource; an operator overrides any
rule with a YAML file (``volume.policy_file`` or ``policy_file`` in the config).
"""

from __future__ import annotations

ADMIN = "rule:admin_api"
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
}

RULES = {
    "volume:create": MEMBER, "volume:create_from_image": MEMBER,
    "volume:get": READER, "volume:get_all": READER, "volume:update": MEMBER,
    "volume:delete": MEMBER, "volume:force_delete": ADMIN,
    "volume:extend": MEMBER, "volume:retype": MEMBER,
    "volume:update_readonly_flag": MEMBER, "volume:upload_to_image": MEMBER,
    "volume:reserve_volume": MEMBER, "volume:unreserve_volume": MEMBER,
    "volume:begin_detaching": MEMBER, "volume:roll_detaching": MEMBER,
    "volume:initialize_connection": MEMBER, "volume:terminate_connection": MEMBER,
    "volume:attach": MEMBER, "volume:detach": MEMBER,
    "volume_extension:volume_actions:upload_public": ADMIN,
    "volume_extension:volume_admin_actions:reset_status": ADMIN,
    "volume_extension:volume_admin_actions:force_detach": ADMIN,
    "volume_extension:volume_admin_actions:force_delete": ADMIN,
    "volume:get_volume_metadata": READER, "volume:create_volume_metadata": MEMBER,
    "volume:update_volume_metadata": MEMBER, "volume:delete_volume_metadata": MEMBER,
    "volume_extension:volume_image_metadata:show": READER,
    "volume_extension:volume_image_metadata:set": MEMBER,
    "volume_extension:volume_image_metadata:remove": MEMBER,
    "volume:create_snapshot": MEMBER, "volume:get_snapshot": READER,
    "volume:get_all_snapshots": READER, "volume:update_snapshot": MEMBER,
    "volume:delete_snapshot": MEMBER,
    "volume_extension:snapshot_admin_actions:reset_status": ADMIN,
    "volume_extension:snapshot_admin_actions:force_delete": ADMIN,
    "volume_extension:types_manage": ADMIN,
    "volume_extension:types_extra_specs:create": ADMIN,
    "volume_extension:types_extra_specs:update": ADMIN,
    "volume_extension:types_extra_specs:delete": ADMIN,
    "volume_extension:types_extra_specs:index": READER,
    "volume_extension:types_extra_specs:show": READER,
    "volume_extension:volume_type_access:addProjectAccess": ADMIN,
    "volume_extension:volume_type_access:removeProjectAccess": ADMIN,
    "volume_extension:volume_type_access": ADMIN,
    "volume_extension:quotas:show": READER, "volume_extension:quotas:update": ADMIN,
    "volume_extension:quotas:delete": ADMIN,
    "volume_extension:quota_classes": ADMIN,
    "backup:create": MEMBER, "backup:get": READER, "backup:get_all": READER,
    "backup:delete": MEMBER, "backup:export-import": ADMIN,
    "backup:restore": MEMBER, "backup:update": MEMBER,
    "volume_extension:backup_admin_actions:reset_status": ADMIN,
    "volume_extension:backup_admin_actions:force_delete": ADMIN,
    "volume:create_transfer": MEMBER, "volume:accept_transfer": MEMBER,
    "volume:delete_transfer": MEMBER, "volume:get_transfer": READER,
    "volume:get_all_transfers": READER,
    "volume:attachment_create": MEMBER, "volume:attachment_update": MEMBER,
    "volume:attachment_delete": MEMBER, "volume:attachment_complete": MEMBER,
    "volume:attachment_get": READER, "volume:attachment_get_all": READER,
    "volume_extension:services:index": ADMIN, "volume_extension:services:update": ADMIN,
    "volume_extension:availability_zone_list": ANY,
    "scheduler_extension:scheduler_stats:get_pools": ADMIN,
    "volume_extension:hosts": ADMIN,
    "limits_extension:used_limits": READER,
    "volume_extension:capabilities": ADMIN,
    "volume_extension:qos_specs_manage": ADMIN,
    "volume_extension:volume_type_encryption": ADMIN,
    "group:group_types_manage": ADMIN, "group:create": MEMBER, "group:update": MEMBER,
    "group:delete": MEMBER, "group:reset_status": ADMIN,
    "group:create_group_snapshot": MEMBER, "group:delete_group_snapshot": MEMBER,
    "group:reset_group_snapshot_status": ADMIN,
}


def default_rules() -> dict[str, str]:
    return {**BASE, **RULES}
