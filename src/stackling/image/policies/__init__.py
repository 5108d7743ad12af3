"""Glance's default policies (secure RBAC, ``enforce_new_defaults``), rule name -> check.

Targets carry the image's attributes: ``project_id`` and ``owner`` (the image owner),
``visibility``, ``member_id`` (the caller's project when it sees a shared image as a member),
and the custom properties. Operators override rules in ``policy.yaml`` (oslo.policy syntax).
"""

from __future__ import annotations

from typing import Final

PROJECT_MEMBER: Final = "role:member and project_id:%(project_id)s"
PROJECT_READER: Final = "role:reader and project_id:%(project_id)s"
IMAGE_MEMBER_CHECK: Final = "project_id:%(member_id)s"
COMMUNITY: Final = "'community':%(visibility)s"
PUBLIC: Final = "'public':%(visibility)s"
SHARED: Final = "'shared':%(visibility)s"

ADMIN: Final = "rule:context_is_admin"
ADMIN_OR_PROJECT_MEMBER: Final = f"{ADMIN} or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER: Final = f"{ADMIN} or ({PROJECT_READER})"
ADMIN_OR_PROJECT_READER_GET_IMAGE: Final = (
    f"{ADMIN} or (role:reader and (project_id:%(project_id)s or {IMAGE_MEMBER_CHECK} "
    f"or {COMMUNITY} or {PUBLIC} or {SHARED}))")
ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE: Final = (
    f"{ADMIN} or (role:member and (project_id:%(project_id)s or {IMAGE_MEMBER_CHECK} "
    f"or {COMMUNITY} or {PUBLIC} or {SHARED}))")
ADMIN_OR_PROJECT_MEMBER_CREATE_IMAGE: Final = (
    f"{ADMIN} or ({PROJECT_MEMBER} and project_id:%(owner)s)")
ADMIN_OR_PROJECT_READER_GET_NAMESPACE: Final = (
    f"{ADMIN} or (role:reader and (project_id:%(project_id)s or {PUBLIC}))")
ADMIN_OR_SHARED_MEMBER: Final = f"{ADMIN} or (role:member and {IMAGE_MEMBER_CHECK})"
ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER: Final = (
    f"{ADMIN} or role:reader and (project_id:%(project_id)s or {IMAGE_MEMBER_CHECK})")
SERVICE: Final = "rule:service_api"
SERVICE_OR_PROJECT_MEMBER: Final = f"{SERVICE} or ({PROJECT_MEMBER} and project_id:%(owner)s)"

RULES: Final[dict[str, str]] = {
    "default": "",
    "context_is_admin": "role:admin",
    "service_api": "role:service or role:admin",
    # images
    "add_image": ADMIN_OR_PROJECT_MEMBER_CREATE_IMAGE,
    "delete_image": ADMIN_OR_PROJECT_MEMBER,
    "get_image": ADMIN_OR_PROJECT_READER_GET_IMAGE,
    "get_images": ADMIN_OR_PROJECT_READER,
    "modify_image": ADMIN_OR_PROJECT_MEMBER,
    "publicize_image": ADMIN,
    "communitize_image": ADMIN_OR_PROJECT_MEMBER,
    "download_image": ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE,
    "download_from_store": ADMIN_OR_PROJECT_MEMBER_DOWNLOAD_IMAGE,
    "upload_image": ADMIN_OR_PROJECT_MEMBER,
    "delete_image_location": ADMIN,
    "get_image_location": ADMIN_OR_PROJECT_READER,
    "set_image_location": ADMIN_OR_PROJECT_MEMBER,
    "add_image_location": SERVICE_OR_PROJECT_MEMBER,
    "fetch_image_location": SERVICE,
    "add_member": ADMIN_OR_PROJECT_MEMBER,
    "delete_member": ADMIN_OR_PROJECT_MEMBER,
    "get_member": ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER,
    "get_members": ADMIN_OR_PROJECT_READER_OR_SHARED_MEMBER,
    "modify_member": ADMIN_OR_SHARED_MEMBER,
    "manage_image_cache": ADMIN,
    "deactivate": ADMIN_OR_PROJECT_MEMBER,
    "reactivate": ADMIN_OR_PROJECT_MEMBER,
    "copy_image": ADMIN,
    # tasks (the tasks API is admin only)
    "get_task": "rule:default",
    "get_tasks": "rule:default",
    "add_task": "rule:default",
    "modify_task": "rule:default",
    "tasks_api_access": ADMIN,
    # discovery
    "stores_info_detail": f"{ADMIN} or {SERVICE}",
    # metadata definitions
    "metadef_default": "",
    "metadef_admin": ADMIN,
    "get_metadef_namespace": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "get_metadef_namespaces": ADMIN_OR_PROJECT_READER,
    "modify_metadef_namespace": "rule:metadef_admin",
    "add_metadef_namespace": "rule:metadef_admin",
    "delete_metadef_namespace": "rule:metadef_admin",
    "get_metadef_object": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "get_metadef_objects": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "modify_metadef_object": "rule:metadef_admin",
    "add_metadef_object": "rule:metadef_admin",
    "delete_metadef_object": "rule:metadef_admin",
    "list_metadef_resource_types": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "get_metadef_resource_type": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "add_metadef_resource_type_association": "rule:metadef_admin",
    "remove_metadef_resource_type_association": "rule:metadef_admin",
    "get_metadef_property": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "get_metadef_properties": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "modify_metadef_property": "rule:metadef_admin",
    "add_metadef_property": "rule:metadef_admin",
    "remove_metadef_property": "rule:metadef_admin",
    "get_metadef_tag": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "get_metadef_tags": ADMIN_OR_PROJECT_READER_GET_NAMESPACE,
    "modify_metadef_tag": "rule:metadef_admin",
    "add_metadef_tag": "rule:metadef_admin",
    "add_metadef_tags": "rule:metadef_admin",
    "delete_metadef_tag": "rule:metadef_admin",
    "delete_metadef_tags": "rule:metadef_admin",
    # cache API (not served; kept so operators' policy files stay valid)
    "cache_image": ADMIN,
    "cache_list": ADMIN,
    "cache_delete": ADMIN,
}


def default_rules() -> dict[str, str]:
    return dict(RULES)
