"""Flavors (+ extra specs, private flavors and access) and keypairs."""

from __future__ import annotations

from tests.functional.compute.conftest import ComputeCloud

PUBLIC_KEY = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd"
              "44bd8JttDCE/F/pNRr0lRE+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiU"
              "kpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw== Generated-by-Nova")


async def project_id(cloud: ComputeCloud, name: str) -> str:
    r = await cloud.client.get("/identity/v3/projects", params={"name": name},
                               headers={"X-Auth-Token": await cloud.token()})
    return str(r.json()["projects"][0]["id"])


async def test_default_flavors_and_detail(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("GET", "/flavors/detail", user="demo")
    names = {f["name"] for f in r.json()["flavors"]}
    assert {"m1.tiny", "m1.small", "m1.nano"} <= names
    tiny = next(f for f in r.json()["flavors"] if f["name"] == "m1.tiny")
    assert tiny["ram"] == 512 and tiny["vcpus"] == 1 and tiny["swap"] == ""
    assert tiny["links"][0]["href"].endswith("/compute/v2.1/flavors/1")
    r = await compute_cloud.request("GET", "/flavors", params={"limit": 2})
    assert len(r.json()["flavors"]) == 2
    next_href = r.json()["flavors_links"][0]["href"]
    assert "marker=2" in next_href
    r = await compute_cloud.request("GET", "/flavors", params={"minRam": 4096})
    assert {f["name"] for f in r.json()["flavors"]} == {"m1.medium", "m1.large", "m1.xlarge"}


async def test_flavor_lifecycle_with_extra_specs(compute_cloud: ComputeCloud) -> None:
    body = {"flavor": {"name": "f1", "ram": 256, "vcpus": 2, "disk": 3, "id": "f1-id",
                       "description": "small one"}}
    r = await compute_cloud.request("POST", "/flavors", json=body, version="2.61")
    assert r.status_code == 200, r.text
    flavor = r.json()["flavor"]
    assert flavor["description"] == "small one" and flavor["extra_specs"] == {}
    r = await compute_cloud.request("POST", "/flavors", json=body)
    assert r.status_code == 400  # description needs 2.55
    r = await compute_cloud.request("POST", "/flavors", json=body, version="2.55")
    assert r.status_code == 409
    r = await compute_cloud.request("POST", "/flavors/f1-id/os-extra_specs",
                                    json={"extra_specs": {"hw:cpu_policy": "shared",
                                                          "k": 1}})
    assert r.json() == {"extra_specs": {"hw:cpu_policy": "shared", "k": "1"}}
    r = await compute_cloud.request("PUT", "/flavors/f1-id/os-extra_specs/k", json={"k": "2"})
    assert r.json() == {"k": "2"}
    r = await compute_cloud.request("PUT", "/flavors/f1-id/os-extra_specs/k", json={"j": "2"})
    assert r.status_code == 400
    r = await compute_cloud.request("GET", "/flavors/f1-id", version="2.61")
    assert r.json()["flavor"]["extra_specs"] == {"hw:cpu_policy": "shared", "k": "2"}
    r = await compute_cloud.request("DELETE", "/flavors/f1-id/os-extra_specs/k")
    assert r.status_code == 200
    r = await compute_cloud.request("GET", "/flavors/f1-id/os-extra_specs/k")
    assert r.status_code == 404
    r = await compute_cloud.request("PUT", "/flavors/f1-id", version="2.55",
                                    json={"flavor": {"description": "changed"}})
    assert r.json()["flavor"]["description"] == "changed"
    r = await compute_cloud.request("DELETE", "/flavors/f1-id")
    assert r.status_code == 202
    r = await compute_cloud.request("GET", "/flavors/f1-id")
    assert r.status_code == 404


async def test_flavor_validation(compute_cloud: ComputeCloud) -> None:
    for bad in ({"name": "x", "ram": 0, "vcpus": 1, "disk": 0},
                {"name": "x", "ram": 1, "vcpus": "a", "disk": 0},
                {"name": " x", "ram": 1, "vcpus": 1, "disk": 0},
                {"name": "x", "ram": 1, "vcpus": 1},
                {"name": "x", "ram": 1, "vcpus": 1, "disk": -1},
                {"name": "x", "ram": 1, "vcpus": 1, "disk": 0, "bogus": 1}):
        r = await compute_cloud.request("POST", "/flavors", json={"flavor": bad})
        assert r.status_code == 400, bad
        assert "badRequest" in r.json()


async def test_private_flavor_access(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("POST", "/flavors", json={"flavor": {
        "name": "private", "ram": 64, "vcpus": 1, "disk": 0, "id": "p1",
        "os-flavor-access:is_public": False}})
    assert r.json()["flavor"]["os-flavor-access:is_public"] is False
    r = await compute_cloud.request("GET", "/flavors/p1", user="demo")
    assert r.status_code == 404
    demo = await project_id(compute_cloud, "demo")
    r = await compute_cloud.request("POST", "/flavors/p1/action",
                                    json={"addTenantAccess": {"tenant": demo}})
    assert r.json() == {"flavor_access": [{"flavor_id": "p1", "tenant_id": demo}]}
    r = await compute_cloud.request("POST", "/flavors/p1/action",
                                    json={"addTenantAccess": {"tenant": demo}})
    assert r.status_code == 409
    r = await compute_cloud.request("GET", "/flavors/p1", user="demo")
    assert r.status_code == 200
    r = await compute_cloud.request("GET", "/flavors/1/os-flavor-access")
    assert r.status_code == 404
    r = await compute_cloud.request("POST", "/flavors/p1/action",
                                    json={"removeTenantAccess": {"tenant": demo}})
    assert r.json() == {"flavor_access": []}
    r = await compute_cloud.request("GET", "/flavors", user="demo")
    assert "p1" not in {f["id"] for f in r.json()["flavors"]}


async def test_keypairs(compute_cloud: ComputeCloud) -> None:
    r = await compute_cloud.request("POST", "/os-keypairs", user="demo",
                                    json={"keypair": {"name": "mine",
                                                      "public_key": PUBLIC_KEY}})
    assert r.status_code == 200  # 2.1
    kp = r.json()["keypair"]
    assert kp["fingerprint"] == "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c"
    assert "private_key" not in kp and "type" not in kp
    r = await compute_cloud.request("POST", "/os-keypairs", user="demo", version="2.2",
                                    json={"keypair": {"name": "gen"}})
    assert r.status_code == 201
    assert r.json()["keypair"]["private_key"].startswith("-----BEGIN RSA PRIVATE KEY")
    assert r.json()["keypair"]["type"] == "ssh"
    r = await compute_cloud.request("POST", "/os-keypairs", user="demo",
                                    json={"keypair": {"name": "mine",
                                                      "public_key": PUBLIC_KEY}})
    assert r.status_code == 409
    r = await compute_cloud.request("POST", "/os-keypairs", user="demo",
                                    json={"keypair": {"name": "bad*name"}})
    assert r.status_code == 400
    r = await compute_cloud.request("POST", "/os-keypairs", user="demo",
                                    json={"keypair": {"name": "k", "public_key": "nope"}})
    assert r.status_code == 400
    r = await compute_cloud.request("GET", "/os-keypairs", user="demo")
    assert [k["keypair"]["name"] for k in r.json()["keypairs"]] == ["mine", "gen"]
    r = await compute_cloud.request("GET", "/os-keypairs", user="admin")
    assert r.json()["keypairs"] == []
    r = await compute_cloud.request("GET", "/os-keypairs/mine", user="demo")
    shown = r.json()["keypair"]
    assert shown["deleted"] is False and shown["user_id"] and isinstance(shown["id"], int)
    r = await compute_cloud.request("GET", "/os-keypairs", user="demo", version="2.35",
                                    params={"limit": 1})
    assert "marker=mine" in r.json()["keypairs_links"][0]["href"]
    r = await compute_cloud.request("DELETE", "/os-keypairs/mine", user="demo")
    assert r.status_code == 202
    r = await compute_cloud.request("DELETE", "/os-keypairs/gen", user="demo", version="2.2")
    assert r.status_code == 204
    r = await compute_cloud.request("GET", "/os-keypairs/mine", user="demo")
    assert r.status_code == 404
