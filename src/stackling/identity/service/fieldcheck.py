"""Request-body field checks with Keystone's JSON-schema semantics and 400 messages.

Keystone validates bodies with JSON schema; a failure is 400 with ``Invalid input for field
'<name>': <reason>``. These helpers restate the few schema keywords the catalog, limit and
endpoint-group bodies use: required, type (strict: ``"true"`` is not a boolean, ``True`` is
not an integer), nullable, length, pattern, enum, minimum/maximum and additionalProperties.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from stackling.common.errors import ValidationError

# Keystone's parameter_types: ids are short alphanumerics with dashes, names non-blank.
ID_PATTERN = re.compile(r"^[a-zA-Z0-9-]+$")
NAME_PATTERN = re.compile(r"[\S]+")
URL_PATTERN = re.compile(r"^[a-zA-Z0-9+.-]+:.+")


def invalid(field: str, reason: str) -> ValidationError:
    return ValidationError(f"Invalid input for field '{field}': {reason}")


def only(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """additionalProperties: false."""
    extra = sorted(set(body) - set(allowed))
    if extra:
        names = ", ".join(repr(k) for k in extra)
        raise ValidationError(f"Invalid input for field '{extra[0]}': Additional properties "
                              f"are not allowed ({names} {'was' if len(extra) == 1 else 'were'}"
                              " unexpected)")


def not_empty(body: Mapping[str, Any], what: str) -> None:
    """minProperties: 1."""
    if not body:
        raise ValidationError(f"Invalid input for field '{what}': {{}} does not have enough "
                              "properties")


def string(body: Mapping[str, Any], key: str, *, required: bool = False,
           nullable: bool = False, min_len: int = 0, max_len: int | None = None,
           pattern: re.Pattern[str] | None = None) -> str | None:
    """The string at ``key`` (None when absent, or null and ``nullable``)."""
    if key not in body:
        if required:
            raise invalid(key, f"'{key}' is a required property")
        return None
    value = body[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise invalid(key, f"{value!r} is not of type 'string'")
    if len(value) < min_len:
        raise invalid(key, f"{value!r} is too short")
    if max_len is not None and len(value) > max_len:
        raise invalid(key, f"{value!r} is too long")
    if pattern is not None and not pattern.search(value):
        raise invalid(key, f"{value!r} does not match {pattern.pattern!r}")
    return value


def boolean(body: Mapping[str, Any], key: str) -> bool | None:
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, bool):
        raise invalid(key, f"{value!r} is not of type 'boolean'")
    return value


def integer(body: Mapping[str, Any], key: str, *, required: bool = False,
            minimum: int | None = None, maximum: int | None = None) -> int | None:
    if key not in body:
        if required:
            raise invalid(key, f"'{key}' is a required property")
        return None
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(key, f"{value!r} is not of type 'integer'")
    if minimum is not None and value < minimum:
        raise invalid(key, f"{value!r} is less than the minimum of {minimum}")
    if maximum is not None and value > maximum:
        raise invalid(key, f"{value!r} is greater than the maximum of {maximum}")
    return value


def choice(body: Mapping[str, Any], key: str, choices: tuple[str, ...], *,
           required: bool = False) -> str | None:
    if key not in body:
        if required:
            raise invalid(key, f"'{key}' is a required property")
        return None
    value = body[key]
    if value not in choices:
        raise invalid(key, f"{value!r} is not one of {list(choices)!r}")
    return str(value)


def matching_id(body: Mapping[str, Any], entity_id: str) -> None:
    """Keystone's ``_require_matching_id``: an ``id`` in a PATCH body must be the URL's."""
    if body.get("id") is not None and body["id"] != entity_id:
        raise ValidationError("Cannot change ID")
