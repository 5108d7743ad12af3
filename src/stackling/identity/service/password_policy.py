"""Keystone's security-compliance (PCI-DSS) rules for local users and their passwords.

One object answers every question the user and auth code asks, from the ``[identity]`` and
``[identity.security_compliance]`` settings plus the user's options, with Keystone's
semantics (``keystone/identity/backends/sql.py``, ``sql_model.py``, ``common/validation``):

* lockout: ``lockout_failure_attempts`` failures lock the account for ``lockout_duration``
  seconds; once that time has passed the count starts again from zero. The
  ``ignore_lockout_failure_attempts`` option exempts a user (failures still count).
* expiry: a password set by an admin or its owner expires ``password_expires_days`` after
  it was set (whole seconds), unless ``ignore_password_expiry``; with
  ``change_password_upon_first_use`` a new user's or an admin-reset password is already
  expired (unless ``ignore_change_password_upon_first_use``) until its owner changes it.
  ``ignore_password_expiry`` also lifts that.
* inactivity: a user who has not authenticated for ``disable_user_account_days_inactive``
  days (counted from its creation if it never did) shows and acts as disabled, unless
  ``ignore_user_inactivity``. Activity is kept per day, so auth writes it once a day at most.
* strength: a new password must ``re.match`` ``password_regex``.
* history: a self-service change may not reuse any of the ``unique_last_password_count``
  latest passwords (the current one included); admin resets are not checked.
* minimum age: a password its owner set must be kept ``minimum_password_age`` days before
  the owner may change it again (admins may always reset it).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from stackling.common.config import IdentityConfig
from stackling.common.errors import ValidationError
from stackling.common.timeutils import as_aware
from stackling.identity.models import User
from stackling.identity.service.passwords import PasswordHasher
from stackling.identity.service.store import Store

EXPIRED_MESSAGE = "The password is expired and needs to be changed for user: {user_id}."
DISABLED_MESSAGE = "The account is disabled for user: {user_id}."
SELF_SERVICE_DISABLED = ("You cannot change your password at this time due to password "
                         "policy disallowing password changes. Please contact your "
                         "administrator to reset your password.")


def _option(user: User, name: str) -> bool:
    return (user.options or {}).get(name) is True


class PasswordPolicy:
    def __init__(self, config: IdentityConfig) -> None:
        self.config = config
        self.rules = config.security_compliance

    # -- new passwords ---------------------------------------------------------------------
    def check_strength(self, password: str | None) -> None:
        """400 unless the password matches ``password_regex`` (as Keystone's validator: with
        a pattern set, even a ``null`` password is refused)."""
        if password is None:
            if self.rules.password_regex:
                raise ValidationError("Password validation error: Password must be a string "
                                      "type.")
            return
        if len(password) > self.config.max_password_length:
            raise ValidationError("Password validation error: the password is too long.")
        pattern = self.rules.password_regex
        if pattern and not re.match(pattern, password):
            raise ValidationError("The password does not match the requirements: "
                                  f"{self.rules.password_regex_description}.")

    def expires_at(self, now: datetime, options: dict[str, Any], *,
                   by_admin: bool) -> datetime | None:
        """When a password set now expires: ``now`` itself if its owner must change it first
        (a new user or an admin reset), else ``password_expires_days`` later, else never."""
        if by_admin and self.rules.change_password_upon_first_use and (
                options.get("ignore_change_password_upon_first_use") is not True):
            return now
        if options.get("ignore_password_expiry") is True or not self.rules.password_expires_days:
            return None
        return (now + timedelta(days=self.rules.password_expires_days)).replace(microsecond=0)

    def history_after_change(self, user: User) -> list[str]:
        """The earlier hashes to keep once the current password is replaced (Keystone keeps
        ``unique_last_password_count`` of them, one at least)."""
        history = list(user.password_history or [])
        if user.password_hash:
            history.append(user.password_hash)
        return history[-max(self.rules.unique_last_password_count, 1):]

    async def check_history(self, hasher: PasswordHasher, user: User, password: str) -> None:
        """400 if a self-service change reuses one of the latest passwords."""
        count = self.rules.unique_last_password_count
        if count <= 0:
            return
        recent = [*(user.password_history or []), user.password_hash][-count:]
        for hashed in reversed(recent):
            if hashed and await hasher.verify(password, hashed):
                raise ValidationError(
                    "The new password cannot be identical to a previous password. The total "
                    f"number which includes the new password must be unique is {count}.")

    def check_minimum_age(self, user: User, now: datetime) -> None:
        """400 while a self-service password is younger than ``minimum_password_age`` days."""
        days = self.rules.minimum_password_age
        if not user.password_self_service or user.password_created_at is None:
            return
        allowed_at = as_aware(user.password_created_at) + timedelta(days=days)
        if now < allowed_at:
            left = (allowed_at - now).days
            raise ValidationError(
                "You cannot change your password at this time due to the minimum password "
                f"age. Once you change your password, it must be used for {days} day(s) "
                f"before it can be changed. Please try again in {left} day(s) or contact "
                "your administrator to reset your password.")

    # -- accounts --------------------------------------------------------------------------
    def password_expired(self, user: User, now: datetime) -> bool:
        if user.password_expires_at is None or _option(user, "ignore_password_expiry"):
            return False
        return now >= as_aware(user.password_expires_at)

    def inactive(self, user: User, now: datetime) -> bool:
        days = self.rules.disable_user_account_days_inactive
        if not days or _option(user, "ignore_user_inactivity"):
            return False
        last = user.last_active_at or user.created_at
        if last is None:
            return False
        return (now.date() - as_aware(last).date()).days >= days

    def enabled(self, user: User, now: datetime) -> bool:
        """The ``enabled`` the API shows and auth obeys: the column, and not inactive."""
        return bool(user.enabled) and not self.inactive(user, now)

    def activity_due(self, user: User, now: datetime) -> bool:
        """Whether a successful auth must record activity (at most once a day)."""
        return user.last_active_at is None or as_aware(user.last_active_at).date() < now.date()

    def lock_over(self, user: User, now: datetime) -> bool:
        """The failure count reached the limit but the lockout time has passed: start over."""
        attempts = self.config.lockout_failure_attempts
        return bool(attempts and user.failed_auth_count >= attempts
                    and not self._lock_running(user, now))

    def locked(self, user: User, now: datetime) -> bool:
        attempts = self.config.lockout_failure_attempts
        if not attempts or _option(user, "ignore_lockout_failure_attempts"):
            return False
        return user.failed_auth_count >= attempts and self._lock_running(user, now)

    def _lock_running(self, user: User, now: datetime) -> bool:
        if user.failed_auth_at is None:
            return False
        until = as_aware(user.failed_auth_at) + timedelta(seconds=self.config.lockout_duration)
        return until > now


# -- bookkeeping of auth attempts (no Store.write: nothing a token says changes) -------------

async def record_failure(store: Store, policy: PasswordPolicy, user: User,
                         now: datetime) -> None:
    """Count a wrong password; a lockout that has run out starts the count over."""
    if not policy.config.lockout_failure_attempts:
        return
    count: Any = 1 if policy.lock_over(user, now) else User.failed_auth_count + 1
    async with store.session() as session, session.begin():
        await session.execute(update(User).where(User.id == user.id).values(
            failed_auth_count=count, failed_auth_at=now))


async def record_success(store: Store, policy: PasswordPolicy, user: User,
                         now: datetime) -> None:
    """Clear the failure count and note the day's activity, writing only when needed."""
    values: dict[str, Any] = {}
    if user.failed_auth_count:
        values.update(failed_auth_count=0, failed_auth_at=None)
    if policy.activity_due(user, now):
        values["last_active_at"] = now
    if values:
        async with store.session() as session, session.begin():
            await session.execute(update(User).where(User.id == user.id).values(**values))
