"""OS-OAUTH1: consumers (and, below, the delegated flow)."""

from __future__ import annotations

from typing import Any

from stackling.identity.models import OAuthConsumer
from tests.functional.conftest import Cloud

V3 = "/identity/v3"
CONSUMERS = f"{V3}/OS-OAUTH1/consumers"


async def _admin(cloud: Cloud) -> dict[str, str]:
    return {"X-Auth-Token": await cloud.token("admin", "admin")}


async def test_consumer_crud(cloud: Cloud) -> None:
    admin = await _admin(cloud)
    r = await cloud.client.post(CONSUMERS, headers=admin,
                                json={"consumer": {"description": "app", "tier": "gold",
                                                   "secret": "ignored"}})
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()["consumer"]
    assert made["description"] == "app" and made["tier"] == "gold"
    assert len(made["secret"]) == 32 and made["secret"] != "ignored"
    assert made["links"]["self"].endswith(f"/v3/OS-OAUTH1/consumers/{made['id']}")
    cid = made["id"]
    # the secret is shown once, and stored encrypted
    shown = (await cloud.client.get(f"{CONSUMERS}/{cid}", headers=admin)).json()["consumer"]
    assert shown == {k: v for k, v in made.items() if k != "secret"}
    async with cloud.identity.store.read() as session:
        row = await session.get(OAuthConsumer, cid)
        assert row is not None and made["secret"] not in row.encrypted_secret
    # a body is optional
    r = await cloud.client.post(CONSUMERS, headers=admin)
    assert r.status_code == 201 and r.json()["consumer"]["description"] is None
    listed = (await cloud.client.get(CONSUMERS, headers=admin)).json()["consumers"]
    assert cid in {c["id"] for c in listed} and all("secret" not in c for c in listed)

    r = await cloud.client.patch(f"{CONSUMERS}/{cid}", headers=admin,
                                 json={"consumer": {"description": "renamed"}})
    assert r.status_code == 200 and r.json()["consumer"]["description"] == "renamed"
    assert r.json()["consumer"]["tier"] == "gold"
    for bad in ({}, {"secret": "x"}, {"id": "other"}, {"description": 5}):
        r = await cloud.client.patch(f"{CONSUMERS}/{cid}", headers=admin,
                                     json={"consumer": bad})
        assert r.status_code == 400, bad

    assert (await cloud.client.delete(f"{CONSUMERS}/{cid}", headers=admin)).status_code == 204
    r = await cloud.client.get(f"{CONSUMERS}/{cid}", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["message"] == "Consumer not found"
    assert (await cloud.client.delete(f"{CONSUMERS}/{cid}", headers=admin)).status_code == 404


async def test_consumers_are_for_admins(cloud: Cloud) -> None:
    admin = await _admin(cloud)
    cid = (await cloud.client.post(CONSUMERS, headers=admin)).json()["consumer"]["id"]
    demo = {"X-Auth-Token": await cloud.token("demo", "demo")}
    assert (await cloud.client.post(CONSUMERS, headers=demo)).status_code == 403
    assert (await cloud.client.get(CONSUMERS, headers=demo)).status_code == 403
    assert (await cloud.client.get(f"{CONSUMERS}/{cid}", headers=demo)).status_code == 403
    r = await cloud.client.patch(f"{CONSUMERS}/{cid}", headers=demo,
                                 json={"consumer": {"description": "x"}})
    assert r.status_code == 403
    assert (await cloud.client.delete(f"{CONSUMERS}/{cid}", headers=demo)).status_code == 403
