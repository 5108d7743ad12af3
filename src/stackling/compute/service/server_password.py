"""A server's password as its guest posted it to the metadata service (Nova's
``os-server-password``): typically encrypted by the guest with the instance's public key
(cloudbase-init does this for Windows), so compute stores and returns it as an opaque
string. The guest may set it once; the API's DELETE clears it so it may be set again."""

from __future__ import annotations

from stackling.common.errors import NotFound
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import get_row
from stackling.db.store import Store

KEY = "password"  # in the instance's system metadata, as Nova keeps it


async def get(svc: ComputeService, uuid: str) -> str:
    async with svc.store.read() as session:
        row = await get_row(session, uuid)
        return str((row.system_metadata or {}).get(KEY) or "")


async def clear(svc: ComputeService, uuid: str) -> None:
    async with svc.store.write() as session:
        row = await get_row(session, uuid)
        if (row.system_metadata or {}).get(KEY):
            row.system_metadata = {k: v for k, v in row.system_metadata.items() if k != KEY}


async def set_once(store: Store, uuid: str, password: str) -> bool | None:
    """Store ``password`` unless one is set already (False). None: no such instance."""
    async with store.write() as session:
        try:
            row = await get_row(session, uuid)
        except NotFound:
            return None
        current = row.system_metadata or {}
        if current.get(KEY):
            return False
        row.system_metadata = {**current, KEY: password}
        return True
