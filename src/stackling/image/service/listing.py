"""``GET /v2/images``: which images a caller sees, filters, sorting and marker pagination,
as Glance's database layer does it.

Visibility (a regular caller): public and community images, the project's own, and shared
images the project is a member of with ``member_status`` (default ``accepted``). An admin
sees every image. Then, without a ``visibility`` filter, community images of other projects
are left out; ``visibility=all`` keeps everything seen. Killed and deleted images never show;
hidden ones (``os_hidden``) only with ``os_hidden=true``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from stackling.common.errors import BadRequest
from stackling.common.timeutils import parse_isotime
from stackling.image.models import Image, ImageMember, ImageProperty, ImageTag
from stackling.image.service.records import ImageRecord, load_many, not_found

SORT_KEYS: Final = ("name", "status", "container_format", "disk_format", "size", "id",
                    "created_at", "updated_at")
MEMBER_STATUSES: Final = ("pending", "accepted", "rejected", "all")
VISIBILITY_FILTERS: Final = ("community", "public", "private", "shared", "all")
_OP_FIELDS: Final = ("name", "id", "status", "container_format", "disk_format")
_INT_FIELDS: Final = ("size", "virtual_size", "min_ram", "min_disk")
_COLUMN_FIELDS: Final = ("owner", "checksum", "os_hash_value", "os_hash_algo", "visibility",
                         "protected")
# NULLs sort as these (Glance's _get_default_column_value)
_NULL_AS: Final[dict[str, Any]] = {"name": "", "status": "", "container_format": "",
                                   "disk_format": "", "size": 0, "id": ""}


@dataclass
class Query:
    filters: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    member_status: str = "accepted"
    sort_keys: list[str] = field(default_factory=lambda: ["created_at"])
    sort_dirs: list[str] = field(default_factory=lambda: ["desc"])
    limit: int = 25
    marker: str | None = None


def split_in(value: str) -> list[str]:
    """Values of an ``in:`` filter: comma separated, double quotes protect commas."""
    if value.count('"') % 2:
        raise BadRequest(f"Invalid filter value {value}. The quote is not closed.")
    out = []
    for quoted, plain in re.findall(r'"((?:[^"\\]|\\.)*)",?|([^,]+),?|,', value):
        out.append(quoted or plain)
    return out


def _split_op(expression: str) -> tuple[str, str]:
    left, sep, right = expression.partition(":")
    if not sep:
        return "eq", left
    try:
        parse_isotime(expression)
        return "eq", expression
    except ValueError:
        return left, right


def _conditions(q: Query) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    filters = dict(q.filters)
    hidden = filters.pop("os_hidden", "false").lower()
    if hidden not in ("true", "false"):
        raise BadRequest(f"Invalid value '{hidden}' for 'os_hidden' filter. Valid values are "
                         "'true' or 'false'.")
    conds.append(Image.os_hidden.is_(hidden == "true"))
    protected = filters.pop("protected", None)
    if protected is not None:
        if protected not in ("true", "false"):
            raise BadRequest(f"Invalid value '{protected}' for 'protected' filter. Valid "
                             "values are 'true' or 'false'.")
        conds.append(Image.protected.is_(protected == "true"))
    if "changes-since" in filters:
        raise BadRequest('The "changes-since" filter is no longer available on v2.')
    for key, value in filters.items():
        if key.endswith(("_min", "_max")) and key[:-4] in _INT_FIELDS:
            try:
                bound = int(value)
            except ValueError:
                raise BadRequest("Unable to filter on a range with a non-numeric value."
                                 ) from None
            column = getattr(Image, key[:-4])
            conds.append(column >= bound if key.endswith("_min") else column <= bound)
        elif key in ("created_at", "updated_at"):
            op, when = _split_op(value)
            try:
                threshold: datetime = parse_isotime(when)
            except ValueError:
                raise BadRequest(f'Bad "{key}" query filter format. Use ISO 8601 DateTime '
                                 "notation.") from None
            conds.append(_compare(getattr(Image, key), op, threshold))
        elif key in _OP_FIELDS:
            op, operand = _split_op(value)
            column = getattr(Image, key)
            if op == "in":
                conds.append(column.in_(split_in(operand)))
            elif op == "eq":
                conds.append(column == operand)
            else:
                raise BadRequest(f"Unable to filter by unknown operator '{op}'.")
        elif key in _INT_FIELDS:
            try:
                conds.append(getattr(Image, key) == int(value))
            except ValueError:
                raise BadRequest(f"Invalid value '{value}' for '{key}' filter.") from None
        elif key in _COLUMN_FIELDS:
            conds.append(getattr(Image, key) == value)
        else:  # a custom property
            prop = aliased(ImageProperty)
            conds.append(select(prop.image_id).where(
                prop.image_id == Image.id, prop.name == key, prop.value == value).exists())
    for tag in q.tags:
        tag_row = aliased(ImageTag)
        conds.append(select(tag_row.image_id).where(
            tag_row.image_id == Image.id, tag_row.value == tag).exists())
    return conds


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    ops = {"gt": column > value, "gte": column >= value, "lt": column < value,
           "lte": column <= value, "neq": column != value, "eq": column == value}
    if op not in ops:
        raise BadRequest("Unable to filter on a unknown operator.")
    result: ColumnElement[bool] = ops[op]
    return result


def _visible(project_id: str | None, is_admin: bool, member_status: str,
             visibility: str | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if not is_admin:
        seen: list[ColumnElement[bool]] = [Image.visibility.in_(("public", "community"))]
        if project_id is not None:
            seen.append(Image.owner == project_id)
            member = select(ImageMember.id).where(ImageMember.image_id == Image.id,
                                                  ImageMember.member == project_id)
            if member_status != "all":
                member = member.where(ImageMember.status == member_status)
            seen.append(and_(Image.visibility == "shared", member.exists()))
        conds.append(or_(*seen))
    if visibility is not None:
        if visibility != "all":
            conds.append(Image.visibility == visibility)
    elif project_id is None:
        conds.append(Image.visibility != "community")
    else:
        conds.append(or_(Image.owner == project_id, Image.visibility != "community"))
    return conds


def _sort_column(key: str) -> Any:
    column = getattr(Image, key)
    if key in _NULL_AS:
        return func.coalesce(column, literal(_NULL_AS[key]))
    return column


def _after_marker(keys: list[str], dirs: list[str], marker: Image) -> ColumnElement[bool]:
    """Rows after ``marker`` in the (keys, dirs) order: (k1 > v1) or (k1 = v1 and k2 > v2)..."""
    ors = []
    for i, key in enumerate(keys):
        ands = []
        for prev in keys[:i]:
            value = getattr(marker, prev)
            ands.append(_sort_column(prev) == (value if value is not None
                                                 else _NULL_AS.get(prev)))
        value = getattr(marker, key)
        value = value if value is not None else _NULL_AS.get(key)
        column = _sort_column(key)
        ands.append(column > value if dirs[i] == "asc" else column < value)
        ors.append(and_(*ands))
    return or_(*ors)


async def list_images(session: AsyncSession, q: Query, project_id: str | None,
                      is_admin: bool) -> tuple[list[ImageRecord], bool]:
    """A page of images and whether the page was full (Glance then offers ``next``)."""
    filters = dict(q.filters)
    visibility = filters.pop("visibility", None)
    if visibility is not None and visibility not in VISIBILITY_FILTERS:
        raise BadRequest(f"Invalid visibility value: {visibility}")
    query = Query(filters=filters, tags=q.tags, member_status=q.member_status)
    conds = [~Image.deleted, Image.status != "killed", *_conditions(query),
             *_visible(project_id, is_admin, q.member_status, visibility)]
    keys, dirs = list(q.sort_keys), list(q.sort_dirs)
    if len(dirs) == 1 and len(keys) > 1:
        dirs = dirs * len(keys)
    default_dir = dirs[0] if dirs else "desc"
    for key in ("created_at", "id"):
        if key not in keys:
            keys.append(key)
            dirs.append(default_dir)
    stmt = select(Image).where(*conds)
    if q.marker is not None:
        marker = await session.scalar(select(Image).where(Image.id == q.marker[:36],
                                                          ~Image.deleted))
        if marker is None:
            raise BadRequest(not_found(q.marker).message)
        stmt = stmt.where(_after_marker(keys, dirs, marker))
    order = [_sort_column(k).asc() if d == "asc" else _sort_column(k).desc()
             for k, d in zip(keys, dirs, strict=True)]
    rows = (await session.scalars(stmt.order_by(*order).limit(q.limit))).all()
    records = await load_many(session, rows)
    return records, len(rows) == q.limit and q.limit > 0
