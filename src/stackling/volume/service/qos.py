"""QoS specs: create, list, show, set/unset keys, delete, and association with volume types
(a type points at one QoS spec). The specs are recorded and reported; stackling's backends
do not throttle yet."""

from __future__ import annotations

from sqlalchemy import select

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict, NotFound
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.volume.models import QosSpec, VolumeType
from stackling.volume.service.cinder import VolumeService
from stackling.volume.service.types import find_type

CONSUMERS = ("front-end", "back-end", "both")


async def get(svc: VolumeService, qos_id: str) -> QosSpec:
    async with svc.store.read() as session:
        row = await session.get(QosSpec, qos_id)
    if row is None or row.deleted:
        raise NotFound(f"QoS spec {qos_id} could not be found.")
    return row


async def create(svc: VolumeService, name: str, consumer: str,
                 specs: dict[str, str]) -> QosSpec:
    if consumer not in CONSUMERS:
        raise BadRequest(f"Invalid input received: Valid consumer of QoS specs are: "
                         f"{list(CONSUMERS)}")
    async with svc.store.write() as session:
        taken = (await session.execute(select(QosSpec.id).where(
            QosSpec.name == name, ~QosSpec.deleted))).first()
        if taken is not None:
            raise Conflict(f"QoS Specs {name} already exists.")
        row = QosSpec(id=new_uuid(), name=name, consumer=consumer, specs=specs,
                      created_at=utcnow())
        session.add(row)
    return row


async def list_specs(svc: VolumeService) -> list[QosSpec]:
    async with svc.store.read() as session:
        return list((await session.execute(select(QosSpec).where(~QosSpec.deleted)
                                           .order_by(QosSpec.created_at))).scalars().all())


async def set_keys(svc: VolumeService, qos_id: str, specs: dict[str, str]) -> dict[str, str]:
    async with svc.store.write() as session:
        row = await session.get(QosSpec, qos_id)
        if row is None or row.deleted:
            raise NotFound(f"QoS spec {qos_id} could not be found.")
        if "consumer" in specs:
            if specs["consumer"] not in CONSUMERS:
                raise BadRequest("Invalid input received: invalid consumer")
            row.consumer = specs.pop("consumer")
        row.specs = {**row.specs, **specs}
    return specs


async def unset_keys(svc: VolumeService, qos_id: str, keys: list[str]) -> None:
    async with svc.store.write() as session:
        row = await session.get(QosSpec, qos_id)
        if row is None or row.deleted:
            raise NotFound(f"QoS spec {qos_id} could not be found.")
        missing = [k for k in keys if k not in row.specs]
        if missing:
            raise NotFound(f"QoS spec {qos_id} has no key {missing[0]}.")
        row.specs = {k: v for k, v in row.specs.items() if k not in keys}


async def associations(svc: VolumeService, qos_id: str) -> list[VolumeType]:
    await get(svc, qos_id)
    async with svc.store.read() as session:
        return list((await session.execute(select(VolumeType).where(
            VolumeType.qos_specs_id == qos_id, ~VolumeType.deleted))).scalars().all())


async def associate(svc: VolumeService, ctx: RequestContext, qos_id: str,
                    type_id: str | None) -> None:
    await get(svc, qos_id)
    if not type_id:
        raise BadRequest("Invalid input received: vol_type_id is required")
    async with svc.store.write() as session:
        vtype = await find_type(session, ctx, type_id)
        if vtype.qos_specs_id and vtype.qos_specs_id != qos_id:
            raise BadRequest(f"Invalid input received: Type {type_id} is already associated "
                             f"with another qos specs: {vtype.qos_specs_id}")
        vtype.qos_specs_id = qos_id


async def disassociate(svc: VolumeService, ctx: RequestContext, qos_id: str,
                       type_id: str | None) -> None:
    await get(svc, qos_id)
    async with svc.store.write() as session:
        if type_id is None:
            for vtype in (await session.execute(select(VolumeType).where(
                    VolumeType.qos_specs_id == qos_id))).scalars():
                vtype.qos_specs_id = None
            return
        vtype = await find_type(session, ctx, type_id)
        if vtype.qos_specs_id == qos_id:
            vtype.qos_specs_id = None


async def delete(svc: VolumeService, qos_id: str, force: bool) -> None:
    await get(svc, qos_id)
    async with svc.store.write() as session:
        used = list((await session.execute(select(VolumeType).where(
            VolumeType.qos_specs_id == qos_id, ~VolumeType.deleted))).scalars().all())
        if used and not force:
            raise BadRequest(f"QoS specs {qos_id} is still associated with entities.")
        for vtype in used:
            vtype.qos_specs_id = None
        row = await session.get(QosSpec, qos_id)
        if row is not None:
            row.deleted = True
