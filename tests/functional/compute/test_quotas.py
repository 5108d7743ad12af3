"""Quotas hold under concurrency: usage is counted under the project's lock."""

from __future__ import annotations

import asyncio

from stackling.common.config import Config
from tests.functional.compute.conftest import IMAGE_ID, ComputeCloud


async def test_parallel_boots_respect_the_instance_quota(compute_cloud: ComputeCloud,
                                                         compute_config: Config) -> None:
    compute_config.compute.quotas.instances = 3

    async def boot(i: int) -> int:
        body = {"server": {"name": f"q{i}", "imageRef": IMAGE_ID, "flavorRef": "1"}}
        r = await compute_cloud.request("POST", "/servers", json=body, user="demo")
        return r.status_code

    codes = await asyncio.gather(*(boot(i) for i in range(10)))
    assert sorted(codes) == [202] * 3 + [403] * 7
    r = await compute_cloud.request("POST", "/servers", user="demo", json={"server": {
        "name": "more", "imageRef": IMAGE_ID, "flavorRef": "1"}})
    assert r.json()["forbidden"]["message"] == (
        "Quota exceeded for instances: Requested 1, but already used 3 of 3 instances")


async def test_max_count_is_trimmed_to_quota(compute_cloud: ComputeCloud,
                                             compute_config: Config) -> None:
    compute_config.compute.quotas.cores = 2
    body = {"server": {"name": "m", "imageRef": IMAGE_ID, "flavorRef": "1", "min_count": 1,
                       "max_count": 5, "return_reservation_id": True}}
    r = await compute_cloud.request("POST", "/servers", json=body, user="demo")
    assert r.status_code == 202
    r = await compute_cloud.request("GET", "/servers", user="demo")
    assert len(r.json()["servers"]) == 2
    body["server"]["min_count"] = 2
    r = await compute_cloud.request("POST", "/servers", json=body, user="demo")
    assert r.status_code == 403
    assert "cores" in r.json()["forbidden"]["message"]


async def test_parallel_keypairs_respect_the_quota(compute_cloud: ComputeCloud,
                                                   compute_config: Config) -> None:
    compute_config.compute.quotas.key_pairs = 2
    public = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDvKL+qiI+0QSd4qKBX0T2yoRCLoJOCqs1+8s9Bv"
              "E30A x")

    async def create(i: int) -> int:
        r = await compute_cloud.request("POST", "/os-keypairs", user="demo", json={
            "keypair": {"name": f"k{i}", "public_key": public}})
        return r.status_code

    codes = await asyncio.gather(*(create(i) for i in range(6)))
    assert sorted(codes) == [200, 200, 403, 403, 403, 403]
