"""Request checks shared by the domain, project, user and group APIs.

Each function checks one field the way Keystone's JSON schemas do (``keystone/resource/
schema.py``, ``keystone/identity/schema.py``) and returns the value to store; a bad value is a
400 naming the field. Collection helpers parse Keystone's list filters (``name``,
``name__icontains``, booleans, tags) and its ``limit``/``marker`` paging.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import Response

from stackling.common.errors import NotFound, ValidationError
from stackling.identity.api.common import base_url, json_response
from stackling.identity.service.listing import (
    FALSE_WORDS,
    TRUE_WORDS,
    Filter,
    apply_filters,
)

_ID = re.compile(r"^[a-zA-Z0-9-]+$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_TAG_FORBIDDEN = re.compile(r"[,/]")
MAX_TAGS = 80
MAX_LIST = 1000  # Keystone's max_db_limit
INEXACT = ("contains", "icontains", "startswith", "istartswith", "endswith", "iendswith")


def bad(field: str, why: str) -> ValidationError:
    return ValidationError(f"Invalid input for field '{field}': {why}")


def name(value: Any, field: str = "name", max_len: int = 64) -> str:
    if not isinstance(value, str):
        raise bad(field, f"{value!r} is not of type 'string'")
    if len(value) < 1:
        raise bad(field, f"{value!r} is too short")
    if len(value) > max_len:
        raise bad(field, f"{value!r} is too long")
    if not re.search(r"\S", value):
        raise bad(field, f"{value!r} does not match '[\\S]+'")
    return value


def text(value: Any, field: str, nullable: bool = True) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise bad(field, f"{value!r} is not of type 'string'")
    return value


def boolean(value: Any, field: str) -> bool:
    """A JSON boolean, or one of the strings Keystone's schema lets through."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise bad(field, f"{value!r} is not of type 'boolean'")


def ident(value: Any, field: str, nullable: bool = True) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not _ID.match(value):
        raise bad(field, f"{value!r} is not a valid id")
    return value


def explicit_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _HEX32.match(value):
        raise ValidationError("Domain ID does not conform to required UUID format.")
    return value


def tag(value: Any, field: str = "tags") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        raise bad(field, f"{value!r} must be a string of 1 to 255 characters")
    if _TAG_FORBIDDEN.search(value):
        raise bad(field, f"{value!r} must not contain ',' or '/'")
    return value


def tags(value: Any, field: str = "tags") -> list[str]:
    if not isinstance(value, list):
        raise bad(field, f"{value!r} is not of type 'array'")
    if len(value) > MAX_TAGS:
        raise bad(field, f"at most {MAX_TAGS} tags are allowed")
    out = [tag(v, field) for v in value]
    if len(set(out)) != len(out):
        raise bad(field, f"{value!r} has non-unique elements")
    return out


def obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(field, f"{value!r} is not of type 'object'")
    return value


PROJECT_OPTIONS = {"immutable": "bool"}
USER_OPTIONS = {
    "ignore_change_password_upon_first_use": "bool",
    "ignore_password_expiry": "bool",
    "ignore_lockout_failure_attempts": "bool",
    "lock_password": "bool",
    "ignore_user_inactivity": "bool",
    "multi_factor_auth_enabled": "bool",
    "multi_factor_auth_rules": "rules",
}


def _mfa_rules(value: Any, field: str) -> list[list[str]]:
    if not isinstance(value, list):
        raise bad(field, "must be a list of lists of strings")
    seen: list[list[str]] = []
    for rule in value:
        if (not isinstance(rule, list) or not rule or rule in seen
                or not all(isinstance(m, str) for m in rule) or len(set(rule)) != len(rule)):
            raise bad(field, "must be a list of non-empty, unique lists of unique strings")
        seen.append(rule)
    return seen


def options(value: Any, allowed: dict[str, str], field: str = "options") -> dict[str, Any]:
    """Resource options: known names only; ``null`` means "unset" (kept as None here)."""
    found = obj(value, field)
    out: dict[str, Any] = {}
    for key, item in found.items():
        kind = allowed.get(key)
        if kind is None:
            raise bad(field, f"additional property {key!r} is not allowed")
        if item is None:
            out[key] = None
        elif kind == "bool":
            if not isinstance(item, bool):
                raise bad(f"{field}.{key}", f"{item!r} is not of type 'boolean'")
            out[key] = item
        else:
            out[key] = _mfa_rules(item, f"{field}.{key}")
    return out


def normalize_keys(ref: dict[str, Any]) -> dict[str, Any]:
    """Keystone's ``_normalize_dict`` on create: ``:`` and ``-`` in keys become ``_``."""
    return {k.replace(":", "_").replace("-", "_"): v for k, v in ref.items()}


# -- listing --------------------------------------------------------------------------------


def filters(request: Request, supported: tuple[str, ...]) -> list[Filter]:
    """Exact (``name=x``) and inexact (``name__icontains=x``) filters Keystone honours."""
    out: list[Filter] = []
    for key, value in request.query_params.multi_items():
        if key in supported:
            out.append(Filter(key, value))
            continue
        base, sep, comparator = key.partition("__")
        if sep and base in supported and comparator in INEXACT:
            sensitive = not comparator.startswith("i")
            out.append(Filter(base, value, comparator.lstrip("i") if not sensitive
                              else comparator, sensitive))
    return out


def collection(request: Request, key: str, refs: list[dict[str, Any]],
               applied: list[Filter] | None = None) -> Response:
    """Filter, page (``limit``/``marker``, by id) and wrap a list the way Keystone does."""
    refs = apply_filters(refs, applied or [])
    params = request.query_params
    limit_raw, marker = params.get("limit"), params.get("marker")
    truncated = False
    next_url: str | None = None
    if limit_raw or marker:
        refs = sorted(refs, key=lambda r: str(r["id"]))
        if marker:
            ids = [r["id"] for r in refs]
            if marker not in ids:
                raise NotFound(f"Marker {marker} could not be found.")
            refs = refs[ids.index(marker) + 1:]
        limit = MAX_LIST
        if limit_raw:
            try:
                limit = min(int(limit_raw), MAX_LIST)
            except ValueError as exc:
                raise bad("limit", f"{limit_raw!r} is not an integer") from exc
            if limit < 0:
                raise bad("limit", "must not be negative")
        if len(refs) > limit:
            truncated = True
            refs = refs[:limit]
            if refs:
                query = [(k, v) for k, v in params.multi_items() if k not in ("marker", "limit")]
                query += [("marker", str(refs[-1]["id"])), ("limit", str(limit))]
                next_url = f"{_path_url(request)}?{urlencode(query)}"
    self_url = _path_url(request)
    if request.url.query:
        self_url = f"{self_url}?{request.url.query}"
    body: dict[str, Any] = {key: refs,
                            "links": {"self": self_url, "previous": None, "next": next_url}}
    if truncated:
        body["truncated"] = True
    return json_response(body)


def _path_url(request: Request) -> str:
    return f"{base_url(request)}{request.url.path.split('/identity', 1)[-1]}"


def member(request: Request, collection_name: str, key: str, ref: dict[str, Any],
           status: int = 200) -> Response:
    ref["links"] = {"self": f"{base_url(request)}/v3/{collection_name}/{ref['id']}"}
    return json_response({key: ref}, status=status)


def with_link(request: Request, collection_name: str, ref: dict[str, Any]) -> dict[str, Any]:
    ref["links"] = {"self": f"{base_url(request)}/v3/{collection_name}/{ref['id']}"}
    return ref


def no_body(request: Request, status: int = 200) -> Response:
    """HEAD answers (and 204s): status and headers, never a body."""
    return Response(status_code=status)
