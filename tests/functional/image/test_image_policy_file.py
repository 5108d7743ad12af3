"""Operators override Glance's rules in a policy file (oslo.policy syntax)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackling.common.config import Config, load_config
from tests.functional.image.conftest import ImageCloud


@pytest.fixture
def image_config(tmp_path: Path) -> Config:
    policy = tmp_path / "image-policy.yaml"
    policy.write_text('"upload_image": "role:admin"\n"add_member": "!"\n')
    return load_config(env={}, overrides={
        "data_dir": str(tmp_path / "data"),
        "identity": {"password_hash_rounds": 4, "cache_ttl": 0},
        "image": {"build_tiny_image": "never", "policy_file": str(policy)},
    })


async def test_policy_file_overrides(image_cloud: ImageCloud) -> None:
    c = image_cloud
    img = await c.create("demo")
    h = await c.headers("demo", **{"Content-Type": "application/octet-stream"})
    r = await c.client.put(f"/image/v2/images/{img['id']}/file", headers=h, content=b"x")
    assert r.status_code == 403
    await c.upload(img["id"], b"x", user="admin")
    r = await c.client.post(f"/image/v2/images/{img['id']}/members",
                            headers=await c.headers("admin"), json={"member": "p"})
    assert r.status_code == 403
