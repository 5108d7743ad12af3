from __future__ import annotations

from stackling.identity.policies.base import SYSTEM_READER

_SUBJECT = f"rule:service_admin_or_token_subject or {SYSTEM_READER}"

RULES = {
    "identity:check_token": _SUBJECT,
    "identity:validate_token": _SUBJECT,
    "identity:revoke_token": "rule:service_admin_or_token_subject",
    "identity:revocation_list": f"rule:service_or_admin or {SYSTEM_READER}",
}
