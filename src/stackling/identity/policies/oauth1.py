"""OS-OAUTH1 (Keystone's defaults): consumers are managed by admins (system readers may read);
request-token authorization and access-token management are for admins too."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, SYSTEM_READER

RULES = {
    "identity:get_consumer": f"{ADMIN} or ({SYSTEM_READER})",
    "identity:list_consumers": f"{ADMIN} or ({SYSTEM_READER})",
    "identity:create_consumer": ADMIN,
    "identity:update_consumer": ADMIN,
    "identity:delete_consumer": ADMIN,
    "identity:authorize_request_token": ADMIN,
    "identity:get_access_token": ADMIN,
    "identity:get_access_token_role": ADMIN,
    "identity:list_access_tokens": ADMIN,
    "identity:list_access_token_roles": ADMIN,
    "identity:delete_access_token": ADMIN,
}
