"""Access rules of application credentials: which API calls a token may make.

A token issued from an application credential with access rules carries them (identity's
token body: ``application_credential.access_rules``, a list of ``{service, method, path}``).
Every service then lets such a token through only for a request that one rule matches: the
rule's ``service`` is one of the service's catalog types, its ``method`` is the request's and
its ``path`` matches the path below the service's root (``/v2.1/servers/{id}`` for
``/compute/v2.1/servers/...``). In a path, ``*`` and ``{name}`` stand for one path segment,
``**`` for any number of them. Anything else is refused as keystonemiddleware refuses it
(401). A token may always validate itself (``GET /v3/auth/tokens`` on identity).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

__all__ = ["HEADER", "VERSION", "path_matches", "permits"]

#: a validator sends this header (at least this version) to say it enforces access rules;
#: identity refuses to validate a token that has rules for one that does not (404)
HEADER = "OpenStack-Identity-Access-Rules"
VERSION = "1.0"

_TOKEN = re.compile(r"(?P<tag>\{[^}]*\})|(?P<deep>\*\*)|(?P<one>\*)|(?P<text>[^{*]+|[{])")


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts = []
    for m in _TOKEN.finditer(pattern):
        if m.group("tag") or m.group("one"):
            parts.append(r"[^/]+")
        elif m.group("deep"):
            parts.append(r".*")
        else:
            parts.append(re.escape(m.group("text")))
    return re.compile("".join(parts))


def path_matches(path: str, pattern: str) -> bool:
    """Whether ``path`` (no query string) matches an access rule's ``pattern``."""
    return _compiled(pattern).fullmatch(path) is not None


def permits(rules: Iterable[dict[str, Any]], service_types: Sequence[str], method: str,
            path: str) -> bool:
    """Whether one of ``rules`` allows ``method path`` on a service of ``service_types``."""
    if "identity" in service_types and method == "GET" and path.endswith("/v3/auth/tokens"):
        return True  # a token may always be validated
    for rule in rules:
        if (rule.get("service") in service_types and rule.get("method") == method
                and isinstance(rule.get("path"), str) and path_matches(path, rule["path"])):
            return True
    return False
