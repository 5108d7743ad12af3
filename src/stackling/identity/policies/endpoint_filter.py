"""OS-EP-FILTER: project-endpoint associations and endpoint groups. Admin or system reader
reads, admin writes."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, ADMIN_OR_SYSTEM_READER

RULES = {
    "identity:list_projects_for_endpoint": ADMIN_OR_SYSTEM_READER,
    "identity:add_endpoint_to_project": ADMIN,
    "identity:check_endpoint_in_project": ADMIN_OR_SYSTEM_READER,
    "identity:list_endpoints_for_project": ADMIN_OR_SYSTEM_READER,
    "identity:remove_endpoint_from_project": ADMIN,
    "identity:create_endpoint_group": ADMIN,
    "identity:list_endpoint_groups": ADMIN_OR_SYSTEM_READER,
    "identity:get_endpoint_group": ADMIN_OR_SYSTEM_READER,
    "identity:update_endpoint_group": ADMIN,
    "identity:delete_endpoint_group": ADMIN,
    "identity:list_projects_associated_with_endpoint_group": ADMIN_OR_SYSTEM_READER,
    "identity:list_endpoints_associated_with_endpoint_group": ADMIN_OR_SYSTEM_READER,
    "identity:get_endpoint_group_in_project": ADMIN_OR_SYSTEM_READER,
    "identity:list_endpoint_groups_for_project": ADMIN_OR_SYSTEM_READER,
    "identity:add_endpoint_group_to_project": ADMIN,
    "identity:remove_endpoint_group_from_project": ADMIN,
}
