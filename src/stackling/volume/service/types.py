"""Volume types: the default type, create/update/delete (admin), extra specs (which the
scheduler matches against pool capabilities) and project access to private types."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict, NotFound
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.volume.models import Volume, VolumeType, VolumeTypeAccess
from stackling.volume.service.cinder import VolumeService
from stackling.volume.service.common import default_type


async def _visible(session: AsyncSession, ctx: RequestContext, row: VolumeType) -> bool:
    if row.is_public or ctx.is_admin:
        return True
    access = await session.get(VolumeTypeAccess, (row.id, ctx.project_id or ""))
    return access is not None


async def find_type(session: AsyncSession, ctx: RequestContext, ref: str) -> VolumeType:
    """By id, then by name (Cinder's order); 404 for types the caller may not see."""
    row = await session.get(VolumeType, ref)
    if row is None or row.deleted:
        row = (await session.execute(select(VolumeType).where(
            VolumeType.name == ref, ~VolumeType.deleted))).scalars().first()
    if row is None or not await _visible(session, ctx, row):
        raise NotFound(f"Volume type {ref} could not be found.")
    return row


async def get(svc: VolumeService, ctx: RequestContext, ref: str) -> VolumeType:
    async with svc.store.read() as session:
        if ref == "default":
            return await default_type(session, svc)
        return await find_type(session, ctx, ref)


async def list_types(svc: VolumeService, ctx: RequestContext, is_public: str | None
                     ) -> list[VolumeType]:
    async with svc.store.read() as session:
        stmt = select(VolumeType).where(~VolumeType.deleted)
        want = None if is_public is None else is_public.lower()
        if ctx.is_admin:
            if want in ("true", "false"):
                stmt = stmt.where(VolumeType.is_public == (want == "true"))
        else:
            mine = select(VolumeTypeAccess.volume_type_id).where(
                VolumeTypeAccess.project_id == ctx.project_id)
            stmt = stmt.where(or_(VolumeType.is_public, VolumeType.id.in_(mine)))
        rows = list((await session.execute(stmt)).scalars().all())
    return sorted(rows, key=lambda r: r.created_at)


def _check_specs(specs: object) -> dict[str, str]:
    if not isinstance(specs, dict):
        raise BadRequest("Invalid input received: extra_specs must be a dictionary.")
    out: dict[str, str] = {}
    for key, value in specs.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise BadRequest("Invalid input received: extra spec keys must be 1-255 "
                             "characters.")
        if isinstance(value, bool):
            value = str(value)
        if not isinstance(value, (str, int, float)) or len(str(value)) > 255:
            raise BadRequest(f"Invalid input received: Value for key {key} is not a string "
                             "of at most 255 characters.")
        out[key] = str(value)
    return out


async def create(svc: VolumeService, name: str, description: str | None, is_public: bool,
                 extra_specs: object) -> VolumeType:
    specs = _check_specs(extra_specs or {})
    async with svc.store.write() as session:
        taken = (await session.execute(select(VolumeType.id).where(
            VolumeType.name == name, ~VolumeType.deleted))).first()
        if taken is not None:
            raise Conflict(f"Volume Type {name} already exists.")
        row = VolumeType(id=new_uuid(), name=name, description=description,
                         is_public=is_public, extra_specs=specs, created_at=utcnow())
        session.add(row)
    return row


async def update(svc: VolumeService, ctx: RequestContext, type_id: str, name: str | None,
                 description: str | None, is_public: bool | None,
                 set_description: bool) -> VolumeType:
    async with svc.store.write() as session:
        row = await find_type(session, ctx, type_id)
        if name is not None and name != row.name:
            if row.name == svc.conf.default_volume_type:
                raise BadRequest("Invalid input received: The default volume type cannot be "
                                 "renamed.")
            taken = (await session.execute(select(VolumeType.id).where(
                VolumeType.name == name, ~VolumeType.deleted))).first()
            if taken is not None:
                raise Conflict(f"Volume Type {name} already exists.")
            row.name = name
        if set_description:
            row.description = description
        if is_public is not None:
            row.is_public = is_public
        row.updated_at = utcnow()
    return row


async def delete(svc: VolumeService, ctx: RequestContext, type_id: str) -> None:
    async with svc.store.write() as session:
        row = await find_type(session, ctx, type_id)
        if row.name == svc.conf.default_volume_type:
            raise BadRequest("Invalid volume_type: Default volume type can not be deleted.")
        used = (await session.execute(select(Volume.id).where(
            Volume.volume_type_id == row.id, ~Volume.deleted))).first()
        if used is not None:
            raise BadRequest("Invalid volume_type: Target volume type is still in use.")
        row.deleted, row.deleted_at = True, utcnow()


async def set_specs(svc: VolumeService, ctx: RequestContext, type_id: str,
                    specs: object, replace_key: str | None = None) -> dict[str, str]:
    checked = _check_specs(specs)
    if replace_key is not None and list(checked) != [replace_key]:
        raise BadRequest("Invalid input received: Request body and URI mismatch")
    async with svc.store.write() as session:
        row = await find_type(session, ctx, type_id)
        row.extra_specs = {**row.extra_specs, **checked}
        row.updated_at = utcnow()
        return checked


async def delete_spec(svc: VolumeService, ctx: RequestContext, type_id: str, key: str) -> None:
    async with svc.store.write() as session:
        row = await find_type(session, ctx, type_id)
        if key not in row.extra_specs:
            raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
        row.extra_specs = {k: v for k, v in row.extra_specs.items() if k != key}


async def access_list(svc: VolumeService, ctx: RequestContext, type_id: str
                      ) -> list[VolumeTypeAccess]:
    async with svc.store.read() as session:
        row = await find_type(session, ctx, type_id)
        if row.is_public:
            raise NotFound("Access list not available for public volume types.")
        return list((await session.execute(select(VolumeTypeAccess).where(
            VolumeTypeAccess.volume_type_id == row.id))).scalars().all())


async def add_access(svc: VolumeService, ctx: RequestContext, type_id: str,
                     project: str) -> None:
    async with svc.store.write(f"Volume type access for {type_id} / {project} already "
                               "exists.") as session:
        row = await find_type(session, ctx, type_id)
        if row.is_public:
            raise BadRequest("Invalid volume_type: Type access modification is not "
                             "applicable to public volume type.")
        if await session.get(VolumeTypeAccess, (row.id, project)) is not None:
            raise Conflict(f"Volume type access for {type_id} / {project} already exists.")
        session.add(VolumeTypeAccess(volume_type_id=row.id, project_id=project))


async def remove_access(svc: VolumeService, ctx: RequestContext, type_id: str,
                        project: str) -> None:
    async with svc.store.write() as session:
        row = await find_type(session, ctx, type_id)
        if row.is_public:
            raise BadRequest("Invalid volume_type: Type access modification is not "
                             "applicable to public volume type.")
        result = await session.execute(sql_delete(VolumeTypeAccess).where(
            VolumeTypeAccess.volume_type_id == row.id, VolumeTypeAccess.project_id == project))
        if not getattr(result, "rowcount", 0):
            raise NotFound(f"Volume type access not found for {type_id} / {project}.")


ENCRYPTION_KEYS = ("provider", "cipher", "key_size", "control_location")


def _check_encryption(spec: dict[str, Any], partial: bool) -> dict[str, Any]:
    extra = sorted(set(spec) - set(ENCRYPTION_KEYS))
    if extra:
        raise BadRequest(f"Invalid input received: unexpected keys {', '.join(extra)}")
    if not partial and not isinstance(spec.get("provider"), str):
        raise BadRequest("Invalid input received: provider must be specified.")
    location = spec.get("control_location", None if partial else "front-end")
    if location is not None and location not in ("front-end", "back-end"):
        raise BadRequest("Invalid input received: control_location must be front-end or "
                         "back-end.")
    size = spec.get("key_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                             or size <= 0):
        raise BadRequest("Invalid input received: key_size must be a positive integer.")
    out = dict(spec)
    if location is not None:
        out["control_location"] = location
    return out


async def get_encryption(svc: VolumeService, ctx: RequestContext, type_id: str
                         ) -> dict[str, Any]:
    async with svc.store.read() as session:
        row = await find_type(session, ctx, type_id)
        return dict(row.encryption or {})


async def create_encryption(svc: VolumeService, ctx: RequestContext, type_id: str,
                            spec: dict[str, Any]) -> dict[str, Any]:
    checked = _check_encryption(spec, partial=False)
    async with svc.store.write() as session:
        row = await find_type(session, ctx, type_id)
        if row.encryption:
            raise BadRequest(f"Invalid volume_type: Volume type encryption for type "
                             f"{type_id} already exists.")
        used = (await session.execute(select(Volume.id).where(
            Volume.volume_type_id == row.id, ~Volume.deleted))).first()
        if used is not None:
            raise BadRequest("Invalid volume_type: Cannot create encryption specs. Volume "
                             "type in use.")
        now = utcnow().isoformat()
        row.encryption = {"volume_type_id": row.id, "encryption_id": new_uuid(),
                          "cipher": None, "key_size": None, **checked,
                          "created_at": now, "updated_at": None}
        return dict(row.encryption)


async def update_encryption(svc: VolumeService, ctx: RequestContext, type_id: str,
                            encryption_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    checked = _check_encryption(spec, partial=True)
    async with svc.store.write() as session:
        row = await find_type(session, ctx, type_id)
        if not row.encryption or row.encryption.get("encryption_id") != encryption_id:
            raise NotFound(f"Volume type encryption for type {type_id} does not exist.")
        row.encryption = {**row.encryption, **checked, "updated_at": utcnow().isoformat()}
    return checked


async def delete_encryption(svc: VolumeService, ctx: RequestContext, type_id: str,
                            encryption_id: str) -> None:
    async with svc.store.write() as session:
        row = await find_type(session, ctx, type_id)
        if not row.encryption or row.encryption.get("encryption_id") != encryption_id:
            raise NotFound(f"Volume type encryption for type {type_id} does not exist.")
        row.encryption = None
