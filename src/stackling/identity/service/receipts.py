"""Multi-factor auth rules and auth receipts (Keystone's ``UserMFARulesValidator`` and
``keystone/receipt``).

A user with ``multi_factor_auth_rules`` (and ``multi_factor_auth_enabled`` not false) gets a
token only when the methods that succeeded cover one rule. Otherwise the answer is a 401 that
carries a *receipt*: proof of the methods that did succeed, good for a few minutes, which the
client sends back in the ``Openstack-Auth-Receipt`` header with the missing methods.

Rules only count methods this cloud can run: a rule naming none of them is ignored, so a
rule such as ``["password", "totp"]`` asks for the password alone here (as in Keystone,
where an unloaded method cannot lock users out). Receipts are Fernet-encrypted with their own
key repository, so a receipt is never mistaken for a token.

Every token request asks whether its user has rules; the answer is cached per user like the
other identity caches (dropped on any local write, at most ``cache_ttl`` old), so auth
without rules costs no extra database round trip.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import InvalidToken

from stackling.common.errors import Unauthorized
from stackling.common.timeutils import isotime, utcnow
from stackling.identity.models import Project, User
from stackling.identity.service.fernet import KeyRepository
from stackling.identity.service.store import Store

RECEIPT_HEADER = "Openstack-Auth-Receipt"
RECEIPT_TTL = 300  # Keystone's [receipt] expiration
_VERSION = "r1"


@dataclass(frozen=True, slots=True)
class Receipt:
    id: str
    user_id: str
    methods: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime


class InsufficientAuthMethods(Unauthorized):
    """Raised instead of issuing a token; the API answers 401 with ``body`` and the receipt
    id in the ``Openstack-Auth-Receipt`` header."""

    def __init__(self, receipt: Receipt, body: dict[str, Any]) -> None:
        methods = ",".join(receipt.methods)
        super().__init__(f"Insufficient auth methods received for {receipt.user_id}. "
                         f"Auth Methods Provided: [{methods}].")
        self.receipt = receipt
        self.body = body


def _rules(options: dict[str, Any], loaded: tuple[str, ...]) -> list[list[str]]:
    """The user's rules, each cut down to the methods this cloud runs (empty ones dropped)."""
    if options.get("multi_factor_auth_enabled") is False:
        return []
    raw = options.get("multi_factor_auth_rules") or []
    out: list[list[str]] = []
    for rule in raw if isinstance(raw, list) else []:
        if isinstance(rule, list):
            kept = [m for m in dict.fromkeys(rule) if isinstance(m, str) and m in loaded]
            if kept and kept not in out:
                out.append(kept)
    return out


def rules_satisfied(options: dict[str, Any], methods: set[str],
                    loaded: tuple[str, ...]) -> bool:
    rules = _rules(options, loaded)
    return not rules or any(methods.issuperset(rule) for rule in rules)


def required_methods(options: dict[str, Any], methods: set[str],
                     loaded: tuple[str, ...]) -> list[list[str]]:
    """The rules the methods used so far lead towards (Keystone's ``required_auth_methods``)."""
    return [rule for rule in _rules(options, loaded) if methods.intersection(rule)]


class ReceiptService:
    def __init__(self, keys: KeyRepository, ttl: int = RECEIPT_TTL) -> None:
        self.keys = keys
        self.ttl = ttl

    def issue(self, user_id: str, methods: tuple[str, ...]) -> Receipt:
        now = utcnow()
        expires_at = (now + timedelta(seconds=self.ttl)).replace(microsecond=0)
        payload = json.dumps([_VERSION, user_id, list(methods), now.timestamp(),
                              expires_at.timestamp()]).encode()
        receipt_id = self.keys.fernet().encrypt(payload).decode("ascii").rstrip("=")
        return Receipt(receipt_id, user_id, methods, now, expires_at)

    def validate(self, receipt_id: str) -> Receipt:
        """The receipt, or 401 if it is unreadable or expired."""
        failure = Unauthorized(f"Could not find auth receipt: {receipt_id}.")
        try:
            padded = receipt_id + "=" * (-len(receipt_id) % 4)
            data = json.loads(self.keys.fernet().decrypt(padded.encode("ascii")))
            version, user_id, methods, issued, expires = data
        except (InvalidToken, ValueError, TypeError, UnicodeError) as exc:
            raise failure from exc
        if version != _VERSION or not isinstance(user_id, str) or not isinstance(methods, list):
            raise failure
        receipt = Receipt(receipt_id, user_id, tuple(str(m) for m in methods),
                          datetime.fromtimestamp(float(issued), utcnow().tzinfo),
                          datetime.fromtimestamp(float(expires), utcnow().tzinfo))
        if receipt.expires_at <= utcnow():
            raise failure
        return receipt


def render_receipt(receipt: Receipt, user: dict[str, Any],
                   required: list[list[str]]) -> dict[str, Any]:
    """The 401 body Keystone sends with a receipt."""
    return {"receipt": {"methods": list(receipt.methods), "user": user,
                        "expires_at": isotime(receipt.expires_at),
                        "issued_at": isotime(receipt.issued_at)},
            "required_auth_methods": required}


class MultiFactor:
    """The MFA step of token issuance: count a receipt's methods, then enforce the rules."""

    MAX_CACHED = 10000

    def __init__(self, store: Store, receipts: ReceiptService, cache_ttl: float) -> None:
        self.store = store
        self.receipts = receipts
        self.cache_ttl = cache_ttl
        # user id -> (store revision, monotonic time, options if the user has MFA rules)
        self._cache: dict[str, tuple[int, float, dict[str, Any] | None]] = {}

    async def check(self, user_id: str, used: list[str], receipt_id: str | None,
                    loaded: tuple[str, ...]) -> list[str]:
        """The methods used (a receipt's added); 401 with a new receipt if they cover none
        of the user's rules."""
        if receipt_id is not None:
            receipt = self.receipts.validate(receipt_id)
            if receipt.user_id != user_id:
                raise Unauthorized(f"Could not find auth receipt: {receipt_id}.")
            used = [*used, *(m for m in receipt.methods if m not in used)]
        options = await self._rules_of(user_id)
        if options is None or rules_satisfied(options, set(used), loaded):
            return used
        async with self.store.read() as session:
            user = await session.get(User, user_id)
            domain = await session.get(Project, user.domain_id) if user else None
            who = {"id": user_id, "name": user.name if user else "", "domain": {
                "id": domain.id if domain else "", "name": domain.name if domain else ""}}
        issued = self.receipts.issue(user_id, tuple(used))
        required = required_methods(options, set(used), loaded)
        raise InsufficientAuthMethods(issued, render_receipt(issued, who, required))

    async def _rules_of(self, user_id: str) -> dict[str, Any] | None:
        now = time.monotonic()
        hit = self._cache.get(user_id)
        if hit is not None and hit[0] == self.store.revision and now - hit[1] < self.cache_ttl:
            return hit[2]
        revision = self.store.revision
        async with self.store.read() as session:
            user = await session.get(User, user_id)
            options = dict(user.options or {}) if user is not None else {}
        found = options if options.get("multi_factor_auth_rules") else None
        if len(self._cache) >= self.MAX_CACHED:
            self._cache.clear()
        self._cache[user_id] = (revision, now, found)
        return found
