"""``/v2/schemas/...``: the JSON schemas Glance publishes (images, members, tasks, metadefs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from stackling.common.errors import NotFound
from stackling.image.api.common import caller, json_response
from stackling.image.service.schema import UUID_PATTERN, collection_schema, image_schema

router = APIRouter()

_MEMBER: Final = {
    "member_id": {"type": "string",
                  "description": "An identifier for the image member (tenantId)"},
    "image_id": {"type": "string", "description": "An identifier for the image",
                 "pattern": UUID_PATTERN},
    "created_at": {"type": "string", "description": "Date and time of image member creation"},
    "updated_at": {"type": "string",
                   "description": "Date and time of last modification of image member"},
    "status": {"type": "string", "description": "The status of this image member",
               "enum": ["pending", "accepted", "rejected"]},
    "schema": {"readOnly": True, "type": "string"},
}

_TASK: Final = {
    "id": {"description": "An identifier for the task", "pattern": UUID_PATTERN,
           "type": "string"},
    "type": {"description": "The type of task represented by this content",
             "enum": ["import", "api_image_import", "location_import"], "type": "string"},
    "status": {"description": "The current status of this task",
               "enum": ["pending", "processing", "success", "failure"], "type": "string"},
    "input": {"description": "The parameters required by task, JSON blob",
              "type": ["null", "object"]},
    "result": {"description": "The result of current task, JSON blob",
               "type": ["null", "object"]},
    "owner": {"description": "An identifier for the owner of this task", "type": "string"},
    "message": {"description": "Human-readable informative message only included when "
                               "appropriate (usually on failure)", "type": "string"},
    "image_id": {"description": "Image associated with the task", "type": "string"},
    "request_id": {"description": "Human-readable informative request-id", "type": "string"},
    "user_id": {"description": "User associated with the task", "type": "string"},
    "expires_at": {"description": "Datetime when this resource would be subject to removal",
                   "type": ["null", "string"]},
    "created_at": {"description": "Datetime when this resource was created",
                   "type": "string"},
    "updated_at": {"description": "Datetime when this resource was updated",
                   "type": "string"},
    "self": {"readOnly": True, "type": "string"},
    "schema": {"readOnly": True, "type": "string"},
}

_PROPERTY_TYPE: Final = {
    "name": {"type": "string", "maxLength": 80},
    "title": {"type": "string"},
    "description": {"type": "string"},
    "operators": {"type": "array", "items": {"type": "string"}},
    "type": {"type": "string", "enum": ["array", "boolean", "integer", "number", "object",
                                        "string", None]},
    "required": {"$ref": "#/definitions/stringArray"},
    "minimum": {"type": "number"},
    "maximum": {"type": "number"},
    "maxLength": {"$ref": "#/definitions/positiveInteger"},
    "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "pattern": {"type": "string", "format": "regex"},
    "enum": {"type": "array"},
    "readonly": {"type": "boolean"},
    "default": {},
    "items": {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["array", "boolean", "integer", "number",
                                           "object", "string", None]},
        "enum": {"type": "array"}}},
    "maxItems": {"$ref": "#/definitions/positiveInteger"},
    "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "uniqueItems": {"type": "boolean", "default": False},
    "additionalItems": {"type": "boolean"},
}
_DEFINITIONS: Final = {
    "positiveInteger": {"type": "integer", "minimum": 0},
    "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"},
                                          {"default": 0}]},
    "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    "property": {"type": "object", "additionalProperties": {
        "type": "object", "required": ["title", "type"], "properties": _PROPERTY_TYPE}},
}
_STAMPS: Final = {
    "created_at": {"type": "string", "readOnly": True,
                   "description": "Date and time of creation", "format": "date-time"},
    "updated_at": {"type": "string", "readOnly": True,
                   "description": "Date and time of the last modification",
                   "format": "date-time"},
}
_ASSOCIATION: Final = {
    "name": {"type": "string", "maxLength": 80,
             "description": "Resource type names should be aligned with Heat resource types "
                            "whenever possible"},
    "prefix": {"type": "string", "maxLength": 80,
               "description": "Specifies the prefix to use for the given resource type."},
    "properties_target": {"type": "string", "maxLength": 80,
                          "description": "Some resource types allow more than one key / value "
                                         "pair per instance."},
    **_STAMPS,
}
_OBJECT: Final = {
    "name": {"type": "string", "maxLength": 80},
    "description": {"type": "string"},
    "required": {"$ref": "#/definitions/stringArray"},
    "properties": {"$ref": "#/definitions/property"},
    "schema": {"readOnly": True, "type": "string"},
    "self": {"readOnly": True, "type": "string"},
    **_STAMPS,
}
_TAG: Final = {"name": {"type": "string", "maxLength": 255}, **_STAMPS}
_NAMESPACE: Final = {
    "namespace": {"type": "string", "maxLength": 80,
                  "description": "The unique namespace text."},
    "display_name": {"type": "string", "maxLength": 80,
                     "description": "The user friendly name for the namespace."},
    "description": {"type": "string", "maxLength": 500,
                    "description": "Provides a user friendly description of the namespace."},
    "visibility": {"type": "string", "enum": ["public", "private"],
                   "description": "Scope of namespace accessibility."},
    "protected": {"type": "boolean",
                  "description": "If true, namespace will not be deletable."},
    "owner": {"type": "string", "maxLength": 255, "description": "Owner of the namespace."},
    "resource_type_associations": {"type": "array", "items": {"type": "object",
                                                              "properties": _ASSOCIATION}},
    "properties": {"$ref": "#/definitions/property"},
    "objects": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "description": {"type": "string"},
        "required": {"$ref": "#/definitions/stringArray"},
        "properties": {"$ref": "#/definitions/property"}}}},
    "tags": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}}}},
    "schema": {"readOnly": True, "type": "string"},
    "self": {"readOnly": True, "type": "string"},
    **_STAMPS,
}


def _item(name: str, properties: dict[str, Any], required: list[str] | None = None,
          definitions: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "properties": properties,
                           "additionalProperties": False}
    if definitions:
        doc["definitions"] = _DEFINITIONS
    if required:
        doc["required"] = required
    return doc


def _minimal_collection(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"name": name,
            "properties": {name: {"type": "array", "items": item},
                           "schema": {"type": "string"}},
            "links": [{"rel": "describedby", "href": "{schema}"}]}


def _metadef_collection(name: str, item: dict[str, Any]) -> dict[str, Any]:
    inner = dict(item)
    definitions = inner.pop("definitions", None)
    doc = collection_schema(name, inner)
    if definitions:
        doc["definitions"] = definitions
    return doc


def _task_stub() -> dict[str, Any]:
    return {k: v for k, v in _TASK.items() if k not in ("input", "result", "message")}


SCHEMAS: Final[dict[str, Callable[[], dict[str, Any]]]] = {
    "image": image_schema,
    "images": lambda: collection_schema("images", image_schema()),
    "member": lambda: {"name": "member", "properties": _MEMBER},
    "members": lambda: _minimal_collection("members", {"name": "member",
                                                       "properties": _MEMBER}),
    "task": lambda: {"name": "task", "properties": _TASK},
    "tasks": lambda: _minimal_collection("tasks", {"name": "task",
                                                   "properties": _task_stub()}),
    "metadefs/namespace": lambda: _item("namespace", _NAMESPACE, ["namespace"]),
    "metadefs/namespaces": lambda: _metadef_collection(
        "namespaces", _item("namespace", _NAMESPACE, ["namespace"])),
    "metadefs/resource_type": lambda: _item("resource_type_association", _ASSOCIATION,
                                            ["name"], definitions=False),
    "metadefs/resource_types": lambda: _metadef_collection(
        "resource_type_associations",
        _item("resource_type_association", _ASSOCIATION, ["name"], definitions=False)),
    "metadefs/object": lambda: _item("object", _OBJECT, ["name"]),
    "metadefs/objects": lambda: _metadef_collection("objects",
                                                    _item("object", _OBJECT, ["name"])),
    "metadefs/property": lambda: _item("property", {**_PROPERTY_TYPE},
                                       ["name", "title", "type"]),
    "metadefs/properties": lambda: _metadef_collection(
        "properties", _item("property", {**_PROPERTY_TYPE}, ["name", "title", "type"])),
    "metadefs/tag": lambda: _item("tag", _TAG, ["name"], definitions=False),
    "metadefs/tags": lambda: _metadef_collection("tags", _item("tag", _TAG, ["name"],
                                                               definitions=False)),
}


@router.get("/v2/schemas/{name:path}")
async def show_schema(request: Request, name: str) -> Response:
    await caller(request)
    factory = SCHEMAS.get(name)
    if factory is None:
        raise NotFound("The resource could not be found.")
    return json_response(factory())
