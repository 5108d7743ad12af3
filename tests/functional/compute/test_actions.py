"""Server actions: every one a compare-and-swap; a conflicting second action gets 409."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.functional.compute.conftest import ComputeCloud


async def act(cloud: ComputeCloud, server_id: str, body: dict[str, Any],
              user: str = "demo", version: str | None = None) -> int:
    r = await cloud.request("POST", f"/servers/{server_id}/action", json=body, user=user,
                            version=version)
    return r.status_code


async def test_power_actions_round_trip(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("p", user="demo"))["id"]
    steps = [({"os-stop": None}, "SHUTOFF", 4), ({"os-start": None}, "ACTIVE", 1),
             ({"pause": None}, "PAUSED", 3), ({"unpause": None}, "ACTIVE", 1),
             ({"suspend": None}, "SUSPENDED", 7), ({"resume": None}, "ACTIVE", 1),
             ({"reboot": {"type": "SOFT"}}, "ACTIVE", 1),
             ({"reboot": {"type": "HARD"}}, "ACTIVE", 1)]
    for body, status, power in steps:
        assert await act(compute_cloud, sid, body) == 202, body
        server = await compute_cloud.wait_for(sid, status, user="demo")
        assert server["OS-EXT-STS:power_state"] == power
    r = await compute_cloud.request("GET", f"/servers/{sid}/action", user="demo")
    assert r.status_code in (404, 405)


async def test_invalid_state_is_409(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("s", user="demo"))["id"]
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                    json={"os-start": None})
    assert r.status_code == 409
    assert r.json()["conflictingRequest"]["message"] == (
        f"Cannot 'start' instance {sid} while it is in vm_state active")
    assert await act(compute_cloud, sid, {"unpause": None}) == 409
    assert await act(compute_cloud, sid, {"reboot": {"type": "sideways"}}) == 400
    assert await act(compute_cloud, sid, {"fly": None}) == 400


async def test_concurrent_actions_exactly_one_wins(compute_cloud: ComputeCloud) -> None:
    compute_cloud.agent.driver.spawn_delay = 0
    sid = (await compute_cloud.boot("race", user="demo"))["id"]
    codes = await asyncio.gather(*(act(compute_cloud, sid, body) for body in [
        {"os-stop": None}, {"pause": None}, {"suspend": None}, {"os-stop": None},
        {"reboot": {"type": "SOFT"}}, {"pause": None}]))
    assert sorted(codes) == [202, 409, 409, 409, 409, 409]


async def test_lock(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("locked", user="demo"))["id"]
    assert await act(compute_cloud, sid, {"lock": {"locked_reason": "no"}},
                     version="2.73") == 202
    server = await compute_cloud.show(sid, user="demo", version="2.73")
    assert server["locked"] is True and server["locked_reason"] == "no"
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                    json={"os-stop": None})
    assert r.status_code == 409
    assert r.json()["conflictingRequest"]["message"] == f"Instance {sid} is locked"
    r = await compute_cloud.request("DELETE", f"/servers/{sid}", user="demo")
    assert r.status_code == 409
    # an admin may act on a locked server, and the owner cannot undo an admin's lock
    assert await act(compute_cloud, sid, {"unlock": None}, user="demo") == 202
    assert await act(compute_cloud, sid, {"lock": None}, user="admin") == 202
    assert await act(compute_cloud, sid, {"unlock": None}, user="demo") == 403
    assert await act(compute_cloud, sid, {"os-stop": None}, user="admin") == 202
    await compute_cloud.wait_for(sid, "SHUTOFF", user="demo")
    assert await act(compute_cloud, sid, {"unlock": None}, user="admin") == 202
    assert (await compute_cloud.show(sid, user="demo", version="2.9"))["locked"] is False


async def test_console_output(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("console", user="demo"))["id"]
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                    json={"os-getConsoleOutput": {"length": 5}})
    assert r.status_code == 200
    assert "booted from image" in r.json()["output"]
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                    json={"os-getConsoleOutput": {"length": 3}})
    assert len(r.json()["output"].split("\n")) == 3  # Nova's tail
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                    json={"os-getConsoleOutput": {"length": 0}})
    assert r.json()["output"] == ""


async def test_rebuild(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("rb", user="demo", metadata={"old": "1"}))["id"]
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                    json={"rebuild": {
                                        "imageRef": "6b1e3b1c-3e7a-4d5e-9f00-000000000001",
                                        "name": "rebuilt", "metadata": {"new": "2"}}})
    assert r.status_code == 202, r.text
    body = r.json()["server"]
    assert body["name"] == "rebuilt" and body["adminPass"]
    assert body["status"] == "REBUILD" and "OS-EXT-STS:vm_state" not in body
    server = await compute_cloud.wait_for(sid, "ACTIVE", user="demo")
    assert server["metadata"] == {"new": "2"}
    assert sid in compute_cloud.agent.driver.vms
    # a stopped server is rebuilt stopped
    assert await act(compute_cloud, sid, {"os-stop": None}) == 202
    await compute_cloud.wait_for(sid, "SHUTOFF", user="demo")
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                    version="2.75", json={"rebuild": {
                                        "imageRef": "6b1e3b1c-3e7a-4d5e-9f00-000000000001"}})
    assert r.status_code == 202
    assert "OS-EXT-STS:vm_state" in r.json()["server"]
    await compute_cloud.wait_for(sid, "SHUTOFF", user="demo")
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                    json={"rebuild": {"imageRef": "bad"}})
    assert r.status_code == 400


async def test_reset_state_and_security_groups(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("rs", user="demo"))["id"]
    assert await act(compute_cloud, sid, {"os-resetState": {"state": "error"}}) == 403
    assert await act(compute_cloud, sid, {"os-resetState": {"state": "error"}},
                     user="admin") == 202
    assert (await compute_cloud.show(sid, user="demo"))["status"] == "ERROR"
    assert await act(compute_cloud, sid, {"removeSecurityGroup": {"name": "default"}}) == 202
    assert "security_groups" not in await compute_cloud.show(sid, user="demo")
    assert await act(compute_cloud, sid, {"removeSecurityGroup": {"name": "default"}}) == 404
    assert await act(compute_cloud, sid, {"addSecurityGroup": {"name": "web"}}) == 202
    assert (await compute_cloud.show(sid, user="demo"))["security_groups"] == [
        {"name": "web"}]
    r = await compute_cloud.request("POST", "/servers/00000000-0000-0000-0000-000000000000/"
                                    "action", json={"migrate": None})
    assert r.status_code == 404
    assert await act(compute_cloud, sid, {"restore": None}) == 409


async def test_create_image(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("snap", user="demo", metadata={"role": "web"}))["id"]
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                    json={"createImage": {"name": "snap-1",
                                                          "metadata": {"k": "v"}}})
    assert r.status_code == 202, r.text
    image_id = r.headers["location"].rsplit("/", 1)[-1]
    await compute_cloud.wait_for(sid, "ACTIVE", user="demo")
    image = compute_cloud.images.images[image_id]
    assert image["status"] == "active" and image["size"] == 65536
    assert image["instance_uuid"] == sid and image["image_type"] == "snapshot"
    assert image["k"] == "v" and image["role"] == "web" and image["os_distro"] == "cirros"
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                    version="2.45", json={"createImage": {
                                        "name": "snap-2", "metadata": {"image_type": "test"}}})
    assert r.status_code == 202 and "image_id" in r.json()
    # the request's metadata has the last word on properties, as in Nova
    assert compute_cloud.images.images[r.json()["image_id"]]["image_type"] == "test"
    actions = (await compute_cloud.request("GET", f"/servers/{sid}/os-instance-actions",
                                           user="demo")).json()["instanceActions"]
    assert actions[0]["action"] == "createImage"


async def test_create_backup_rotates(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("bk", user="demo"))["id"]
    made = []
    for i in range(3):
        r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                        version="2.45", json={"createBackup": {
                                            "name": f"b{i}", "backup_type": "daily",
                                            "rotation": 2}})
        assert r.status_code == 202, r.text
        made.append(r.json()["image_id"])
        await compute_cloud.wait_for(sid, "ACTIVE", user="demo")
        await asyncio.sleep(0.05)
    left = {i for i, img in compute_cloud.images.images.items()
            if img.get("instance_uuid") == sid}
    assert left == set(made[1:])
    assert compute_cloud.images.images[made[2]]["image_type"] == "backup"


async def test_quick_steps_record_their_events_whole(compute_cloud: ComputeCloud) -> None:
    """A build and a delete that end within a second show their events once, started and
    finished (each recorded in one write at the end, see compute.agent.events)."""
    sid = (await compute_cloud.boot("del-events"))["id"]
    actions = (await compute_cloud.request("GET", f"/servers/{sid}/os-instance-actions")
               ).json()["instanceActions"]
    create = next(a for a in actions if a["action"] == "create")
    r = await compute_cloud.request(
        "GET", f"/servers/{sid}/os-instance-actions/{create['request_id']}", version="2.62")
    built = [e for e in r.json()["instanceAction"]["events"]
             if e["event"] == "compute__do_build_and_run_instance"]
    assert len(built) == 1 and built[0]["result"] == "Success"
    assert built[0]["start_time"] <= built[0]["finish_time"]
    r = await compute_cloud.request("DELETE", f"/servers/{sid}")
    assert r.status_code == 204
    await compute_cloud.wait_gone(sid)
    actions = (await compute_cloud.request("GET", f"/servers/{sid}/os-instance-actions",
                                           version="2.21")).json()["instanceActions"]
    delete = next(a for a in actions if a["action"] == "delete")
    r = await compute_cloud.request(
        "GET", f"/servers/{sid}/os-instance-actions/{delete['request_id']}", version="2.62")
    assert r.status_code == 200, r.text
    events = r.json()["instanceAction"]["events"]
    assert [e["event"] for e in events] == ["compute_terminate_instance"]
    (event,) = events
    assert event["result"] == "Success" and event["host"]
    assert event["start_time"] and event["finish_time"]
    assert event["start_time"] <= event["finish_time"]
