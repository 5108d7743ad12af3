"""Server metadata, tags and instance actions."""

from __future__ import annotations

from tests.functional.compute.conftest import ComputeCloud


async def test_metadata(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("m", user="demo", metadata={"a": "1"}))["id"]
    path = f"/servers/{sid}/metadata"
    r = await compute_cloud.request("POST", path, user="demo", json={"metadata": {"b": "2"}})
    assert r.json() == {"metadata": {"a": "1", "b": "2"}}
    r = await compute_cloud.request("PUT", path, user="demo", json={"metadata": {"c": "3"}})
    assert r.json() == {"metadata": {"c": "3"}}
    r = await compute_cloud.request("PUT", f"{path}/d", user="demo", json={"meta": {"d": "4"}})
    assert r.json() == {"meta": {"d": "4"}}
    r = await compute_cloud.request("PUT", f"{path}/d", user="demo", json={"meta": {"e": "4"}})
    assert r.status_code == 400
    r = await compute_cloud.request("GET", f"{path}/d", user="demo")
    assert r.json() == {"meta": {"d": "4"}}
    r = await compute_cloud.request("DELETE", f"{path}/d", user="demo")
    assert r.status_code == 204
    r = await compute_cloud.request("GET", f"{path}/d", user="demo")
    assert r.status_code == 404
    r = await compute_cloud.request("GET", path, user="demo")
    assert r.json() == {"metadata": {"c": "3"}}
    too_many = {"metadata": {f"k{i}": "v" for i in range(129)}}
    r = await compute_cloud.request("POST", path, user="demo", json=too_many)
    assert r.status_code == 403
    r = await compute_cloud.request("POST", path, user="demo", json={"metadata": {"": "x"}})
    assert r.status_code == 400


async def test_tags(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("t", user="demo"))["id"]
    path = f"/servers/{sid}/tags"
    r = await compute_cloud.request("GET", path, user="demo")
    assert r.status_code == 404  # tags need 2.26
    r = await compute_cloud.request("PUT", path, user="demo", version="2.26",
                                    json={"tags": ["b", "a"]})
    assert r.json() == {"tags": ["a", "b"]}
    r = await compute_cloud.request("PUT", f"{path}/c", user="demo", version="2.26")
    assert r.status_code == 201
    r = await compute_cloud.request("PUT", f"{path}/c", user="demo", version="2.26")
    assert r.status_code == 204
    r = await compute_cloud.request("GET", f"{path}/c", user="demo", version="2.26")
    assert r.status_code == 204
    r = await compute_cloud.request("GET", "/servers", user="demo", version="2.26",
                                    params={"tags": "a,c"})
    assert [s["id"] for s in r.json()["servers"]] == [sid]
    r = await compute_cloud.request("GET", "/servers", user="demo", version="2.26",
                                    params={"not-tags-any": "a"})
    assert r.json()["servers"] == []
    r = await compute_cloud.request("DELETE", f"{path}/c", user="demo", version="2.26")
    assert r.status_code == 204
    r = await compute_cloud.request("DELETE", f"{path}/c", user="demo", version="2.26")
    assert r.status_code == 404
    r = await compute_cloud.request("DELETE", path, user="demo", version="2.26")
    assert r.status_code == 204
    assert (await compute_cloud.show(sid, user="demo", version="2.26"))["tags"] == []


async def test_instance_actions(compute_cloud: ComputeCloud) -> None:
    sid = (await compute_cloud.boot("a", user="demo"))["id"]
    r = await compute_cloud.request("POST", f"/servers/{sid}/action", user="demo",
                                    json={"os-stop": None})
    assert r.status_code == 202
    stop_request = r.headers["x-openstack-request-id"]
    await compute_cloud.wait_for(sid, "SHUTOFF", user="demo")
    r = await compute_cloud.request("GET", f"/servers/{sid}/os-instance-actions", user="demo")
    actions = r.json()["instanceActions"]
    assert [a["action"] for a in actions] == ["stop", "create"]
    assert actions[0]["request_id"] == stop_request
    r = await compute_cloud.request("GET", f"/servers/{sid}/os-instance-actions/"
                                    f"{actions[1]['request_id']}", version="2.84")
    events = {e["event"]: e for e in r.json()["instanceAction"]["events"]}
    assert events["compute__do_build_and_run_instance"]["result"] == "Success"
    assert events["conductor_schedule_and_build_instances"]["result"] == "Success"
    assert events["compute__do_build_and_run_instance"]["host"] == "node-1"
    r = await compute_cloud.request("GET", f"/servers/{sid}/os-instance-actions/"
                                    f"{stop_request}", user="demo", version="2.51")
    (event,) = r.json()["instanceAction"]["events"]
    assert event["event"] == "compute_stop_instance" and "traceback" not in event
    r = await compute_cloud.request("GET", f"/servers/{sid}/os-instance-actions/nope",
                                    user="demo")
    assert r.status_code == 404
    await compute_cloud.request("DELETE", f"/servers/{sid}", user="demo")
    await compute_cloud.wait_gone(sid, user="demo")
    r = await compute_cloud.request("GET", f"/servers/{sid}/os-instance-actions", user="demo")
    assert [a["action"] for a in r.json()["instanceActions"]] == ["delete", "stop", "create"]
