"""Policy enforcement in oslo.policy's rule language.

Operators already know this language and keep ``policy.yaml`` overrides written in it, so we
accept the same strings::

    "identity:get_user": "(role:reader and system_scope:all) or user_id:%(target.user.id)s"

Grammar (as oslo.policy): ``not`` binds tightest, then ``and``, then ``or``; parentheses group;
keywords are case-insensitive. Checks:

- ``@`` always passes, ``!`` never does; an empty rule always passes.
- ``rule:<name>`` evaluates another rule (an unknown name fails closed).
- ``role:<name>`` passes when ``creds["roles"]`` holds that role, compared case-insensitively.
- ``<attr>:<value>``: ``<value>`` after ``%(path)s`` substitution from the target must equal
  ``str()`` of ``creds[<attr>]`` (``<attr>`` may be a dotted path into nested creds; a list on
  the way matches when any element matches). When ``<attr>`` is a Python literal (``True``,
  ``None``, ``'member'``, ``1``) it is compared with the substituted value instead.

Differences from oslo.policy, all on the side of failing closed or of saying so early: a rule
that does not parse raises :class:`PolicyParseError` when loaded instead of silently becoming
``!``; a rule that refers to itself (directly or not) is rejected at load; ``http:`` checks are
not supported. Two small conveniences: a value written as a quoted string (``project_id:'x'``)
is compared without its quotes, and a boolean credential matches ``1``/``0`` (so Keystone's
``is_admin:1`` works with a boolean ``is_admin``).

Target paths like ``%(target.user.domain_id)s`` are looked up as a flat key first (Keystone
flattens its targets), then by walking nested dicts. A missing key makes that check fail; it
never raises.

Rules are compiled once into a small tree of check objects; evaluation does no parsing.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from stackling.common.errors import Forbidden

LOG = logging.getLogger(__name__)

__all__ = [
    "ADMIN_OR_CRED_OWNER",
    "ADMIN_OR_SYSTEM_READER_OR_OWNER",
    "BASE_RULES",
    "DOMAIN_ADMIN",
    "DOMAIN_MANAGER",
    "DOMAIN_MANAGER_ALLOWED_ROLES",
    "DOMAIN_MEMBER",
    "DOMAIN_READER",
    "PROJECT_ADMIN",
    "PROJECT_MEMBER",
    "PROJECT_READER",
    "RULE_ADMIN_OR_OWNER",
    "RULE_ADMIN_OR_SYSTEM_READER",
    "RULE_ADMIN_OR_TOKEN_SUBJECT",
    "RULE_ADMIN_REQUIRED",
    "RULE_OWNER",
    "RULE_SERVICE_ADMIN_OR_TOKEN_SUBJECT",
    "RULE_SERVICE_OR_ADMIN",
    "RULE_SYSTEM_ADMIN_OR_OWNER",
    "SYSTEM_ADMIN",
    "SYSTEM_MEMBER",
    "SYSTEM_READER",
    "PolicyEnforcer",
    "PolicyError",
    "PolicyNotRegistered",
    "PolicyParseError",
    "parse_rule",
]

# --- Keystone's shared check strings (keystone/common/policies/base.py) ----------------------

RULE_ADMIN_REQUIRED: Final = "rule:admin_required"
RULE_OWNER: Final = "user_id:%(user_id)s"
RULE_ADMIN_OR_OWNER: Final = "rule:admin_or_owner"
RULE_ADMIN_OR_TOKEN_SUBJECT: Final = "rule:admin_or_token_subject"  # noqa: S105
RULE_SERVICE_ADMIN_OR_TOKEN_SUBJECT: Final = "rule:service_admin_or_token_subject"  # noqa: S105
RULE_SERVICE_OR_ADMIN: Final = "rule:service_or_admin"

SYSTEM_READER: Final = "role:reader and system_scope:all"
SYSTEM_MEMBER: Final = "role:member and system_scope:all"
SYSTEM_ADMIN: Final = "role:admin and system_scope:all"
DOMAIN_READER: Final = "role:reader and domain_id:%(target.domain_id)s"
DOMAIN_MEMBER: Final = "role:member and domain_id:%(target.domain_id)s"
DOMAIN_MANAGER: Final = "role:manager and domain_id:%(target.domain_id)s"
DOMAIN_ADMIN: Final = "role:admin and domain_id:%(target.domain_id)s"
# The project shorthands other services (nova, cinder, neutron, glance) use.
PROJECT_READER: Final = "role:reader and project_id:%(project_id)s"
PROJECT_MEMBER: Final = "role:member and project_id:%(project_id)s"
PROJECT_ADMIN: Final = "role:admin and project_id:%(project_id)s"

RULE_SYSTEM_ADMIN_OR_OWNER: Final = "(" + SYSTEM_ADMIN + ") or rule:owner"
RULE_ADMIN_OR_SYSTEM_READER: Final = "rule:admin_required or (" + SYSTEM_READER + ")"
ADMIN_OR_SYSTEM_READER_OR_OWNER: Final = (
    "(" + RULE_ADMIN_REQUIRED + ") or (" + SYSTEM_READER + ") or rule:owner"
)
ADMIN_OR_CRED_OWNER: Final = (
    "(" + RULE_ADMIN_REQUIRED + ") or user_id:%(target.credential.user_id)s"
)
# Roles a domain manager may assign or revoke (nothing above "manager").
DOMAIN_MANAGER_ALLOWED_ROLES: Final = (
    "'manager':%(target.role.name)s or "
    "'member':%(target.role.name)s or "
    "'reader':%(target.role.name)s"
)

BASE_RULES: Final[Mapping[str, str]] = {
    "admin_required": "role:admin or is_admin:1",
    "service_role": "role:service",
    "service_or_admin": "rule:admin_required or rule:service_role",
    "owner": RULE_OWNER,
    "admin_or_owner": "rule:admin_required or rule:owner",
    "token_subject": "user_id:%(target.token.user_id)s",
    "admin_or_token_subject": "rule:admin_required or rule:token_subject",
    "service_admin_or_token_subject": "rule:service_or_admin or rule:token_subject",
    "domain_managed_target_role": DOMAIN_MANAGER_ALLOWED_ROLES,
}


# --- errors --------------------------------------------------------------------------------


class PolicyError(Exception):
    """Base class of policy configuration errors (these are bugs or bad files, not 403s)."""


class PolicyParseError(PolicyError, ValueError):
    """A rule string is not valid policy language."""


class PolicyNotRegistered(PolicyError, KeyError):
    """``enforce`` was asked about a rule that has no default and no override."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule

    def __str__(self) -> str:
        return f"Policy rule {self.rule!r} is not registered"


# --- check tree ----------------------------------------------------------------------------


class _Eval:
    """Per-call evaluation state: the inputs plus a lazily built lower-cased role set."""

    __slots__ = ("_roles", "creds", "rules", "target")

    def __init__(
        self, rules: Mapping[str, Check], target: Mapping[str, Any], creds: Mapping[str, Any]
    ) -> None:
        self.rules = rules
        self.target = target
        self.creds = creds
        self._roles: frozenset[str] | None = None

    @property
    def roles(self) -> frozenset[str]:
        if self._roles is None:
            raw = self.creds.get("roles") or ()
            self._roles = frozenset(str(r).lower() for r in raw)
        return self._roles


class Check:
    """A compiled node. ``str()`` gives back an equivalent rule string."""

    __slots__ = ()

    def __call__(self, ev: _Eval) -> bool:
        raise NotImplementedError

    def rule_refs(self) -> Iterator[str]:
        """Names of rules this check refers to with ``rule:``."""
        return iter(())


class TrueCheck(Check):
    __slots__ = ()

    def __call__(self, ev: _Eval) -> bool:
        return True

    def __str__(self) -> str:
        return "@"


class FalseCheck(Check):
    __slots__ = ()

    def __call__(self, ev: _Eval) -> bool:
        return False

    def __str__(self) -> str:
        return "!"


class NotCheck(Check):
    __slots__ = ("check",)

    def __init__(self, check: Check) -> None:
        self.check = check

    def __call__(self, ev: _Eval) -> bool:
        return not self.check(ev)

    def rule_refs(self) -> Iterator[str]:
        return self.check.rule_refs()

    def __str__(self) -> str:
        return f"not {self.check}"


class AndCheck(Check):
    __slots__ = ("checks",)

    def __init__(self, checks: list[Check]) -> None:
        self.checks = tuple(checks)

    def __call__(self, ev: _Eval) -> bool:
        for check in self.checks:
            if not check(ev):
                return False
        return True

    def rule_refs(self) -> Iterator[str]:
        for c in self.checks:
            yield from c.rule_refs()

    def __str__(self) -> str:
        return "(" + " and ".join(str(c) for c in self.checks) + ")"


class OrCheck(Check):
    __slots__ = ("checks",)

    def __init__(self, checks: list[Check]) -> None:
        self.checks = tuple(checks)

    def __call__(self, ev: _Eval) -> bool:
        for check in self.checks:
            if check(ev):
                return True
        return False

    def rule_refs(self) -> Iterator[str]:
        for c in self.checks:
            yield from c.rule_refs()

    def __str__(self) -> str:
        return "(" + " or ".join(str(c) for c in self.checks) + ")"


class RuleCheck(Check):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, ev: _Eval) -> bool:
        check = ev.rules.get(self.name)
        return check is not None and check(ev)

    def rule_refs(self) -> Iterator[str]:
        yield self.name

    def __str__(self) -> str:
        return f"rule:{self.name}"


_MISSING: Final = object()


def _lookup(node: Any, parts: tuple[str, ...]) -> Any:
    """Resolve a dotted path in nested mappings, preferring the longest flat key at each level.

    ``{"target.user.id": x}``, ``{"target": {"user.id": x}}`` and
    ``{"target": {"user": {"id": x}}}`` all resolve ``target.user.id``. Returns ``_MISSING``.
    """
    if not isinstance(node, Mapping):
        return _MISSING
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i]) if i > 1 else parts[0]
        if key in node:
            value = node[key]
            if i == len(parts):
                return value
            found = _lookup(value, parts[i:])
            if found is not _MISSING:
                return found
    return _MISSING


class _Template:
    """A check's right-hand side: literal text with ``%(path)s`` holes filled from the target."""

    __slots__ = ("constant", "parts")

    _HOLE = re.compile(r"%\(([^)]*)\)s|%%|%")

    def __init__(self, text: str) -> None:
        parts: list[str | tuple[str, tuple[str, ...]]] = []
        pos = 0
        for m in self._HOLE.finditer(text):
            if m.start() > pos:
                parts.append(text[pos : m.start()])
            if m.group(0) == "%%":
                parts.append("%")
            elif m.group(0) == "%":
                raise PolicyParseError(f"bad '%' in {text!r} (only %(name)s and %% are allowed)")
            else:
                path = m.group(1)
                parts.append((path, tuple(path.split("."))))
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:])
        self.parts = tuple(parts)
        self.constant: str | None = None
        if all(isinstance(p, str) for p in parts):
            const = "".join(p for p in parts if isinstance(p, str))
            if len(const) >= 2 and const[0] == const[-1] and const[0] in "'\"":
                const = const[1:-1]
            self.constant = const

    def render(self, target: Mapping[str, Any]) -> str | None:
        """The filled-in value, or None when the target lacks a referenced key."""
        if self.constant is not None:
            return self.constant
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            flat, path = part
            value = target.get(flat, _MISSING)
            if value is _MISSING:
                value = _lookup(target, path) if len(path) > 1 else _MISSING
                if value is _MISSING:
                    return None
            out.append(str(value))
        return "".join(out)


class RoleCheck(Check):
    __slots__ = ("raw", "template")

    def __init__(self, match: str) -> None:
        self.raw = match
        self.template = _Template(match)

    def __call__(self, ev: _Eval) -> bool:
        role = self.template.render(ev.target)
        return role is not None and role.lower() in ev.roles

    def __str__(self) -> str:
        return f"role:{self.raw}"


def _equals(match: str, value: Any) -> bool:
    if isinstance(value, bool) and match in ("1", "0"):
        return value is (match == "1")
    return match == str(value)


def _find_in_creds(node: Any, parts: tuple[str, ...], match: str) -> bool:
    """oslo.policy's walk: descend by path; a list on the way matches if any element does."""
    if not parts:
        return _equals(match, node)
    if not isinstance(node, Mapping):
        return False
    value = node.get(parts[0], _MISSING)
    if value is _MISSING:
        return False
    if isinstance(value, list | tuple):
        return any(_find_in_creds(v, parts[1:], match) for v in value)
    return _find_in_creds(value, parts[1:], match)


class GenericCheck(Check):
    """``<attr>:<value>``; see the module docstring."""

    __slots__ = ("flat", "kind", "literal", "path", "raw", "template")

    def __init__(self, kind: str, match: str) -> None:
        self.kind = kind
        self.raw = match
        self.template = _Template(match)
        self.literal: str | None = None
        try:
            self.literal = str(ast.literal_eval(kind))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
        self.path = tuple(kind.split("."))
        self.flat = len(self.path) > 1

    def __call__(self, ev: _Eval) -> bool:
        match = self.template.render(ev.target)
        if match is None:
            return False
        if self.literal is not None:
            return match == self.literal
        if self.flat:
            value = ev.creds.get(self.kind, _MISSING)
            if value is not _MISSING:
                return _equals(match, value)
        return _find_in_creds(ev.creds, self.path, match)

    def __str__(self) -> str:
        return f"{self.kind}:{self.raw}"


# --- parser --------------------------------------------------------------------------------

_KEYWORDS: Final = frozenset({"and", "or", "not"})
_SPACE: Final = re.compile(r"\s+")


def _parse_check(text: str) -> Check:
    if text == "@":
        return TrueCheck()
    if text == "!":
        return FalseCheck()
    kind, sep, match = text.partition(":")
    if not sep or not kind:
        raise PolicyParseError(f"{text!r} is not a check (expected kind:match, '@' or '!')")
    if kind == "rule":
        if not match:
            raise PolicyParseError("'rule:' needs a rule name")
        return RuleCheck(match)
    if kind == "role":
        if not match:
            raise PolicyParseError("'role:' needs a role name")
        return RoleCheck(match)
    if kind in ("http", "https"):
        raise PolicyParseError(f"{kind}: checks are not supported")
    return GenericCheck(kind, match)


def _tokenize(rule: str) -> list[tuple[str, Check | None]]:
    """Split on whitespace; peel parentheses off the ends of each word (as oslo.policy does)."""
    tokens: list[tuple[str, Check | None]] = []
    for word in _SPACE.split(rule):
        if not word:
            continue
        stripped = word.lstrip("(")
        tokens.extend(("(", None) for _ in range(len(word) - len(stripped)))
        core = stripped.rstrip(")")
        trailing = len(stripped) - len(core)
        if core:
            lowered = core.lower()
            if lowered in _KEYWORDS:
                tokens.append((lowered, None))
            else:
                tokens.append(("check", _parse_check(core)))
        tokens.extend((")", None) for _ in range(trailing))
    return tokens


class _Parser:
    """Recursive descent: or_expr := and_expr ('or' and_expr)*, and_expr := not_expr ('and'
    not_expr)*, not_expr := 'not' not_expr | '(' or_expr ')' | check."""

    def __init__(self, tokens: list[tuple[str, Check | None]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def parse(self) -> Check:
        check = self._or()
        if self.pos != len(self.tokens):
            raise PolicyParseError(f"unexpected {self.tokens[self.pos][0]!r}")
        return check

    def _or(self) -> Check:
        checks = [self._and()]
        while self._peek() == "or":
            self.pos += 1
            checks.append(self._and())
        return checks[0] if len(checks) == 1 else OrCheck(checks)

    def _and(self) -> Check:
        checks = [self._not()]
        while self._peek() == "and":
            self.pos += 1
            checks.append(self._not())
        return checks[0] if len(checks) == 1 else AndCheck(checks)

    def _not(self) -> Check:
        tok = self._peek()
        if tok is None:
            raise PolicyParseError("unexpected end of rule")
        if tok == "not":
            self.pos += 1
            return NotCheck(self._not())
        if tok == "(":
            self.pos += 1
            inner = self._or()
            if self._peek() != ")":
                raise PolicyParseError("missing ')'")
            self.pos += 1
            return inner
        if tok == "check":
            check = self.tokens[self.pos][1]
            assert check is not None
            self.pos += 1
            return check
        raise PolicyParseError(f"unexpected {tok!r}")


def parse_rule(rule: str | list[Any]) -> Check:
    """Compile a rule (policy-language string, or the legacy list-of-lists) to a check tree.

    Raises :class:`PolicyParseError`.
    """
    if isinstance(rule, list):
        return _parse_list_rule(rule)
    if not isinstance(rule, str):
        raise PolicyParseError(f"a rule must be a string, not {type(rule).__name__}")
    if not rule.strip():
        return TrueCheck()
    return _Parser(_tokenize(rule)).parse()


def _parse_list_rule(rule: list[Any]) -> Check:
    """Legacy JSON form: outer list is 'or', inner lists are 'and'; ``[]`` always passes."""
    if not rule:
        return TrueCheck()
    ors: list[Check] = []
    for inner in rule:
        items = [inner] if isinstance(inner, str) else inner
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise PolicyParseError("a list rule must be a list of lists of strings")
        if not items:
            continue
        ands = [_parse_check(i) for i in items]
        ors.append(ands[0] if len(ands) == 1 else AndCheck(ands))
    if not ors:
        return FalseCheck()
    return ors[0] if len(ors) == 1 else OrCheck(ors)


# --- enforcer ------------------------------------------------------------------------------


def _compile_all(rules: Mapping[str, Any], origin: str) -> dict[str, Check]:
    compiled: dict[str, Check] = {}
    for name, text in rules.items():
        try:
            compiled[str(name)] = parse_rule(text)
        except PolicyParseError as exc:
            raise PolicyParseError(f"policy rule {name!r} in {origin}: {exc}: {text!r}") from None
    return compiled


def _check_cycles(rules: Mapping[str, Check]) -> None:
    refs = {name: set(check.rule_refs()) for name, check in rules.items()}
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in done or name not in refs:
            return
        if name in stack:
            loop = " -> ".join([*stack[stack.index(name) :], name])
            raise PolicyParseError(f"policy rules refer to each other in a loop: {loop}")
        stack.append(name)
        for ref in refs[name]:
            visit(ref, stack)
        stack.pop()
        done.add(name)

    for name in refs:
        visit(name, [])


class PolicyEnforcer:
    """Decides whether ``creds`` may perform ``rule`` on ``target``.

    ``defaults`` are the service's registered rules (rule name -> rule string).
    ``overrides_file`` is an operator's ``policy.yaml`` (rule name -> rule string, the
    oslo.policy format); it may add rules and replace defaults. A missing file means no
    overrides. The file is re-read when its mtime changes (checked at most once a second); if
    the new contents are invalid the previous rules stay in force and an error is logged.
    Invalid defaults or an invalid file at construction raise :class:`PolicyParseError`.
    """

    RELOAD_INTERVAL: float = 1.0

    def __init__(self, defaults: Mapping[str, str], overrides_file: Path | None = None) -> None:
        self._defaults_text: dict[str, Any] = dict(defaults)
        self._defaults = _compile_all(defaults, "defaults")
        self._overrides_file = overrides_file
        self._file_sig: tuple[int, int] | None = None
        self._next_stat = 0.0
        self._overrides_text: dict[str, Any] = {}
        self._rules: dict[str, Check] = dict(self._defaults)
        _check_cycles(self._rules)
        if overrides_file is not None:
            self._load(raise_errors=True)

    # -- public --------------------------------------------------------------------------

    def enforce(self, rule: str, target: Mapping[str, Any], creds: Mapping[str, Any]) -> bool:
        """True when allowed. Raises :class:`PolicyNotRegistered` for an unknown rule."""
        if self._overrides_file is not None:
            now = time.monotonic()
            if now >= self._next_stat:
                self._next_stat = now + self.RELOAD_INTERVAL
                self._load(raise_errors=False)
        check = self._rules.get(rule)
        if check is None:
            raise PolicyNotRegistered(rule)
        return check(_Eval(self._rules, target, creds))

    def authorize(self, rule: str, target: Mapping[str, Any], creds: Mapping[str, Any]) -> None:
        """Like :meth:`enforce` but raises :class:`Forbidden` (Keystone's wording) if denied."""
        if not self.enforce(rule, target, creds):
            raise Forbidden(f"You are not authorized to perform the requested action: {rule}.")

    def rules(self) -> dict[str, str]:
        """The rule strings in force (defaults with overrides applied)."""
        return {**self._defaults_text, **self._overrides_text}

    def is_registered(self, rule: str) -> bool:
        return rule in self._rules

    # -- file handling -------------------------------------------------------------------

    def _load(self, *, raise_errors: bool) -> None:
        path = self._overrides_file
        assert path is not None
        try:
            st = os.stat(path)
            sig: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            sig = None
        if sig == self._file_sig:
            return
        self._file_sig = sig
        try:
            text, compiled = self._read(path) if sig is not None else ({}, {})
            merged = {**self._defaults, **compiled}
            _check_cycles(merged)
        except (PolicyError, OSError, yaml.YAMLError) as exc:
            if raise_errors:
                if isinstance(exc, PolicyError):
                    raise
                raise PolicyParseError(f"cannot load policy file {path}: {exc}") from exc
            LOG.error("Ignoring changed policy file %s, keeping previous rules: %s", path, exc)
            return
        self._overrides_text = text
        self._rules = merged
        if sig is not None:
            LOG.info("Loaded %d policy overrides from %s", len(text), path)
        elif not raise_errors:
            LOG.warning("Policy file %s is gone; using the default rules", path)

    @staticmethod
    def _read(path: Path) -> tuple[dict[str, Any], dict[str, Check]]:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        if data is None:
            return {}, {}
        if not isinstance(data, dict):
            raise PolicyParseError(f"policy file {path} must map rule names to rule strings")
        text = {str(k): v for k, v in data.items()}
        return text, _compile_all(text, str(path))
