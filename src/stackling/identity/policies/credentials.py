"""``/v3/credentials`` (Keystone's secure-RBAC defaults): admins and system readers see
everything, everyone else only the credentials whose ``user_id`` is their own."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, SYSTEM_READER

_OWNER = "user_id:%(target.credential.user_id)s"
_READ = f"({ADMIN}) or {SYSTEM_READER} or {_OWNER}"
_WRITE = f"({ADMIN}) or {_OWNER}"

RULES = {
    "identity:get_credential": _READ,
    "identity:list_credentials": _READ,
    "identity:create_credential": _WRITE,
    "identity:update_credential": _WRITE,
    "identity:delete_credential": _WRITE,
}
