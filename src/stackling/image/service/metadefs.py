"""Metadata definitions (metadefs): namespaces with their objects, properties, tags and
resource-type associations, the catalog of image/flavor properties Horizon shows.

Results are dicts in Glance's wire shape (links relative to the API root, as Glance gives
them). Visibility: a namespace is seen by admins, its owner and, when public, by everyone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.errors import BadRequest, Conflict, Forbidden, NotFound
from stackling.common.timeutils import isotime, utcnow
from stackling.image.models import (
    MetadefNamespace,
    MetadefObject,
    MetadefProperty,
    MetadefResourceType,
    MetadefResourceTypeAssociation,
    MetadefTag,
)
from stackling.image.service.glance import ImageService

NS: Final = "/v2/metadefs/namespaces"
PROPERTY_FIELDS: Final = ("type", "title", "description", "operators", "default", "readonly",
                          "minimum", "maximum", "enum", "pattern", "minLength", "maxLength",
                          "confidential", "items", "uniqueItems", "minItems", "maxItems",
                          "additionalItems")


def _t(value: datetime) -> str:
    return isotime(value, subsecond=False)


def _str(body: dict[str, Any], key: str, required: bool = False, limit: int = 80
         ) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequest(f"Invalid input for field/attribute {key}. Value: None. "
                             "Mandatory field missing.")
        return None
    if not isinstance(value, str) or (limit and len(value) > limit):
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value!r}.")
    return value


def can_see(ns: MetadefNamespace, project_id: str | None, is_admin: bool) -> bool:
    return is_admin or ns.visibility == "public" or (project_id is not None and
                                                     ns.owner == project_id)


async def _namespace(session: AsyncSession, name: str, project_id: str | None,
                     is_admin: bool) -> MetadefNamespace:
    row = await session.scalar(select(MetadefNamespace).where(
        MetadefNamespace.namespace == name))
    if row is None or not can_see(row, project_id, is_admin):
        raise NotFound(f"Metadata definition namespace={name} was not found.")
    return row


def _ns_view(row: MetadefNamespace) -> dict[str, Any]:
    view: dict[str, Any] = {
        "namespace": row.namespace, "display_name": row.display_name,
        "description": row.description, "visibility": row.visibility,
        "protected": row.protected, "owner": row.owner,
        "created_at": _t(row.created_at), "updated_at": _t(row.updated_at),
        "self": f"{NS}/{row.namespace}", "schema": "/v2/schemas/metadefs/namespace"}
    return {k: v for k, v in view.items() if v is not None}


def _object_view(ns: str, row: MetadefObject) -> dict[str, Any]:
    view = {"name": row.name, "description": row.description, "required": row.required,
            "properties": row.properties, "created_at": _t(row.created_at),
            "updated_at": _t(row.updated_at), "self": f"{NS}/{ns}/objects/{row.name}",
            "schema": "/v2/schemas/metadefs/object"}
    return {k: v for k, v in view.items() if v is not None}


def _property_view(row: MetadefProperty) -> dict[str, Any]:
    return {"name": row.name, **row.schema}


def _tag_view(row: MetadefTag) -> dict[str, Any]:
    return {"name": row.name, "created_at": _t(row.created_at),
            "updated_at": _t(row.updated_at)}


def _assoc_view(name: str, row: MetadefResourceTypeAssociation) -> dict[str, Any]:
    view = {"name": name, "prefix": row.prefix, "properties_target": row.properties_target,
            "created_at": _t(row.created_at), "updated_at": _t(row.updated_at)}
    return {k: v for k, v in view.items() if v is not None}


def _property_schema(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("type"), str) or not isinstance(body.get("title"), str):
        raise BadRequest("Invalid input for field/attribute type/title. Mandatory field "
                         "missing.")
    return {k: body[k] for k in PROPERTY_FIELDS if k in body and body[k] is not None}


def _object_fields(body: dict[str, Any]) -> dict[str, Any]:
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise BadRequest("Invalid input for field/attribute properties.")
    return {"description": _str(body, "description", limit=0),
            "required": list(body.get("required") or []),
            "properties": {k: _property_schema(v) for k, v in props.items()}}


# --- namespaces ---------------------------------------------------------------------------

async def list_namespaces(svc: ImageService, project_id: str | None, is_admin: bool,
                          filters: dict[str, str], limit: int, marker: str | None,
                          sort_key: str, sort_dir: str) -> tuple[list[dict[str, Any]], bool]:
    if sort_key not in ("created_at", "updated_at", "namespace", "display_name"):
        raise BadRequest(f"Invalid sort key: {sort_key}")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction: {sort_dir}")
    async with svc.db.read() as session:
        rows = [r for r in (await session.scalars(select(MetadefNamespace))).all()
                if can_see(r, project_id, is_admin)]
        if "visibility" in filters:
            rows = [r for r in rows if r.visibility == filters["visibility"]]
        if "resource_types" in filters:
            wanted = set(filters["resource_types"].split(","))
            assoc = (await session.execute(
                select(MetadefResourceTypeAssociation.namespace_id, MetadefResourceType.name)
                .join(MetadefResourceType, MetadefResourceType.id ==
                      MetadefResourceTypeAssociation.resource_type_id))).all()
            ids = {ns_id for ns_id, name in assoc if name in wanted}
            rows = [r for r in rows if r.id in ids]
        rows.sort(key=lambda r: (getattr(r, sort_key) or "", r.id), reverse=sort_dir == "desc")
        if marker is not None:
            names = [r.namespace for r in rows]
            if marker not in names:
                raise NotFound(f"Metadata definition namespace={marker} was not found.")
            rows = rows[names.index(marker) + 1:]
        page = rows[:limit]
        views = []
        for row in page:
            view = _ns_view(row)
            assocs = await _associations(session, row.id)
            if assocs:
                view["resource_type_associations"] = assocs
            views.append(view)
    return views, len(rows) > limit


async def _associations(session: AsyncSession, namespace_id: int) -> list[dict[str, Any]]:
    rows = (await session.execute(
        select(MetadefResourceTypeAssociation, MetadefResourceType.name)
        .join(MetadefResourceType,
              MetadefResourceType.id == MetadefResourceTypeAssociation.resource_type_id)
        .where(MetadefResourceTypeAssociation.namespace_id == namespace_id))).all()
    return [_assoc_view(name, row) for row, name in rows]


async def create_namespace(svc: ImageService, owner: str | None, body: dict[str, Any]
                           ) -> dict[str, Any]:
    name = _str(body, "namespace", required=True)
    assert name is not None
    visibility = body.get("visibility") or "private"
    if visibility not in ("public", "private"):
        raise BadRequest(f"Invalid visibility value: {visibility}")
    now = utcnow()
    try:
        async with svc.db.session() as session, session.begin():
            row = MetadefNamespace(
                namespace=name, display_name=_str(body, "display_name"),
                description=_str(body, "description", limit=0), visibility=visibility,
                protected=bool(body.get("protected", False)),
                owner=body.get("owner") or owner, created_at=now, updated_at=now)
            session.add(row)
            await session.flush()
            for assoc in body.get("resource_type_associations") or []:
                await _associate(session, row, assoc)
            for obj in body.get("objects") or []:
                session.add(MetadefObject(namespace_id=row.id, name=_str(obj, "name", True),
                                          created_at=now, updated_at=now,
                                          **_object_fields(obj)))
            for prop_name, spec in (body.get("properties") or {}).items():
                session.add(MetadefProperty(namespace_id=row.id, name=prop_name,
                                            schema=_property_schema(spec), created_at=now,
                                            updated_at=now))
            for tag in body.get("tags") or []:
                session.add(MetadefTag(namespace_id=row.id, name=_str(tag, "name", True),
                                       created_at=now, updated_at=now))
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Metadata definition namespace={name} already exists.") from exc
    return await show_namespace(svc, name, None, True)


async def show_namespace(svc: ImageService, name: str, project_id: str | None,
                         is_admin: bool) -> dict[str, Any]:
    async with svc.db.read() as session:
        row = await _namespace(session, name, project_id, is_admin)
        view = _ns_view(row)
        assocs = await _associations(session, row.id)
        if assocs:
            view["resource_type_associations"] = assocs
        objects = (await session.scalars(select(MetadefObject).where(
            MetadefObject.namespace_id == row.id).order_by(MetadefObject.name))).all()
        if objects:
            view["objects"] = [_object_view(name, o) for o in objects]
        props = (await session.scalars(select(MetadefProperty).where(
            MetadefProperty.namespace_id == row.id).order_by(MetadefProperty.name))).all()
        if props:
            view["properties"] = {p.name: dict(p.schema) for p in props}
        tags = (await session.scalars(select(MetadefTag).where(
            MetadefTag.namespace_id == row.id).order_by(MetadefTag.name))).all()
        if tags:
            view["tags"] = [{"name": t.name} for t in tags]
    return view


async def update_namespace(svc: ImageService, name: str, body: dict[str, Any]
                           ) -> dict[str, Any]:
    new_name = _str(body, "namespace", required=True)
    try:
        async with svc.db.session() as session, session.begin():
            row = await _namespace(session, name, None, True)
            row.namespace = new_name or name
            for key in ("display_name", "description"):
                if key in body:
                    setattr(row, key, _str(body, key, limit=0 if key == "description" else 80))
            if "visibility" in body:
                if body["visibility"] not in ("public", "private"):
                    raise BadRequest(f"Invalid visibility value: {body['visibility']}")
                row.visibility = body["visibility"]
            if "protected" in body:
                row.protected = bool(body["protected"])
            if body.get("owner"):
                row.owner = body["owner"]
            row.updated_at = utcnow()
            await session.flush()
            result = _ns_view(row)
    except IntegrityError as exc:
        raise Conflict(f"Metadata definition namespace={new_name} already exists.") from exc
    return result


async def delete_namespace(svc: ImageService, name: str) -> None:
    async with svc.db.write() as session:
        row = await _namespace(session, name, None, True)
        if row.protected:
            raise Forbidden(f"Metadata definition namespace {name} is protected and cannot "
                            "be deleted.")
        for model in (MetadefObject, MetadefProperty, MetadefTag,
                      MetadefResourceTypeAssociation):
            await session.execute(delete(model).where(model.namespace_id == row.id))
        await session.delete(row)


async def delete_children(svc: ImageService, name: str, kind: str) -> None:
    """``DELETE /namespaces/{ns}/objects|properties|tags``."""
    model: Any = {"objects": MetadefObject, "properties": MetadefProperty,
                  "tags": MetadefTag}[kind]
    async with svc.db.write() as session:
        row = await _namespace(session, name, None, True)
        if row.protected:
            raise Forbidden(f"Metadata definition namespace {name} is protected and cannot "
                            "be deleted.")
        await session.execute(delete(model).where(model.namespace_id == row.id))


# --- objects ------------------------------------------------------------------------------

async def list_objects(svc: ImageService, ns: str, project_id: str | None, is_admin: bool
                       ) -> list[dict[str, Any]]:
    async with svc.db.read() as session:
        row = await _namespace(session, ns, project_id, is_admin)
        objects = (await session.scalars(select(MetadefObject).where(
            MetadefObject.namespace_id == row.id).order_by(MetadefObject.created_at))).all()
        return [_object_view(ns, o) for o in objects]


async def _object(session: AsyncSession, ns_row: MetadefNamespace, name: str
                  ) -> MetadefObject:
    obj = await session.scalar(select(MetadefObject).where(
        MetadefObject.namespace_id == ns_row.id, MetadefObject.name == name))
    if obj is None:
        raise NotFound(f"Metadata definition object not found for namespace="
                       f"{ns_row.namespace} and object={name}.")
    return obj


async def create_object(svc: ImageService, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    name = _str(body, "name", required=True)
    now = utcnow()
    try:
        async with svc.db.session() as session, session.begin():
            row = await _namespace(session, ns, None, True)
            obj = MetadefObject(namespace_id=row.id, name=name, created_at=now,
                                updated_at=now, **_object_fields(body))
            session.add(obj)
            await session.flush()
            return _object_view(ns, obj)
    except IntegrityError as exc:
        raise Conflict(f"A metadata definition object with name={name} already exists in "
                       f"namespace={ns}.") from exc


async def show_object(svc: ImageService, ns: str, name: str, project_id: str | None,
                      is_admin: bool) -> dict[str, Any]:
    async with svc.db.read() as session:
        row = await _namespace(session, ns, project_id, is_admin)
        return _object_view(ns, await _object(session, row, name))


async def update_object(svc: ImageService, ns: str, name: str, body: dict[str, Any]
                        ) -> dict[str, Any]:
    new_name = _str(body, "name", required=True)
    try:
        async with svc.db.session() as session, session.begin():
            row = await _namespace(session, ns, None, True)
            obj = await _object(session, row, name)
            fields = _object_fields(body)
            obj.name = new_name or name
            obj.description, obj.required = fields["description"], fields["required"]
            obj.properties = fields["properties"]
            obj.updated_at = utcnow()
            await session.flush()
            return _object_view(ns, obj)
    except IntegrityError as exc:
        raise Conflict(f"A metadata definition object with name={new_name} already exists "
                       f"in namespace={ns}.") from exc


async def delete_object(svc: ImageService, ns: str, name: str) -> None:
    async with svc.db.write() as session:
        row = await _namespace(session, ns, None, True)
        await session.delete(await _object(session, row, name))


# --- properties ---------------------------------------------------------------------------

async def list_properties(svc: ImageService, ns: str, project_id: str | None, is_admin: bool
                          ) -> dict[str, Any]:
    async with svc.db.read() as session:
        row = await _namespace(session, ns, project_id, is_admin)
        props = (await session.scalars(select(MetadefProperty).where(
            MetadefProperty.namespace_id == row.id).order_by(MetadefProperty.name))).all()
        return {p.name: dict(p.schema) for p in props}


async def _property(session: AsyncSession, ns_row: MetadefNamespace, name: str
                    ) -> MetadefProperty:
    prop = await session.scalar(select(MetadefProperty).where(
        MetadefProperty.namespace_id == ns_row.id, MetadefProperty.name == name))
    if prop is None:
        raise NotFound(f"Metadata definition property={name} not found in namespace="
                       f"{ns_row.namespace}.")
    return prop


async def create_property(svc: ImageService, ns: str, body: dict[str, Any]
                          ) -> dict[str, Any]:
    name = _str(body, "name", required=True)
    now = utcnow()
    try:
        async with svc.db.session() as session, session.begin():
            row = await _namespace(session, ns, None, True)
            prop = MetadefProperty(namespace_id=row.id, name=name,
                                   schema=_property_schema(body), created_at=now,
                                   updated_at=now)
            session.add(prop)
            await session.flush()
            return _property_view(prop)
    except IntegrityError as exc:
        raise Conflict(f"A metadata definition property with name={name} already exists in "
                       f"namespace={ns}.") from exc


async def show_property(svc: ImageService, ns: str, name: str, project_id: str | None,
                        is_admin: bool) -> dict[str, Any]:
    async with svc.db.read() as session:
        row = await _namespace(session, ns, project_id, is_admin)
        prefix_free = name.split(":", 1)[-1] if ":" in name else name
        try:
            return _property_view(await _property(session, row, name))
        except NotFound:
            return _property_view(await _property(session, row, prefix_free))


async def update_property(svc: ImageService, ns: str, name: str, body: dict[str, Any]
                          ) -> dict[str, Any]:
    new_name = _str(body, "name", required=True)
    try:
        async with svc.db.session() as session, session.begin():
            row = await _namespace(session, ns, None, True)
            prop = await _property(session, row, name)
            prop.name = new_name or name
            prop.schema = _property_schema(body)
            prop.updated_at = utcnow()
            await session.flush()
            return _property_view(prop)
    except IntegrityError as exc:
        raise Conflict(f"A metadata definition property with name={new_name} already exists "
                       f"in namespace={ns}.") from exc


async def delete_property(svc: ImageService, ns: str, name: str) -> None:
    async with svc.db.write() as session:
        row = await _namespace(session, ns, None, True)
        await session.delete(await _property(session, row, name))


# --- tags ---------------------------------------------------------------------------------

async def list_tags(svc: ImageService, ns: str, project_id: str | None, is_admin: bool
                    ) -> list[dict[str, Any]]:
    async with svc.db.read() as session:
        row = await _namespace(session, ns, project_id, is_admin)
        tags = (await session.scalars(select(MetadefTag).where(
            MetadefTag.namespace_id == row.id).order_by(MetadefTag.created_at,
                                                        MetadefTag.id))).all()
        return [_tag_view(t) for t in tags]


async def _tag(session: AsyncSession, ns_row: MetadefNamespace, name: str) -> MetadefTag:
    tag = await session.scalar(select(MetadefTag).where(MetadefTag.namespace_id == ns_row.id,
                                                        MetadefTag.name == name))
    if tag is None:
        raise NotFound(f"Metadata definition tag not found for namespace={ns_row.namespace} "
                       f"and tag={name}.")
    return tag


async def create_tags(svc: ImageService, ns: str, names: list[str], replace: bool
                      ) -> list[dict[str, Any]]:
    now = utcnow()
    if len(set(names)) != len(names):
        raise Conflict("Duplicate tags in the request")
    try:
        async with svc.db.session() as session, session.begin():
            row = await _namespace(session, ns, None, True)
            if replace:
                await session.execute(delete(MetadefTag).where(
                    MetadefTag.namespace_id == row.id))
            tags = [MetadefTag(namespace_id=row.id, name=n, created_at=now, updated_at=now)
                    for n in names]
            session.add_all(tags)
            await session.flush()
            return [_tag_view(t) for t in tags]
    except IntegrityError as exc:
        raise Conflict(f"A metadata tag with name={names[0] if names else ''} already exists "
                       f"in namespace={ns}.") from exc


async def show_tag(svc: ImageService, ns: str, name: str, project_id: str | None,
                   is_admin: bool) -> dict[str, Any]:
    async with svc.db.read() as session:
        row = await _namespace(session, ns, project_id, is_admin)
        return _tag_view(await _tag(session, row, name))


async def update_tag(svc: ImageService, ns: str, name: str, new_name: str) -> dict[str, Any]:
    try:
        async with svc.db.session() as session, session.begin():
            row = await _namespace(session, ns, None, True)
            tag = await _tag(session, row, name)
            tag.name = new_name
            tag.updated_at = utcnow()
            await session.flush()
            return _tag_view(tag)
    except IntegrityError as exc:
        raise Conflict(f"A metadata tag with name={new_name} already exists in namespace="
                       f"{ns}.") from exc


async def delete_tag(svc: ImageService, ns: str, name: str) -> None:
    async with svc.db.write() as session:
        row = await _namespace(session, ns, None, True)
        await session.delete(await _tag(session, row, name))


# --- resource types -----------------------------------------------------------------------

async def list_resource_types(svc: ImageService) -> list[dict[str, Any]]:
    async with svc.db.read() as session:
        rows = (await session.scalars(select(MetadefResourceType).order_by(
            MetadefResourceType.name))).all()
    return [{"name": r.name, "created_at": _t(r.created_at), "updated_at": _t(r.updated_at)}
            for r in rows]


async def _associate(session: AsyncSession, ns_row: MetadefNamespace, body: dict[str, Any]
                     ) -> dict[str, Any]:
    name = _str(body, "name", required=True)
    rtype = await session.scalar(select(MetadefResourceType).where(
        MetadefResourceType.name == name))
    now = utcnow()
    if rtype is None:  # Glance creates unknown resource types on first association
        rtype = MetadefResourceType(name=name, protected=False, created_at=now,
                                    updated_at=now)
        session.add(rtype)
        await session.flush()
    assoc = MetadefResourceTypeAssociation(
        namespace_id=ns_row.id, resource_type_id=rtype.id, prefix=_str(body, "prefix"),
        properties_target=_str(body, "properties_target"), created_at=now, updated_at=now)
    session.add(assoc)
    await session.flush()
    return _assoc_view(rtype.name, assoc)


async def associations(svc: ImageService, ns: str, project_id: str | None, is_admin: bool
                       ) -> list[dict[str, Any]]:
    async with svc.db.read() as session:
        row = await _namespace(session, ns, project_id, is_admin)
        return await _associations(session, row.id)


async def associate(svc: ImageService, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        async with svc.db.session() as session, session.begin():
            row = await _namespace(session, ns, None, True)
            return await _associate(session, row, body)
    except IntegrityError as exc:
        raise Conflict(f"The metadata definition resource-type association of "
                       f"resource-type={body.get('name')} to namespace={ns}, already "
                       "exists.") from exc


async def dissociate(svc: ImageService, ns: str, name: str) -> None:
    async with svc.db.write() as session:
        row = await _namespace(session, ns, None, True)
        rtype = await session.scalar(select(MetadefResourceType).where(
            MetadefResourceType.name == name))
        assoc = None if rtype is None else await session.get(
            MetadefResourceTypeAssociation, (row.id, rtype.id))
        if assoc is None:
            raise NotFound(f"The metadata definition resource-type association of "
                           f"resource-type={name} to namespace={ns}, was not found.")
        await session.delete(assoc)
