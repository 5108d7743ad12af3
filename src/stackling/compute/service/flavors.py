"""Flavors: the sizes servers come in, their extra specs and (for private ones) which
projects may use them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import bindparam, delete, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Conflict, NotFound
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.compute.models import Flavor, FlavorExtraSpec, FlavorProject
from stackling.compute.rpcapi import FlavorInfo
from stackling.db.base import table_of
from stackling.db.store import Store

#: (flavorid, name, memory_mb, vcpus, root_gb): devstack's nano/micro plus the classic m1 set
DEFAULT_FLAVORS = [
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
    ("4", "m1.large", 8192, 4, 80),
    ("5", "m1.xlarge", 16384, 8, 160),
    ("42", "m1.nano", 128, 1, 1),
    ("84", "m1.micro", 192, 1, 1),
]

SORT_KEYS = {"created_at", "description", "disabled", "ephemeral_gb", "flavorid", "id",
             "is_public", "memory_mb", "name", "root_gb", "rxtx_factor", "swap", "updated_at",
             "vcpu_weight", "vcpus"}


@dataclass
class FlavorRecord:
    id: int
    flavorid: str
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    ephemeral_gb: int
    swap: int
    rxtx_factor: float
    is_public: bool
    disabled: bool
    description: str | None
    created_at: datetime
    extra_specs: dict[str, str] = field(default_factory=dict)

    def info(self) -> FlavorInfo:
        return FlavorInfo(flavorid=self.flavorid, name=self.name, vcpus=self.vcpus,
                          memory_mb=self.memory_mb, root_gb=self.root_gb,
                          ephemeral_gb=self.ephemeral_gb, swap=self.swap,
                          rxtx_factor=self.rxtx_factor, is_public=self.is_public,
                          description=self.description, extra_specs=dict(self.extra_specs))


def _record(row: Flavor, specs: dict[str, str] | None = None) -> FlavorRecord:
    return FlavorRecord(row.id, row.flavorid, row.name, row.memory_mb, row.vcpus, row.root_gb,
                        row.ephemeral_gb, row.swap, row.rxtx_factor, row.is_public, row.disabled,
                        row.description, row.created_at, dict(specs or {}))


def not_found(flavorid: str) -> NotFound:
    return NotFound(f"Flavor {flavorid} could not be found.")


async def bootstrap(store: Store) -> None:
    """Create the default flavors on a fresh database (never re-creates deleted ones)."""
    async with store.write() as session:
        if (await session.execute(select(Flavor.id).limit(1))).first() is not None:
            return
        for flavorid, name, ram, vcpus, disk in DEFAULT_FLAVORS:
            session.add(Flavor(flavorid=flavorid, name=name, memory_mb=ram, vcpus=vcpus,
                               root_gb=disk))


def _visible(ctx: RequestContext):  # type: ignore[no-untyped-def]
    """Non-admins see public flavors and private ones shared with their project."""
    return _visible_to(ctx.project_id)


def _visible_to(project: Any):  # type: ignore[no-untyped-def]
    """:func:`_visible` for ``project`` (a value or a bound parameter)."""
    shared = select(FlavorProject.flavor_id).where(FlavorProject.project_id == project)
    return or_(Flavor.is_public == true(), Flavor.id.in_(shared))


# every boot reads its flavor: these are built once and run with parameters
_SPECS_OF: Final = select(FlavorExtraSpec.flavor_id, FlavorExtraSpec.key,
                          FlavorExtraSpec.value).where(
    FlavorExtraSpec.flavor_id.in_(bindparam("ids", expanding=True)))
_BY_FLAVORID: Final = select(Flavor).where(Flavor.flavorid == bindparam("flavorid"))
_VISIBLE_BY_FLAVORID: Final = _BY_FLAVORID.where(_visible_to(bindparam("project")))


async def _load_specs(session: AsyncSession, ids: list[int]) -> dict[int, dict[str, str]]:
    specs: dict[int, dict[str, str]] = {i: {} for i in ids}
    if ids:
        for flavor_id, key, value in await session.execute(_SPECS_OF, {"ids": ids}):
            specs[flavor_id][key] = value
    return specs


def _for(ctx: RequestContext | None, flavorid: str, anyone: Any, visible: Any
         ) -> tuple[Any, dict[str, Any]]:
    """The statement (``anyone``'s, or for a non-admin ``visible``'s) and its parameters."""
    if ctx is not None and not ctx.is_admin:
        return visible, {"flavorid": flavorid, "project": ctx.project_id}
    return anyone, {"flavorid": flavorid}


async def _row(session: AsyncSession, ctx: RequestContext | None, flavorid: str) -> Flavor:
    found = await session.execute(*_for(ctx, flavorid, _BY_FLAVORID, _VISIBLE_BY_FLAVORID))
    row: Flavor | None = found.scalar_one_or_none()
    if row is None:
        raise not_found(flavorid)
    return row


# every boot reads its flavor: one statement, plain rows (the flavor's columns on each of
# its extra specs' rows, or on one row with none)
_FT: Final = table_of(Flavor)
_ST: Final = table_of(FlavorExtraSpec)
_WITH_SPECS: Final = (select(_FT, _ST.c.key.label("spec_key"), _ST.c.value.label("spec_value"))
                      .select_from(_FT.outerjoin(_ST, _ST.c.flavor_id == _FT.c.id))
                      .where(_FT.c.flavorid == bindparam("flavorid")).order_by(_ST.c.id))
_FP: Final = table_of(FlavorProject).c
_VISIBLE_WITH_SPECS: Final = _WITH_SPECS.where(or_(
    _FT.c.is_public == true(), _FT.c.id.in_(select(_FP.flavor_id).where(
        _FP.project_id == bindparam("project")))))


async def get(store: Store, ctx: RequestContext | None, flavorid: str) -> FlavorRecord:
    """One flavor the caller may see (``ctx=None``: any flavor)."""
    async with store.read() as session:
        rows = (await session.execute(*_for(ctx, flavorid, _WITH_SPECS,
                                            _VISIBLE_WITH_SPECS))).all()
    if not rows:
        raise not_found(flavorid)
    specs = {r.spec_key: r.spec_value for r in rows if r.spec_key is not None}
    return _record(rows[0], specs)  # type: ignore[arg-type]


async def list_flavors(store: Store, ctx: RequestContext, *, is_public: bool | None,
                       min_ram: int | None, min_disk: int | None, sort_key: str,
                       sort_dir: str, limit: int | None, marker: str | None,
                       name: str | None = None) -> list[FlavorRecord]:
    """Nova's rules: non-admins get enabled public flavors plus private ones shared with
    them; admins filter with ``is_public`` (None: all)."""
    query = select(Flavor)
    if not ctx.is_admin:
        query = query.where(_visible(ctx), Flavor.disabled == false())
    elif is_public is not None:
        if is_public:
            query = query.where(_visible(ctx))
        else:
            query = query.where(Flavor.is_public == false())
    if min_ram is not None:
        query = query.where(Flavor.memory_mb >= min_ram)
    if min_disk is not None:
        query = query.where(Flavor.root_gb >= min_disk)
    if name is not None:
        query = query.where(Flavor.name == name)
    column = getattr(Flavor, "id" if sort_key == "vcpu_weight" else sort_key)
    order = [column.desc() if sort_dir == "desc" else column.asc(),
             Flavor.id.desc() if sort_dir == "desc" else Flavor.id.asc()]
    async with store.read() as session:
        if marker is not None:
            mark = (await session.execute(query.where(Flavor.flavorid == marker))
                    ).scalar_one_or_none()
            if mark is None:
                raise BadRequest(f"marker [{marker}] not found")
            value = getattr(mark, "id" if sort_key == "vcpu_weight" else sort_key)
            if sort_dir == "desc":
                query = query.where(or_(column < value, (column == value) & (Flavor.id < mark.id)))
            else:
                query = query.where(or_(column > value, (column == value) & (Flavor.id > mark.id)))
        query = query.order_by(*order)
        if limit is not None:
            query = query.limit(limit)
        rows = list((await session.execute(query)).scalars())
        specs = await _load_specs(session, [r.id for r in rows])
    return [_record(r, specs[r.id]) for r in rows]


@dataclass
class FlavorCreate:
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    flavorid: str | None = None
    ephemeral_gb: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    description: str | None = None


async def create(store: Store, req: FlavorCreate) -> FlavorRecord:
    flavorid = req.flavorid or new_uuid()
    async with store.write() as session:
        if (await session.execute(select(Flavor.id).where(Flavor.name == req.name))).first():
            raise Conflict(f"Flavor with name {req.name} already exists.")
        if (await session.execute(select(Flavor.id).where(Flavor.flavorid == flavorid))).first():
            raise Conflict(f"Flavor with ID {flavorid} already exists.")
        row = Flavor(flavorid=flavorid, name=req.name, memory_mb=req.memory_mb,
                     vcpus=req.vcpus, root_gb=req.root_gb, ephemeral_gb=req.ephemeral_gb,
                     swap=req.swap, rxtx_factor=req.rxtx_factor, is_public=req.is_public,
                     description=req.description)
        session.add(row)
        await session.flush()
        return _record(row)


async def update_description(store: Store, flavorid: str,
                             description: str | None) -> FlavorRecord:
    async with store.write() as session:
        row = await _row(session, None, flavorid)
        row.description = description
        row.updated_at = utcnow()
        return _record(row, (await _load_specs(session, [row.id]))[row.id])


async def delete_flavor(store: Store, flavorid: str) -> None:
    async with store.write() as session:
        row = await _row(session, None, flavorid)
        await session.delete(row)


# -- extra specs ------------------------------------------------------------------------------
async def set_extra_specs(store: Store, flavorid: str, specs: dict[str, str]) -> dict[str, str]:
    async with store.write() as session:
        row = await _row(session, None, flavorid)
        current = {s.key: s for s in (await session.execute(select(FlavorExtraSpec).where(
            FlavorExtraSpec.flavor_id == row.id))).scalars()}
        for key, value in specs.items():
            if key in current:
                current[key].value = value
            else:
                session.add(FlavorExtraSpec(flavor_id=row.id, key=key, value=value))
        return specs


async def delete_extra_spec(store: Store, flavorid: str, key: str) -> None:
    async with store.write() as session:
        row = await _row(session, None, flavorid)
        result = await session.execute(delete(FlavorExtraSpec).where(
            FlavorExtraSpec.flavor_id == row.id, FlavorExtraSpec.key == key))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"Flavor {flavorid} has no extra specs with key {key}.")


# -- access (private flavors) -------------------------------------------------------------
async def access_list(store: Store, flavorid: str) -> list[str]:
    async with store.read() as session:
        row = await _row(session, None, flavorid)
        if row.is_public:
            raise NotFound("Access list not available for public flavors.")
        return list((await session.execute(select(FlavorProject.project_id).where(
            FlavorProject.flavor_id == row.id).order_by(FlavorProject.id))).scalars())


async def add_access(store: Store, flavorid: str, project_id: str) -> list[str]:
    async with store.write() as session:
        row = await _row(session, None, flavorid)
        if row.is_public:
            raise Conflict("Can not add access to a public flavor.")
        exists = (await session.execute(select(FlavorProject.id).where(
            FlavorProject.flavor_id == row.id, FlavorProject.project_id == project_id))).first()
        if exists:
            raise Conflict(f"Flavor access already exists for flavor {flavorid} and project "
                           f"{project_id} combination.")
        session.add(FlavorProject(flavor_id=row.id, project_id=project_id))
    return await access_list(store, flavorid)


async def remove_access(store: Store, flavorid: str, project_id: str) -> list[str]:
    async with store.write() as session:
        row = await _row(session, None, flavorid)
        if row.is_public:
            raise Conflict("Can not remove access from a public flavor.")
        result = await session.execute(delete(FlavorProject).where(
            FlavorProject.flavor_id == row.id, FlavorProject.project_id == project_id))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"Flavor access not found for {flavorid} / {project_id} "
                           "combination.")
    return await access_list(store, flavorid)
