"""``PATCH /v2/images/{id}``: Glance's JSON-patch dialects, parsed and applied to an image.

Two media types: ``application/openstack-images-v2.1-json-patch`` (RFC 6902 style,
``{"op": "replace", "path": "/name", "value": ...}``) and the older
``application/openstack-images-v2.0-json-patch`` (``{"replace": "/name", "value": ...}``,
where ``add`` of an existing property is a conflict). Paths are one level deep (``/name``,
``/tags``, ``/os_distro``), except ``/locations/N``.

:func:`apply` works on a copy of the record; the caller saves it with a compare-and-swap
on the image's revision. Each change is shown to ``check(name, value)`` first (the API's
policy hook: visibility changes need their own rule, owner changes need admin).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from stackling.common.errors import BadRequest, Conflict, Forbidden, UnsupportedMediaType
from stackling.image.service import schema
from stackling.image.service.records import CORE_FIELDS, RESERVED_PREFIX, ImageRecord

MEDIA_TYPES: Final = {
    "application/openstack-images-v2.0-json-patch": 4,
    "application/openstack-images-v2.1-json-patch": 10,
}
OPERATIONS: Final = ("add", "remove", "replace")
READ_ONLY: Final = ("created_at", "updated_at", "status", "checksum", "size", "virtual_size",
                    "direct_url", "self", "file", "schema", "id", "os_hash_algo",
                    "os_hash_value", "stores")
RESERVED: Final = ("location", "deleted", "deleted_at")
_DEPTH: Final = {"locations": {"add": 2, "remove": 2, "replace": 1}}


@dataclass
class Change:
    op: str
    path: list[str]
    value: Any = None
    draft: int = 10

    @property
    def root(self) -> str:
        return self.path[0]


class UnsupportedPatchType(UnsupportedMediaType):
    headers = {"Accept-Patch": ", ".join(sorted(MEDIA_TYPES))}


def media_type_draft(content_type: str | None) -> int:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in MEDIA_TYPES:
        allowed = ", ".join(sorted(MEDIA_TYPES))
        raise UnsupportedPatchType(f"Image PATCH expects Content-Type one of: {allowed}")
    return MEDIA_TYPES[media]


def _pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str):
        raise BadRequest("Pointer must be a string.")
    if not pointer.startswith("/"):
        raise BadRequest(f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        raise BadRequest(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise BadRequest(f'Pointer `{pointer}` end with "/".')
    if pointer[1:].strip() == "/":
        raise BadRequest(f"Pointer `{pointer}` does not contains valid token.")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise BadRequest(f'Pointer `{pointer}` contains "~" not part of a recognized escape '
                         "sequence.")
    return [p.replace("~1", "/").replace("~0", "~").strip()
            for p in pointer.lstrip("/").split("/")]


def parse(body: Any, draft: int) -> list[Change]:
    """The request body as changes (400/403 for what Glance refuses before applying)."""
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise BadRequest("Operations must be JSON objects.")
        if draft == 10:
            op = raw.get("op")
            if op is None:
                raise BadRequest("Unable to find `op` in JSON Schema change. It must be one of "
                                 "the following: add, remove, replace.")
            if op not in OPERATIONS:
                raise BadRequest(f"Invalid operation: `{op}`. It must be one of the "
                                 "following: add, remove, replace.")
            if "path" not in raw:
                raise BadRequest("Unable to find 'path' in JSON Schema change")
            path = _pointer(raw["path"])
        else:
            ops = [k for k in OPERATIONS if k in raw]
            if len(ops) > 1:
                raise BadRequest('Operation objects must contain only one member named "add", '
                                 '"remove", or "replace".')
            if not ops:
                raise BadRequest('Operation objects must contain exactly one member named '
                                 '"add", "remove", or "replace".')
            op = ops[0]
            path = _pointer(raw[op])
        if len(path) != _DEPTH.get(path[0], {}).get(op, 1):
            raise BadRequest(f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'")
        change = Change(op, path, draft=draft)
        if op != "remove":
            if "value" not in raw:
                raise BadRequest(f'Operation "{op}" requires a member named "value".')
            change.value = raw["value"]
        _validate(change)
        changes.append(change)
    return changes


def _validate(change: Change) -> None:
    root = change.root
    if root in READ_ONLY:
        raise Forbidden(f"Attribute '{root}' is read-only.")
    if root in RESERVED or root.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{root}' is reserved.")
    if change.op == "remove" or root == "locations":
        return
    if len(root) > 255:
        raise BadRequest("Custom property should not be greater than 255 characters.")
    schema.validate({root: change.value})


Check = Callable[[str, Any], None]


def apply(record: ImageRecord, changes: list[Change], check: Check, is_admin: bool
          ) -> ImageRecord:
    """The image after ``changes`` (a copy); raises 403/409/400 as Glance does."""
    new = record.copy()
    for change in changes:
        root, value = change.root, change.value
        if root == "locations":
            verb = "remove" if change.op == "remove" else "add"
            raise Forbidden(f"It's not allowed to {verb} locations if locations are "
                            "invisible.")
        if change.op == "replace" and root == "owner" and not is_admin:
            raise Forbidden("Owner can't be updated by non admin.")
        check(root, value)
        if change.op == "remove":
            if root in CORE_FIELDS or root == "tags":
                raise Forbidden(f"Property {root} may not be removed.")
            if root not in new.properties:
                raise Conflict(f"Property {root} does not exist.")
            del new.properties[root]
            continue
        exists = root in CORE_FIELDS or root == "tags" or root in new.properties
        if change.op == "replace" and not exists:
            raise Conflict(f"Property {root} does not exist.")
        if change.op == "add" and exists and change.draft == 4:
            raise Conflict(f"Property {root} already present.")
        _set(new, record, root, value)
    return new


def _set(new: ImageRecord, old: ImageRecord, root: str, value: Any) -> None:
    if root == "tags":
        new.tags = list(dict.fromkeys(value))
    elif root in ("disk_format", "container_format"):
        if old.status not in ("queued", "importing") and value != getattr(old, root):
            raise Forbidden(f"Attribute {root} can be only replaced for a queued image.")
        setattr(new, root, value)
    elif root in ("min_disk", "min_ram"):
        if value is not None and value < 0:
            raise BadRequest(f"Invalid value '{value}' for parameter '{root}': Cannot be a "
                             "negative value.")
        setattr(new, root, value)
    elif root in CORE_FIELDS:
        setattr(new, root, value)
    else:
        new.properties[root] = value


def diff(old: ImageRecord, new: ImageRecord) -> tuple[dict[str, Any], dict[str, Any],
                                                       list[str] | None]:
    """(core field changes, property changes with ``REMOVE`` markers, new tags or None)."""
    from stackling.image.service.records import REMOVE

    core = {f: getattr(new, f) for f in CORE_FIELDS if getattr(new, f) != getattr(old, f)}
    props: dict[str, Any] = {k: v for k, v in new.properties.items()
                             if k not in old.properties or old.properties[k] != v}
    props.update({k: REMOVE for k in old.properties if k not in new.properties})
    tags = new.tags if new.tags != old.tags else None
    return core, props, tags
