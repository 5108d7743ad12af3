"""OS-TRUST (Keystone's secure-RBAC defaults): the trustor creates; trustor and trustee read;
admins (any scope) and system readers read everything; admins and the trustor delete."""

from __future__ import annotations

from stackling.identity.policies.base import ADMIN, SYSTEM_READER

_TRUSTOR = "user_id:%(target.trust.trustor_user_id)s"
_TRUSTEE = "user_id:%(target.trust.trustee_user_id)s"
_PARTY = f"({ADMIN}) or ({SYSTEM_READER} or {_TRUSTOR} or {_TRUSTEE})"

RULES = {
    "trust_owner": _TRUSTOR,
    "identity:create_trust": "rule:trust_owner",
    "identity:list_trusts": f"{ADMIN} or {SYSTEM_READER}",
    "identity:list_trusts_for_trustor": f"({ADMIN}) or ({SYSTEM_READER} or {_TRUSTOR})",
    "identity:list_trusts_for_trustee": f"({ADMIN}) or ({SYSTEM_READER} or {_TRUSTEE})",
    "identity:list_roles_for_trust": _PARTY,
    "identity:get_role_for_trust": _PARTY,
    "identity:delete_trust": f"{ADMIN} or {_TRUSTOR}",
    "identity:get_trust": _PARTY,
}
