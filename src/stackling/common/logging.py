"""Logging setup: plain text or JSON lines, a request id on every line, secrets masked.

Call :func:`configure_logging` once at process start. Code logs through the standard library
(``logging.getLogger(__name__)``) as usual. The web layer sets :data:`request_id_var` for the
duration of a request so every line logged while serving it carries the id.

Every record that reaches the handler installed here goes through :class:`RedactingFilter`,
which renders the message with its arguments and masks what looks like a secret
(:func:`redact`): values of password/token/secret/credential-like keys in JSON, dict reprs,
``key=value`` and ``Header: value`` forms, URL passwords (``amqp://user:***@host``),
``Basic``/``Bearer`` credentials and Fernet tokens. Tracebacks are masked too. Masking is
best-effort pattern matching: still never log a secret on purpose.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Final, TextIO

__all__ = [
    "MASK",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "configure_logging",
    "is_secret_key",
    "redact",
    "redact_mapping",
    "request_id_var",
]

MASK: Final = "***"

request_id_var: ContextVar[str | None] = ContextVar("stackling_request_id", default=None)

# Key names whose values are secret: a key *ending* in one of these words (so "admin_password",
# "X-Auth-Token", "client_secret" match, but "token_id" and "password_expires_at" do not).
_SECRET_WORDS: Final = (
    "password",
    "passwd",
    "passcode",
    "adminpass",
    "secret",
    "token",
    "secret_key",
    "secret_access_key",
    "private_key",
    "api_key",
    "credential",
    "credentials",
    "blob",
    "signature",
)
_KEY: Final = r"[\w-]*?(?:" + "|".join(re.escape(w) for w in _SECRET_WORDS) + r")"
_KEY_RE: Final = re.compile(r"^(?:" + _KEY + r"|(?:proxy-)?authorization)$", re.IGNORECASE)

_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # Authorization: <anything up to the end of the value>   'authorization': 'Basic x'
    (
        re.compile(
            r"""(?<![\w-])(?P<key>(?:proxy-)?authorization)"""
            r"""(?P<sep>(?:["']\s*,|["']?\s*[:=])\s*(?:b(?=["']))?["']?)"""
            r"""[^"'\r\n]+""",
            re.IGNORECASE,
        ),
        r"\g<key>\g<sep>" + MASK,
    ),
    # "password": "x"   'X-Auth-Token': 'x'
    (
        re.compile(
            r"""(?P<q>["'])(?P<key>""" + _KEY + r""")(?P=q)(?P<sep>\s*:\s*)"""
            r"""(?P<vq>["'])(?:\\.|(?!(?P=vq)).)*(?P=vq)""",
            re.IGNORECASE,
        ),
        r"\g<q>\g<key>\g<q>\g<sep>\g<vq>" + MASK + r"\g<vq>",
    ),
    # ("x-auth-token", "x")   (b'x-subject-token', b'x')   (header pairs)
    (
        re.compile(
            r"""(?P<pre>\(\s*b?)(?P<q>["'])(?P<key>""" + _KEY + r""")(?P=q)(?P<sep>\s*,\s*b?)"""
            r"""(?P<vq>["'])(?:\\.|(?!(?P=vq)).)*(?P=vq)(?=\s*\))""",
            re.IGNORECASE,
        ),
        r"\g<pre>\g<q>\g<key>\g<q>\g<sep>\g<vq>" + MASK + r"\g<vq>",
    ),
    # "password": 12345 (unquoted JSON scalar other than null/true/false)
    (
        re.compile(
            r"""(?P<q>["'])(?P<key>""" + _KEY + r""")(?P=q)(?P<sep>\s*:\s*)"""
            r"""(?!null\b|true\b|false\b|None\b|True\b|False\b)(?P<v>[\w.+-]+)""",
            re.IGNORECASE,
        ),
        r"\g<q>\g<key>\g<q>\g<sep>" + MASK,
    ),
    # password=x  password='x'  ?token=x&...  Signature=abc
    (
        re.compile(
            r"""(?<![\w-])(?P<key>""" + _KEY + r""")(?P<sep>\s*=\s*)"""
            r"""(?:"[^"]*"|'[^']*'|[^\s&,;'")\]}]+)""",
            re.IGNORECASE,
        ),
        r"\g<key>\g<sep>" + MASK,
    ),
    # X-Auth-Token: x   (header lines, unquoted)
    (
        re.compile(
            r"""(?<![\w"'-])(?P<key>""" + _KEY + r""")(?P<sep>:[ \t]*)(?![ \t"'{\[]|//)"""
            r"""[^\s,;'"}\]]+""",
            re.IGNORECASE,
        ),
        r"\g<key>\g<sep>" + MASK,
    ),
    # scheme://user:password@host
    (
        re.compile(r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+(?P<at>@)"),
        r"\g<pre>" + MASK + r"\g<at>",
    ),
    # Authorization: Basic xxx / Bearer xxx
    (
        re.compile(r"\b(?P<scheme>Basic|Bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
        r"\g<scheme> " + MASK,
    ),
    # Fernet tokens (Keystone tokens, credential blobs) wherever they appear.
    (re.compile(r"gAAAAA[A-Za-z0-9_=-]{20,}"), MASK),
)

# Cheap pre-check: text containing none of these cannot match any pattern.
_TRIGGERS: Final = (
    "pass",
    "secret",
    "token",
    "key",
    "credential",
    "blob",
    "signature",
    "authorization",
    "://",
    "basic",
    "bearer",
    "gaaaaa",
)


def redact(text: str) -> str:
    """Mask secrets in ``text`` (see the module docstring). Text without any is returned as is."""
    lowered = text.lower()
    if not any(t in lowered for t in _TRIGGERS):
        return text
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def is_secret_key(name: str) -> bool:
    """True when a value stored under ``name`` must not be logged."""
    return bool(_KEY_RE.match(name))


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` (recursively) with secret-keyed values masked."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and is_secret_key(key) and not isinstance(value, Mapping):
            out[key] = MASK if value is not None else None
        elif isinstance(value, Mapping):
            out[key] = redact_mapping(value)
        elif isinstance(value, str):
            out[key] = redact(value)
        else:
            out[key] = value
    return out


class RedactingFilter(logging.Filter):
    """Renders ``msg % args`` once, masks secrets, and attaches ``record.request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "_stackling_redacted", False):
            try:
                message = record.getMessage()
            except Exception:
                return True
            record.msg = redact(message)
            record.args = None
            setattr(record, "_stackling_redacted", True)  # noqa: B010
        if not hasattr(record, "request_id"):
            setattr(record, "request_id", request_id_var.get())  # noqa: B010
        return True


class TextFormatter(logging.Formatter):
    """``2024-05-01 12:00:00,123 INFO stackling.x [req-...] message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(request_tag)s%(message)s")
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The standard ``YYYY-mm-dd HH:MM:SS,mmm``; the date part is formatted once per
        second instead of once per line (the access log writes a line per request)."""
        whole = int(record.created)
        second, text = self._second
        if whole != second:
            text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
            self._second = (whole, text)
        return f"{text},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        setattr(record, "request_tag", f"[{rid}] " if rid else "")  # noqa: B010
        out = super().format(record)
        # The traceback (possibly cached on the record by another handler) is not redacted yet.
        return redact(out) if record.exc_text or record.stack_info else out


# Attributes every LogRecord has; anything else came from ``extra=`` and is emitted in JSON.
_STANDARD_ATTRS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "request_tag",
    "_stackling_redacted",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id (when set), exc, extras."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            doc["request_id"] = rid
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = redact(record.exc_text)
        if record.stack_info:
            doc["stack"] = redact(self.formatStack(record.stack_info))
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        if extras:
            for key, value in redact_mapping(extras).items():
                doc.setdefault(key, value)
        return json.dumps(doc, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> str:
    return redact(str(value))


def configure_logging(
    level: str = "INFO", json_format: bool = False, stream: TextIO | None = None
) -> None:
    """Send all logging to ``stream`` (stderr by default) through one redacting handler.

    Safe to call again (the handler installed by an earlier call is replaced). ``level`` is a
    level name (``debug``, ``INFO``, ...); an unknown name raises ``ValueError``.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    # The logging HOWTO's "Optimization" switches: the caller's file/line, thread, process
    # and multiprocessing names are collected for every record but no format here prints
    # them (the access log makes a record per request).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_stackling", False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, "_stackling", True)  # noqa: B010
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    root.addHandler(handler)
    root.setLevel(numeric)
    # These libraries log AMQP frames, SQL statements and every HTTP request below WARNING
    # (message bodies and bound values can carry secrets, and a line per statement costs
    # more than the statement): they never go below WARNING.
    for noisy in ("aiormq", "aio_pika", "sqlalchemy.engine", "sqlalchemy.pool", "httpx",
                  "httpcore"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)
