"""OS-EC2 credentials and the EC2/S3 signature-to-token APIs (Keystone's defaults: creating
or deleting needs the member role on top of ownership; ``ec2tokens``/``s3tokens`` are for
services and admins only)."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, SYSTEM_READER

_CRED_OWNER = "user_id:%(target.credential.user_id)s"

RULES = {
    "identity:ec2_get_credential": f"({ADMIN}) or {SYSTEM_READER} or {_CRED_OWNER}",
    "identity:ec2_list_credentials": f"({ADMIN}) or {SYSTEM_READER} or rule:owner",
    "identity:ec2_create_credential": f"({ADMIN}) or (role:member and {_CRED_OWNER})",
    "identity:ec2_delete_credential": f"({ADMIN}) or (role:member and {_CRED_OWNER})",
    "identity:ec2tokens_validate": "rule:service_or_admin",
    "identity:s3tokens_validate": "rule:service_or_admin",
}
