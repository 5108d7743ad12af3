"""Application credentials with access rules: every service lets their tokens make only the
calls a rule allows (401 otherwise, as keystonemiddleware), and identity validates such a
token only for a service that says it enforces the rules."""

from __future__ import annotations

from typing import Any

import httpx

from tests.functional.compute.conftest import ComputeCloud


async def _app_cred_token(c: ComputeCloud, rules: list[dict[str, str]] | None
                          ) -> tuple[str, dict[str, Any]]:
    admin = await c.token()
    r = await c.client.get("/identity/v3/auth/tokens",
                           headers={"X-Auth-Token": admin, "X-Subject-Token": admin})
    user_id = r.json()["token"]["user"]["id"]
    spec: dict[str, Any] = {"name": f"cred-{len(rules or [])}"}
    if rules is not None:
        spec["access_rules"] = rules
    r = await c.client.post(f"/identity/v3/users/{user_id}/application_credentials",
                            headers={"X-Auth-Token": admin},
                            json={"application_credential": spec})
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    r = await c.client.post("/identity/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": cred["id"], "secret": cred["secret"]}}}})
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"], r.json()["token"]


async def _get(c: ComputeCloud, path: str, token: str, **headers: str) -> httpx.Response:
    return await c.client.get(path, headers={"X-Auth-Token": token, **headers})


async def test_rules_limit_the_token_to_the_calls_they_name(
        compute_cloud: ComputeCloud) -> None:
    c = compute_cloud
    server = await c.boot("ruled")
    token, body = await _app_cred_token(c, [
        {"service": "compute", "method": "GET", "path": "/v2.1/servers"},
        {"service": "compute", "method": "GET", "path": "/v2.1/servers/{server_id}"}])
    shown = body["application_credential"]["access_rules"]
    assert {(r["service"], r["method"], r["path"]) for r in shown} == {
        ("compute", "GET", "/v2.1/servers"), ("compute", "GET", "/v2.1/servers/{server_id}")}

    assert (await _get(c, "/compute/v2.1/servers", token)).status_code == 200
    assert (await _get(c, f"/compute/v2.1/servers/{server['id']}", token)).status_code == 200
    for path in ("/compute/v2.1/flavors", "/compute/v2.1/os-keypairs",
                 f"/compute/v2.1/servers/{server['id']}/os-instance-actions",
                 "/identity/v3/projects"):
        r = await _get(c, path, token)
        assert r.status_code == 401, (path, r.text)
        assert token not in r.text
    r = await c.client.delete(f"/compute/v2.1/servers/{server['id']}",
                              headers={"X-Auth-Token": token})
    assert r.status_code == 401  # GET rules do not allow a DELETE
    assert (await c.show(server["id"]))["status"] == "ACTIVE"


async def test_identity_validates_a_ruled_token_only_for_an_enforcing_service(
        compute_cloud: ComputeCloud) -> None:
    c = compute_cloud
    token, _ = await _app_cred_token(c, [
        {"service": "compute", "method": "GET", "path": "/v2.1/servers"}])
    admin = await c.token()
    # a token may always validate itself, but identity hides a ruled token (404) from a
    # validator that does not send OpenStack-Identity-Access-Rules
    r = await _get(c, "/identity/v3/auth/tokens", token, **{"X-Subject-Token": token})
    assert r.status_code == 404
    r = await _get(c, "/identity/v3/auth/tokens", admin, **{
        "X-Subject-Token": token, "OpenStack-Identity-Access-Rules": "0.9"})
    assert r.status_code == 404
    r = await _get(c, "/identity/v3/auth/tokens", admin, **{
        "X-Subject-Token": token, "OpenStack-Identity-Access-Rules": "1.0"})
    assert r.status_code == 200
    assert r.json()["token"]["application_credential"]["access_rules"][0]["path"] == \
        "/v2.1/servers"
    r = await c.client.head("/identity/v3/auth/tokens", headers={
        "X-Auth-Token": token, "X-Subject-Token": token, "OpenStack-Identity-Access-Rules": "1"})
    assert r.status_code == 401  # only GET is exempt


async def test_a_credential_without_rules_is_not_limited(compute_cloud: ComputeCloud) -> None:
    c = compute_cloud
    token, body = await _app_cred_token(c, None)
    assert "access_rules" not in body["application_credential"]
    assert (await _get(c, "/compute/v2.1/flavors", token)).status_code == 200
    r = await _get(c, "/identity/v3/auth/tokens", token, **{"X-Subject-Token": token})
    assert r.status_code == 200
