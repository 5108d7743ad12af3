"""os-server-password: what a guest posted through the metadata service (via the
conductor, as the metadata service does), shown to the server's project and cleared."""

from __future__ import annotations

from stackling.compute.rpcapi import ConductorAPI
from stackling.compute.service import server_password
from tests.functional.compute.conftest import ComputeCloud


async def test_show_and_clear(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("pw", user="demo"))["id"]
    path = f"/servers/{sid}/os-server-password"
    r = await compute_cloud.request("GET", path, user="demo")
    assert r.status_code == 200 and r.json() == {"password": ""}

    svc = compute_cloud.compute.svc
    conductor = ConductorAPI(svc.bus, "node-1")
    reply = await conductor.instance_password_set(sid, "c2VjcmV0LWVuY3J5cHRlZA==")
    assert reply.found and reply.stored
    reply = await conductor.instance_password_set(sid, "another")  # set once
    assert reply.found and not reply.stored
    assert (await conductor.instance_get(sid)).password == "c2VjcmV0LWVuY3J5cHRlZA=="
    r = await compute_cloud.request("GET", path, user="demo")
    assert r.json() == {"password": "c2VjcmV0LWVuY3J5cHRlZA=="}

    r = await compute_cloud.request("DELETE", path, user="demo")
    assert r.status_code == 204
    r = await compute_cloud.request("GET", path, user="demo")
    assert r.json() == {"password": ""}
    assert await server_password.set_once(svc.store, sid, "again") is True  # settable again

    # another project's user sees no such server; unknown servers are 404
    r = await compute_cloud.request("GET", path, user="admin")
    assert r.status_code == 200  # admin may
    r = await compute_cloud.request("GET", "/servers/0000/os-server-password", user="demo")
    assert r.status_code == 404
    reply = await conductor.instance_password_set("0000", "x")
    assert not reply.found
