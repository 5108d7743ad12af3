"""List filters as Keystone applies them to rendered references.

A filter compares one attribute of a reference (``name``, ``enabled``, ``domain_id``...) with
the query-string value: booleans compare as booleans, everything else as strings, and the
inexact comparators (``contains``, ``startswith``, ``endswith``, optionally case-insensitive)
work on strings only. Collections in identity are small, so filtering after loading is fine.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stackling.common.errors import ValidationError
from stackling.common.timeutils import as_aware, parse_isotime

TRUE_WORDS = frozenset({"true", "1", "y", "yes", "on", ""})
FALSE_WORDS = frozenset({"false", "0", "n", "no", "off"})


@dataclass(frozen=True, slots=True)
class Filter:
    name: str
    value: str
    comparator: str = "equals"
    case_sensitive: bool = True


def as_bool(name: str, value: str) -> bool:
    word = value.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValidationError(f"Invalid input for field '{name}': {value!r} is not a boolean.")


def _matches(ref: dict[str, Any], f: Filter) -> bool:
    actual = ref.get(f.name)
    if f.comparator == "equals":
        if isinstance(actual, bool):
            return actual == as_bool(f.name, f.value)
        return actual is not None and str(actual) == f.value
    if not isinstance(actual, str):
        return False
    wanted, actual_s = f.value, actual
    if not f.case_sensitive:
        wanted, actual_s = wanted.lower(), actual_s.lower()
    if f.comparator == "contains":
        return wanted in actual_s
    if f.comparator == "startswith":
        return actual_s.startswith(wanted)
    if f.comparator == "endswith":
        return actual_s.endswith(wanted)
    return True


def apply_filters(refs: list[dict[str, Any]], filters: list[Filter]) -> list[dict[str, Any]]:
    for f in filters:
        if f.comparator == "equals" and f.name in ("enabled", "is_domain"):
            as_bool(f.name, f.value)  # a bad boolean is a 400 even when nothing matches
        refs = [r for r in refs if _matches(r, f)]
    return refs


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge,
    "eq": operator.eq, "neq": operator.ne,
}


def expiry_filter(value: str) -> Callable[[datetime | None], bool]:
    """``password_expires_at=<op>:<timestamp>`` (op defaults to ``eq``), as Keystone reads it."""
    if ":" in value[2:4]:
        op_name, stamp = value.split(":", 1)
    else:
        op_name, stamp = "eq", value
    op = _OPERATORS.get(op_name)
    if op is None:
        raise ValidationError(f"The operator {op_name!r} is invalid; valid operators are "
                              "lt, lte, gt, gte, eq and neq.")
    try:
        when = parse_isotime(stamp)
    except ValueError as exc:
        raise ValidationError("Timestamp not in expected format. The server could not comply "
                              "with the request since it is either malformed or otherwise "
                              "incorrect. The client is assumed to be in error.") from exc

    def check(expires: datetime | None) -> bool:
        return expires is not None and op(as_aware(expires), when)

    return check
