"""A worker that restarts finds what it was doing when it died in a clear error state."""

from __future__ import annotations

from sqlalchemy import update

from stackling.volume.models import Volume
from tests.functional.volume.conftest import VolumeCloud


async def test_restart_moves_busy_volumes_to_error(volume_cloud: VolumeCloud) -> None:
    manager = volume_cloud.volume.manager
    assert manager is not None
    a = await volume_cloud.create(1)
    b = await volume_cloud.create(1)
    c = await volume_cloud.create(1)
    async with manager.svc.store.write() as session:
        for vid, busy in ((a["id"], "creating"), (b["id"], "extending"),
                          (c["id"], "deleting")):
            await session.execute(update(Volume).where(Volume.id == vid).values(status=busy))
    await manager.stop()
    await manager.start()  # recovers first
    assert (await volume_cloud.show(a["id"]))["status"] == "error"
    assert (await volume_cloud.show(b["id"]))["status"] == "error_extending"
    assert (await volume_cloud.show(c["id"]))["status"] == "error_deleting"
    # and they can be cleaned up
    for vid in (a["id"], b["id"], c["id"]):
        r = await volume_cloud.request("DELETE", f"/volumes/{vid}?force=true")
        assert r.status_code == 202, r.text
        await volume_cloud.wait(vid, "gone")
