"""Domain-specific configuration (``/v3/domains/{id}/config``) and its defaults."""

from __future__ import annotations

from tests.functional.conftest import Cloud

V3 = "/identity/v3"
CONFIG = {"identity": {"driver": "ldap"},
          "ldap": {"url": "ldap://myldap.com:389/", "user_tree_dn": "ou=Users,dc=org"}}


async def test_defaults(cloud: Cloud) -> None:
    h = {"X-Auth-Token": await cloud.token("admin", "admin")}
    r = await cloud.client.get(f"{V3}/domains/config/default", headers=h)
    assert r.status_code == 200
    assert {"identity", "ldap"} <= set(r.json()["config"])
    r = await cloud.client.get(f"{V3}/domains/config/identity/default", headers=h)
    assert r.json()["config"] == {"identity": {"driver": "sql", "list_limit": None}}
    r = await cloud.client.get(f"{V3}/domains/config/ldap/url/default", headers=h)
    assert r.json()["config"] == {"url": "ldap://localhost"}
    r = await cloud.client.get(f"{V3}/domains/config/ldap/password/default", headers=h)
    assert r.status_code == 403
    r = await cloud.client.get(f"{V3}/domains/config/nope/default", headers=h)
    assert r.status_code == 403
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    r = await cloud.client.get(f"{V3}/domains/config/default", headers=demo)
    assert r.status_code == 403


async def test_domain_config_lifecycle(cloud: Cloud) -> None:
    h = {"X-Auth-Token": await cloud.token("admin", "admin")}
    r = await cloud.client.post(f"{V3}/domains", json={"domain": {"name": "ldapdom"}},
                                headers=h)
    assert r.status_code == 201, r.text
    dom = r.json()["domain"]["id"]
    url = f"{V3}/domains/{dom}/config"
    assert (await cloud.client.get(url, headers=h)).status_code == 404
    r = await cloud.client.put(url, json={"config": {
        **CONFIG, "ldap": {**CONFIG["ldap"], "password": "s3cret"}}}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["config"] == CONFIG  # the password is never shown
    assert "s3cret" not in r.text
    r = await cloud.client.put(url, json={"config": CONFIG}, headers=h)
    assert r.status_code == 200
    for bad in ({"nope": {"x": 1}}, {"ldap": {"nope": 1}}, {}, {"ldap": {}}):
        r = await cloud.client.put(url, json={"config": bad}, headers=h)
        assert r.status_code == 403, bad
    r = await cloud.client.get(f"{url}/ldap", headers=h)
    assert r.json()["config"] == {"ldap": CONFIG["ldap"]}
    r = await cloud.client.get(f"{url}/ldap/url", headers=h)
    assert r.json()["config"] == {"url": CONFIG["ldap"]["url"]}
    assert (await cloud.client.get(f"{url}/ldap/suffix", headers=h)).status_code == 404
    assert (await cloud.client.get(f"{url}/bogus", headers=h)).status_code == 403
    # update a group, then one option
    r = await cloud.client.patch(f"{url}/identity", json={"config": {
        "identity": {"driver": "sql", "list_limit": 7}}}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["config"]["identity"] == {"driver": "sql", "list_limit": 7}
    assert r.json()["config"]["ldap"] == CONFIG["ldap"]
    r = await cloud.client.patch(f"{url}/identity/driver", json={"config": {"driver": "ldap"}},
                                 headers=h)
    assert r.json()["config"]["identity"]["driver"] == "ldap"
    r = await cloud.client.patch(f"{url}/identity", json={"config": {"ldap": {"url": "x"}}},
                                 headers=h)
    assert r.status_code == 403
    r = await cloud.client.patch(f"{url}/ldap/suffix", json={"config": {"suffix": "x"}},
                                 headers=h)
    assert r.status_code == 404
    r = await cloud.client.patch(url, json={"config": {"ldap": {"suffix": "dc=x"}}}, headers=h)
    assert r.json()["config"]["ldap"]["suffix"] == "dc=x"
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    assert (await cloud.client.get(url, headers=demo)).status_code == 403
    assert (await cloud.client.delete(url, headers=demo)).status_code == 403
    # delete an option, a group, everything
    assert (await cloud.client.delete(f"{url}/identity/driver", headers=h)).status_code == 204
    assert (await cloud.client.get(f"{url}/identity/driver", headers=h)).status_code == 404
    assert (await cloud.client.delete(f"{url}/identity", headers=h)).status_code == 204
    assert (await cloud.client.get(f"{url}/identity", headers=h)).status_code == 404
    assert (await cloud.client.delete(f"{url}/identity", headers=h)).status_code == 404
    assert (await cloud.client.delete(url, headers=h)).status_code == 204
    assert (await cloud.client.get(url, headers=h)).status_code == 404
    assert (await cloud.client.get(f"{V3}/domains/nope/config", headers=h)).status_code == 404


async def test_security_compliance_is_readable_by_anyone(cloud: Cloud) -> None:
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    r = await cloud.client.get(f"{V3}/domains/default/config/security_compliance",
                               headers=demo)
    assert r.status_code == 200
    assert set(r.json()["config"]["security_compliance"]) == {
        "password_regex", "password_regex_description"}
    r = await cloud.client.get(
        f"{V3}/domains/default/config/security_compliance/password_regex", headers=demo)
    assert r.status_code == 200 and set(r.json()["config"]) == {"password_regex"}
    r = await cloud.client.get(
        f"{V3}/domains/default/config/security_compliance/lockout_duration", headers=demo)
    assert r.status_code == 403
