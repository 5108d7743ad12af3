"""The image JSON schema (Glance's base properties plus its bundled ``schema-image.json``)
and a small validator for it.

The schema is served at ``/v2/schemas/image(s)`` and checks create bodies and PATCH values:
core properties have their types and enums, known custom properties (``kernel_id``, ...)
theirs, and any other property must be a string (Glance's "permissive" schema).
"""

from __future__ import annotations

import re
from typing import Any, Final

from stackling.common.errors import BadRequest
from stackling.image.inspect import CONTAINER_FORMATS, DISK_FORMATS

UUID_PATTERN: Final = ("^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                       "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$")
STATUSES: Final = ("queued", "saving", "active", "killed", "deleted", "uploading", "importing",
                   "pending_delete", "deactivated")
VISIBILITIES: Final = ("community", "public", "private", "shared")


def _prop(types: str | list[str], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": types, "description": description, **extra}


BASE_PROPERTIES: Final[dict[str, dict[str, Any]]] = {
    "id": _prop("string", "An identifier for the image", pattern=UUID_PATTERN),
    "name": _prop(["null", "string"], "Descriptive name for the image", maxLength=255),
    "status": _prop("string", "Status of the image", readOnly=True, enum=list(STATUSES)),
    "visibility": _prop("string", "Scope of image accessibility", enum=list(VISIBILITIES)),
    "protected": _prop("boolean", "If true, image will not be deletable."),
    "os_hidden": _prop("boolean", "If true, image will not appear in default image list "
                                  "response."),
    "checksum": _prop(["null", "string"], "md5 hash of image contents.", readOnly=True,
                      maxLength=32),
    "os_hash_algo": _prop(["null", "string"], "Algorithm to calculate the os_hash_value",
                          readOnly=True, maxLength=64),
    "os_hash_value": _prop(["null", "string"], "Hexdigest of the image contents using the "
                           "algorithm specified by the os_hash_algo", readOnly=True,
                           maxLength=128),
    "owner": _prop(["null", "string"], "Owner of the image", maxLength=255),
    "size": _prop(["null", "integer"], "Size of image file in bytes", readOnly=True),
    "virtual_size": _prop(["null", "integer"], "Virtual size of image in bytes",
                          readOnly=True),
    "container_format": _prop(["null", "string"], "Format of the container",
                              enum=[None, *CONTAINER_FORMATS]),
    "disk_format": _prop(["null", "string"], "Format of the disk", enum=[None, *DISK_FORMATS]),
    "created_at": _prop("string", "Date and time of image registration", readOnly=True),
    "updated_at": _prop("string", "Date and time of the last image modification",
                        readOnly=True),
    "tags": _prop("array", "List of strings related to the image",
                  items={"type": "string", "maxLength": 255}),
    "direct_url": _prop("string", "URL to access the image file kept in external store",
                        readOnly=True),
    "min_ram": _prop("integer", "Amount of ram (in MB) required to boot image."),
    "min_disk": _prop("integer", "Amount of disk space (in GB) required to boot image."),
    "self": _prop("string", "An image self url", readOnly=True),
    "file": _prop("string", "An image file url", readOnly=True),
    "stores": _prop("string", "Store in which image data resides.  Only present when the "
                    "operator has enabled multiple stores.  May be a comma-separated list of "
                    "store identifiers.", readOnly=True),
    "schema": _prop("string", "An image schema url", readOnly=True),
    "locations": {
        "type": "array",
        "items": {"type": "object", "properties": {
            "url": {"type": "string", "maxLength": 255},
            "metadata": {"type": "object"},
            "validation_data": {
                "description": "Values to be used to populate the corresponding image "
                               "properties. If the image status is not 'queued', values "
                               "must exactly match those already contained in the image "
                               "properties.",
                "type": "object", "writeOnly": True, "additionalProperties": False,
                "properties": {
                    "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                    "os_hash_algo": {"type": "string", "maxLength": 64},
                    "os_hash_value": {"type": "string", "maxLength": 128}},
                "required": ["os_hash_algo", "os_hash_value"]}},
            "required": ["url", "metadata"]},
        "description": "A set of URLs to access the image file kept in external store",
    },
}

# Glance's etc/schema-image.json (the custom properties devstack and most clouds load)
CUSTOM_PROPERTIES: Final[dict[str, dict[str, Any]]] = {
    "kernel_id": _prop(["null", "string"], "ID of image stored in Glance that should be used "
                       "as the kernel when booting an AMI-style image.", pattern=UUID_PATTERN,
                       is_base=False),
    "ramdisk_id": _prop(["null", "string"], "ID of image stored in Glance that should be used "
                        "as the ramdisk when booting an AMI-style image.", pattern=UUID_PATTERN,
                        is_base=False),
    "instance_uuid": _prop("string", "Metadata which can be used to record which instance "
                           "this image is associated with. (Informational only, does not "
                           "create an instance snapshot.)", is_base=False),
    "architecture": _prop("string", "Operating system architecture as specified in "
                          "https://docs.openstack.org/python-glanceclient/latest/cli/"
                          "property-keys.html", is_base=False),
    "os_distro": _prop("string", "Common name of operating system distribution as specified "
                       "in https://docs.openstack.org/python-glanceclient/latest/cli/"
                       "property-keys.html", is_base=False),
    "os_version": _prop("string", "Operating system version as specified by the "
                        "distributor.", is_base=False),
    "description": _prop("string", "A human-readable string describing this image.",
                         is_base=False),
    "cinder_encryption_key_id": _prop("string", "Identifier in the OpenStack Key Management "
                                      "Service for the encryption key for the Block Storage "
                                      "Service to use when mounting a volume created from "
                                      "this image", is_base=False),
    "cinder_encryption_key_deletion_policy": _prop(
        "string", "States the condition under which the Image Service will delete the object "
        "associated with the 'cinder_encryption_key_id' image property.  If this property is "
        "missing, the Image Service will take no action", is_base=False,
        enum=["on_image_deletion", "do_not_delete"]),
}

PROPERTIES: Final = {**BASE_PROPERTIES, **CUSTOM_PROPERTIES}
LINKS: Final = [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
                {"rel": "describedby", "href": "{schema}"}]


def image_schema() -> dict[str, Any]:
    return {"name": "image", "properties": PROPERTIES,
            "additionalProperties": {"type": "string"}, "links": LINKS}


def images_schema() -> dict[str, Any]:
    return collection_schema("images", image_schema())


def collection_schema(name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {name: {"type": "array", "items": item},
                       "first": {"type": "string"}, "next": {"type": "string"},
                       "schema": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


# --- validation ---------------------------------------------------------------------------

_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "string": (str,), "integer": (int,), "boolean": (bool,), "array": (list,),
    "object": (dict,), "number": (int, float), "null": (type(None),),
}


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def _type_text(types: list[str]) -> str:
    return ", ".join(repr(t) for t in types)


def check_value(name: str, value: Any, spec: dict[str, Any]) -> str | None:
    """Why ``value`` does not fit ``spec`` (jsonschema's wording), or None."""
    types = spec.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if types and not any(_is(value, t) for t in types):
        return f"{value!r} is not of type {_type_text(types)}"
    if "enum" in spec and value not in spec["enum"]:
        return f"{value!r} is not one of {spec['enum']!r}"
    if isinstance(value, str):
        if "maxLength" in spec and len(value) > spec["maxLength"]:
            return f"{value!r} is too long"
        if "minLength" in spec and len(value) < spec["minLength"]:
            return f"{value!r} is too short"
        if "pattern" in spec and not re.search(spec["pattern"], value):
            return f"{value!r} does not match {spec['pattern']!r}"
    if isinstance(value, list) and "items" in spec:
        for item in value:
            problem = check_value(name, item, spec["items"])
            if problem:
                return problem
    return None


def validate(body: dict[str, Any], schema_name: str = "image") -> None:
    """Raise 400 (Glance's message) when ``body`` does not fit the image schema."""
    for name, value in body.items():
        spec = PROPERTIES.get(name, {"type": "string"})
        problem = check_value(name, value, spec)
        if problem:
            raise BadRequest(f"Provided object does not match schema '{schema_name}': "
                             f"{problem}")
