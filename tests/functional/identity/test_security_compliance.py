"""Keystone's security-compliance (PCI-DSS) features, on a cloud that turns them all on.

Time-dependent rules (expiry, minimum age, inactivity, lockout time) are driven by moving
the user's timestamps back in the database rather than by waiting.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stackling.common.config import Config, load_config
from stackling.common.timeutils import as_aware, parse_isotime, utcnow
from stackling.identity.models import User
from tests.functional.conftest import Cloud

V3 = "/identity/v3"
USERS = f"{V3}/users"
TOKENS = f"{V3}/auth/tokens"
REGEX = r"^(?=.*\d)(?=.*[a-zA-Z]).{7,}$"
REGEX_TEXT = "at least 7 characters, with a letter and a digit"
BARE_401 = "The request you have made requires authentication."


@pytest.fixture
def cloud_config(tmp_path: Path) -> Config:
    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {
            "password_hash_rounds": 4, "cache_ttl": 0,
            "lockout_failure_attempts": 3, "lockout_duration": 600,
            "security_compliance": {
                "password_expires_days": 90,
                "unique_last_password_count": 3,
                "change_password_upon_first_use": True,
                "disable_user_account_days_inactive": 30,
                "password_regex": REGEX,
                "password_regex_description": REGEX_TEXT,
            },
        },
    })


async def _admin(cloud: Cloud) -> dict[str, str]:
    return {"X-Auth-Token": await cloud.token()}


async def _create(cloud: Cloud, **attrs: Any) -> dict[str, Any]:
    r = await cloud.client.post(USERS, headers=await _admin(cloud), json={"user": attrs})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()["user"]
    return body


async def _login(cloud: Cloud, user_id: str, password: str) -> tuple[int, str]:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": user_id, "password": password}}}}}
    r = await cloud.client.post(TOKENS, json=body)
    return r.status_code, r.json()["error"]["message"] if r.status_code >= 400 else ""


async def _change(cloud: Cloud, user_id: str, original: str, new: str) -> tuple[int, str]:
    r = await cloud.client.post(f"{USERS}/{user_id}/password", json={"user": {
        "original_password": original, "password": new}})
    return r.status_code, r.json()["error"]["message"] if r.status_code >= 400 else ""


async def _patch(cloud: Cloud, user_id: str, **attrs: Any) -> Any:
    return await cloud.client.patch(f"{USERS}/{user_id}", headers=await _admin(cloud),
                                    json={"user": attrs})


async def _shown(cloud: Cloud, user_id: str) -> dict[str, Any]:
    r = await cloud.client.get(f"{USERS}/{user_id}", headers=await _admin(cloud))
    body: dict[str, Any] = r.json()["user"]
    return body


async def _set_row(cloud: Cloud, user_id: str, **values: Any) -> None:
    async with cloud.identity.store.write() as session:
        row = await session.get(User, user_id)
        for key, value in values.items():
            setattr(row, key, value)


async def _row(cloud: Cloud, user_id: str) -> User:
    async with cloud.identity.store.read() as session:
        row = await session.get(User, user_id)
        assert row is not None
        return row


async def _ready(cloud: Cloud, name: str, password: str = "first-pass-1",
                 **options: Any) -> dict[str, Any]:
    """A user whose first password was already changed by itself (so it can log in)."""
    u = await _create(cloud, name=name, password="initial-1",
                      options={"ignore_change_password_upon_first_use": True, **options})
    await _patch(cloud, u["id"], password=password)  # admin reset, still exempt
    return u


# -- readout, strength --------------------------------------------------------------------

async def test_config_readout_shows_the_real_regex(cloud: Cloud) -> None:
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    r = await cloud.client.get(f"{V3}/domains/default/config/security_compliance",
                               headers=demo)
    assert r.status_code == 200
    assert r.json()["config"] == {"security_compliance": {
        "password_regex": REGEX, "password_regex_description": REGEX_TEXT}}
    r = await cloud.client.get(
        f"{V3}/domains/default/config/security_compliance/password_regex", headers=demo)
    assert r.json()["config"] == {"password_regex": REGEX}


async def test_regex_on_create_update_and_change(cloud: Cloud) -> None:
    h = await _admin(cloud)
    message = f"The password does not match the requirements: {REGEX_TEXT}."
    r = await cloud.client.post(USERS, headers=h, json={"user": {"name": "weak",
                                                                 "password": "simple"}})
    assert r.status_code == 400 and r.json()["error"]["message"] == message
    u = await _ready(cloud, "strong")
    r = await _patch(cloud, u["id"], password="nodigits")
    assert r.status_code == 400 and r.json()["error"]["message"] == message
    assert await _change(cloud, u["id"], "first-pass-1", "1234567") == (400, message)
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 201


# -- first use, expiry -----------------------------------------------------------------------

async def test_change_password_upon_first_use(cloud: Cloud) -> None:
    before = utcnow()
    u = await _create(cloud, name="newbie", password="given-by-admin-1")
    assert before <= parse_isotime(u["password_expires_at"]) <= utcnow()
    expired = f"The password is expired and needs to be changed for user: {u['id']}."
    assert await _login(cloud, u["id"], "given-by-admin-1") == (401, expired)
    assert (await _change(cloud, u["id"], "given-by-admin-1", "my-own-pass-1"))[0] == 204
    assert (await _login(cloud, u["id"], "my-own-pass-1"))[0] == 201
    expires = parse_isotime((await _shown(cloud, u["id"]))["password_expires_at"])
    assert timedelta(days=89) < expires - utcnow() <= timedelta(days=90)
    # an admin reset puts the user back to "change it first"
    assert (await _patch(cloud, u["id"], password="reset-by-admin-1")).status_code == 200
    assert await _login(cloud, u["id"], "reset-by-admin-1") == (401, expired)


async def test_first_use_exemptions(cloud: Cloud) -> None:
    u = await _create(cloud, name="svc", password="service-pass-1",
                      options={"ignore_change_password_upon_first_use": True})
    assert (await _login(cloud, u["id"], "service-pass-1"))[0] == 201
    assert parse_isotime(u["password_expires_at"]) - utcnow() > timedelta(days=89)
    # ignore_password_expiry lifts the first-use expiry too, and sets no expiry at all
    v = await _create(cloud, name="noexp", password="service-pass-1")
    await _patch(cloud, v["id"], options={"ignore_password_expiry": True})
    assert (await _login(cloud, v["id"], "service-pass-1"))[0] == 201
    r = await _patch(cloud, v["id"], password="service-pass-2")
    assert r.json()["user"]["password_expires_at"] is not None  # first use: "expired" now
    assert (await _login(cloud, v["id"], "service-pass-2"))[0] == 201
    w = await _create(cloud, name="noexp2", password="service-pass-1", options={
        "ignore_password_expiry": True, "ignore_change_password_upon_first_use": True})
    assert w["password_expires_at"] is None


async def test_expired_password_can_only_be_changed(cloud: Cloud) -> None:
    u = await _ready(cloud, "old")
    await _set_row(cloud, u["id"], password_expires_at=utcnow() - timedelta(seconds=1))
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 401
    assert (await _change(cloud, u["id"], "first-pass-1", "second-pass-2"))[0] == 204
    assert (await _login(cloud, u["id"], "second-pass-2"))[0] == 201
    # the password_expires_at filter sees the new expiry
    soon = (utcnow() + timedelta(days=89)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = await cloud.client.get(f"{USERS}?password_expires_at=gt:{soon}",
                               headers=await _admin(cloud))
    assert u["id"] in [x["id"] for x in r.json()["users"]]
    r = await cloud.client.get(f"{USERS}?password_expires_at=lt:{soon}",
                               headers=await _admin(cloud))
    assert u["id"] not in [x["id"] for x in r.json()["users"]]


# -- history, minimum age, lock_password -------------------------------------------------------

async def test_password_history(cloud: Cloud) -> None:
    u = await _ready(cloud, "hist", password="passwd-1")
    history = ("The new password cannot be identical to a previous password. The total "
               "number which includes the new password must be unique is 3.")
    assert (await _change(cloud, u["id"], "passwd-1", "passwd-2"))[0] == 204
    assert (await _change(cloud, u["id"], "passwd-2", "passwd-3"))[0] == 204
    assert await _change(cloud, u["id"], "passwd-3", "passwd-3") == (400, history)
    assert await _change(cloud, u["id"], "passwd-3", "passwd-1") == (400, history)
    assert (await _change(cloud, u["id"], "passwd-3", "passwd-4"))[0] == 204
    # pass-1 is now the 4th latest: allowed again
    assert (await _change(cloud, u["id"], "passwd-4", "passwd-1"))[0] == 204
    assert len((await _row(cloud, u["id"])).password_history) == 3
    # an admin reset is not checked against the history
    assert (await _patch(cloud, u["id"], password="passwd-4")).status_code == 200


async def test_minimum_password_age(cloud: Cloud) -> None:
    cloud.config.identity.security_compliance.minimum_password_age = 2
    u = await _ready(cloud, "aged", password="passwd-1")
    # the current password was set by an admin: the owner may change it at once
    assert (await _change(cloud, u["id"], "passwd-1", "passwd-2"))[0] == 204
    status, message = await _change(cloud, u["id"], "passwd-2", "passwd-3")
    assert status == 400 and message == (
        "You cannot change your password at this time due to the minimum password age. "
        "Once you change your password, it must be used for 2 day(s) before it can be "
        "changed. Please try again in 1 day(s) or contact your administrator to reset "
        "your password.")
    await _set_row(cloud, u["id"], password_created_at=utcnow() - timedelta(days=2))
    assert (await _change(cloud, u["id"], "passwd-2", "passwd-3"))[0] == 204
    # admins may always reset
    assert (await _patch(cloud, u["id"], password="passwd-5")).status_code == 200


async def test_lock_password(cloud: Cloud) -> None:
    u = await _ready(cloud, "locked-pw", lock_password=True)
    status, message = await _change(cloud, u["id"], "first-pass-1", "other-pass-2")
    assert status == 400 and "disallowing password changes" in message
    assert (await _patch(cloud, u["id"], password="admin-set-2")).status_code == 200


# -- inactivity --------------------------------------------------------------------------------

async def test_inactive_user_is_disabled_until_reenabled(cloud: Cloud) -> None:
    u = await _ready(cloud, "sleepy")
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 201
    await _set_row(cloud, u["id"], last_active_at=utcnow() - timedelta(days=30))
    assert (await _shown(cloud, u["id"]))["enabled"] is False
    r = await cloud.client.get(f"{USERS}?enabled=false", headers=await _admin(cloud))
    assert u["id"] in [x["id"] for x in r.json()["users"]]
    disabled = f"The account is disabled for user: {u['id']}."
    assert await _login(cloud, u["id"], "first-pass-1") == (401, disabled)
    # as in Keystone, any other update keeps the user disabled (it writes the shown value)
    await _patch(cloud, u["id"], description="still asleep")
    await _set_row(cloud, u["id"], last_active_at=utcnow())
    assert (await _shown(cloud, u["id"]))["enabled"] is False
    # re-enabling revives the user
    r = await _patch(cloud, u["id"], enabled=True)
    assert r.json()["user"]["enabled"] is True
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 201
    # exempt users stay enabled
    v = await _ready(cloud, "sabbatical", ignore_user_inactivity=True)
    await _set_row(cloud, v["id"], last_active_at=utcnow() - timedelta(days=300))
    assert (await _shown(cloud, v["id"]))["enabled"] is True
    assert (await _login(cloud, v["id"], "first-pass-1"))[0] == 201


async def test_never_active_user_counts_from_creation(cloud: Cloud) -> None:
    u = await _ready(cloud, "never")
    await _set_row(cloud, u["id"], last_active_at=None,
                   created_at=utcnow() - timedelta(days=31))
    assert (await _shown(cloud, u["id"]))["enabled"] is False


async def test_activity_is_written_once_a_day(cloud: Cloud) -> None:
    u = await _ready(cloud, "busy")
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 201
    first = (await _row(cloud, u["id"])).last_active_at
    assert first is not None and as_aware(first).date() == utcnow().date()
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 201
    assert (await _row(cloud, u["id"])).last_active_at == first
    yesterday = utcnow() - timedelta(days=1)
    await _set_row(cloud, u["id"], last_active_at=yesterday)
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 201
    stamped = (await _row(cloud, u["id"])).last_active_at
    assert stamped is not None and as_aware(stamped).date() == utcnow().date()


# -- lockout -----------------------------------------------------------------------------------

async def test_lockout_exemption_and_restart(cloud: Cloud) -> None:
    u = await _ready(cloud, "bruteforced")
    for _ in range(3):
        assert await _login(cloud, u["id"], "wrong-1") == (401, BARE_401)
    assert await _login(cloud, u["id"], "first-pass-1") == (401, BARE_401)
    assert (await _change(cloud, u["id"], "first-pass-1", "other-pass-2"))[0] == 401
    # once the lockout time is over, the count starts again: one more failure does not lock
    await _set_row(cloud, u["id"], failed_auth_at=utcnow() - timedelta(seconds=601))
    assert (await _login(cloud, u["id"], "wrong-1"))[0] == 401
    assert (await _row(cloud, u["id"])).failed_auth_count == 1
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 201
    # an exempt user is never locked out
    v = await _ready(cloud, "exempt", ignore_lockout_failure_attempts=True)
    for _ in range(4):
        assert (await _login(cloud, v["id"], "wrong-1"))[0] == 401
    assert (await _login(cloud, v["id"], "first-pass-1"))[0] == 201


async def test_reenabling_clears_failures(cloud: Cloud) -> None:
    u = await _ready(cloud, "unlocked")
    for _ in range(3):
        await _login(cloud, u["id"], "wrong-1")
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 401
    await _patch(cloud, u["id"], enabled=True)
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 201


# -- options -----------------------------------------------------------------------------------

async def test_mfa_options_are_stored_and_checked(cloud: Cloud) -> None:
    u = await _ready(cloud, "mfa")
    r = await _patch(cloud, u["id"], options={"multi_factor_auth_enabled": True,
                                              "multi_factor_auth_rules": [["password", "totp"]]})
    assert r.status_code == 200
    assert r.json()["user"]["options"]["multi_factor_auth_rules"] == [["password", "totp"]]
    bads: list[Any] = [[["password", "password"]], [[]], "password", [["password"], ["password"]]]
    for bad in bads:
        r = await _patch(cloud, u["id"], options={"multi_factor_auth_rules": bad})
        assert r.status_code == 400, bad
    r = await _patch(cloud, u["id"], options={"multi_factor_auth_enabled": "yes"})
    assert r.status_code == 400


# -- multi-factor rules and auth receipts ----------------------------------------------------

async def test_mfa_rules_answer_with_a_receipt(cloud: Cloud) -> None:
    u = await _ready(cloud, "twofactor")
    project = (await cloud.client.get(f"{V3}/projects?name=demo", headers=await _admin(
        cloud))).json()["projects"][0]
    roles = (await cloud.client.get(f"{V3}/roles?name=member",
                                    headers=await _admin(cloud))).json()["roles"]
    await cloud.client.put(f"{V3}/projects/{project['id']}/users/{u['id']}/roles/"
                           f"{roles[0]['id']}", headers=await _admin(cloud))
    token = await cloud.token("twofactor", "demo", password="first-pass-1")
    r = await cloud.client.post(f"{USERS}/{u['id']}/application_credentials",
                                headers={"X-Auth-Token": token}, json={
                                    "application_credential": {"name": "second-factor"}})
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    rule = ["password", "application_credential"]
    await _patch(cloud, u["id"], options={"multi_factor_auth_rules": [rule, ["totp"]]})

    password = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": u["id"], "password": "first-pass-1"}}}}}
    r = await cloud.client.post(TOKENS, json=password)
    assert r.status_code == 401
    receipt = r.headers["Openstack-Auth-Receipt"]
    body = r.json()
    assert body["required_auth_methods"] == [rule]
    assert body["receipt"]["methods"] == ["password"]
    assert body["receipt"]["user"] == {"id": u["id"], "name": "twofactor",
                                       "domain": {"id": "default", "name": "Default"}}
    second = {"auth": {"identity": {"methods": ["application_credential"],
                                    "application_credential": {"id": cred["id"],
                                                               "secret": cred["secret"]}}}}
    r = await cloud.client.post(TOKENS, json=second)
    assert r.status_code == 401 and "Openstack-Auth-Receipt" in r.headers
    r = await cloud.client.post(TOKENS, json=second,
                                headers={"Openstack-Auth-Receipt": receipt})
    assert r.status_code == 201, r.text
    assert sorted(r.json()["token"]["methods"]) == sorted(rule)
    # both methods in one request also satisfy the rule
    both = {"auth": {"identity": {"methods": rule, **password["auth"]["identity"],
                                  **second["auth"]["identity"]}}}
    both["auth"]["identity"]["methods"] = rule
    assert (await cloud.client.post(TOKENS, json=both)).status_code == 201
    # a broken receipt, or another user's, is refused
    r = await cloud.client.post(TOKENS, json=second,
                                headers={"Openstack-Auth-Receipt": receipt[:-4] + "AAAA"})
    assert r.status_code == 401 and "receipt" in r.json()["error"]["message"]
    demo = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "demo", "domain": {"id": "default"}, "password": cloud.passwords["demo"]}}}}}
    r = await cloud.client.post(TOKENS, json=demo, headers={"Openstack-Auth-Receipt": receipt})
    assert r.status_code == 401
    # switched off, the rules are not enforced
    await _patch(cloud, u["id"], options={"multi_factor_auth_enabled": False})
    assert (await cloud.client.post(TOKENS, json=password)).status_code == 201


async def test_mfa_rules_naming_only_unknown_methods_are_ignored(cloud: Cloud) -> None:
    u = await _ready(cloud, "totp-only")
    await _patch(cloud, u["id"], options={"multi_factor_auth_rules": [["totp"]]})
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 201
    await _patch(cloud, u["id"], options={"multi_factor_auth_rules": [["password", "totp"]]})
    assert (await _login(cloud, u["id"], "first-pass-1"))[0] == 201
