"""Tests for stackling.common.logging: redaction, JSON lines, request ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from stackling.common.logging import (
    MASK,
    RedactingFilter,
    configure_logging,
    is_secret_key,
    redact,
    redact_mapping,
    request_id_var,
)

# --- redact() ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"password": "s3cr3t"}', '{"password": "***"}'),
        ('{"password":"s3cr3t","name":"bob"}', '{"password":"***","name":"bob"}'),
        ("{'password': 's3cr3t'}", "{'password': '***'}"),
        (
            '{"admin_password": "x", "adminPass": "y"}',
            '{"admin_password": "***", "adminPass": "***"}',
        ),
        (
            '{"original_password": "a", "new_password": "b"}',
            '{"original_password": "***", "new_password": "***"}',
        ),
        ('{"secret": "abc", "client_secret": "def"}', '{"secret": "***", "client_secret": "***"}'),
        ('{"passcode": "123456"}', '{"passcode": "***"}'),
        ('{"password": 123456}', '{"password": ***}'),
        ('{"password": null}', '{"password": null}'),
        ('{"password": "with \\"escaped\\" quotes"}', '{"password": "***"}'),
        (
            "{'X-Auth-Token': 'abc123', 'Accept': 'json'}",
            "{'X-Auth-Token': '***', 'Accept': 'json'}",
        ),
        ("[('x-subject-token', 'abc')]", "[('x-subject-token', '***')]"),
        ("[(b'x-auth-token', b'abc')]", "[(b'x-auth-token', b'***')]"),
        ("X-Auth-Token: abc123\r\nAccept: */*", "X-Auth-Token: ***\r\nAccept: */*"),
        ("X-Subject-Token: abc123", "X-Subject-Token: ***"),
        ("x-service-token:abc", "x-service-token:***"),
        ("password=hunter2 user=bob", "password=*** user=bob"),
        ("Client(password='hunter2', user='bob')", "Client(password=***, user='bob')"),
        ("GET /v3/x?token=abc&limit=1", "GET /v3/x?token=***&limit=1"),
        ("aws_secret_access_key=AbC/dEf", "aws_secret_access_key=***"),
        ("amqp://guest:guest@localhost:5672//", "amqp://guest:***@localhost:5672//"),
        (
            "postgresql+asyncpg://stack:pw@db:5432/nova",
            "postgresql+asyncpg://stack:***@db:5432/nova",
        ),
        ("connecting to redis://:pw@cache", "connecting to redis://:***@cache"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: ***"),
        ("{'Authorization': 'Bearer abcdefghijk', 'a': 'b'}", "{'Authorization': '***', 'a': 'b'}"),
        (
            "Authorization: AWS4-HMAC-SHA256 Credential=A/b, Signature=f00\nnext",
            "Authorization: ***\nnext",
        ),
        ('curl -H "Bearer abcdefghijklmnop"', 'curl -H "Bearer ***"'),
        ("token gAAAAABmXyz0123456789abcdefghijkl_-= not found", "token *** not found"),
        ('{"blob": "{\\"access\\": \\"a\\", \\"secret\\": \\"s\\"}"}', '{"blob": "***"}'),
        ('{"credential": "raw", "type": "ec2"}', '{"credential": "***", "type": "ec2"}'),
    ],
)
def test_redact_masks(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "nothing to see here",
        "token_id=abc password_expires_at=2024 token_expiration=3600",
        '{"methods": ["password", "token"], "token": {"expires_at": "x"}}',
        "http://keystone:5000/v3/users/a@b",
        "https://example.com:8774/v2.1",
        "rule:token_subject or user_id:%(target.token.user_id)s",
        '{"password": null, "secret": true}',
        "Basic auth disabled",
    ],
)
def test_redact_leaves_harmless_text(text: str) -> None:
    assert redact(text) == text


def test_redact_keystone_auth_body() -> None:
    body = json.dumps(
        {
            "auth": {
                "identity": {
                    "methods": ["password", "totp"],
                    "password": {"user": {"name": "admin", "password": "pw1"}},
                    "totp": {"user": {"id": "u", "passcode": "654321"}},
                },
                "scope": {"project": {"id": "p"}},
            }
        }
    )
    out = redact(body)
    assert "pw1" not in out and "654321" not in out
    doc = json.loads(out)  # still valid JSON
    assert doc["auth"]["identity"]["password"]["user"] == {"name": "admin", "password": MASK}
    assert doc["auth"]["identity"]["methods"] == ["password", "totp"]


def test_is_secret_key() -> None:
    for key in ("password", "X-Auth-Token", "client_secret", "Authorization", "blob"):
        assert is_secret_key(key), key
    for key in ("token_id", "user_id", "password_expires_at", "name", "methods"):
        assert not is_secret_key(key), key


def test_redact_mapping() -> None:
    data = {
        "user": "bob",
        "password": "x",
        "nested": {"X-Auth-Token": "t", "url": "amqp://u:p@h/"},
        "token": None,
        "headers": {"token": {"id": "kept-structure"}},
    }
    assert redact_mapping(data) == {
        "user": "bob",
        "password": MASK,
        "nested": {"X-Auth-Token": MASK, "url": "amqp://u:***@h/"},
        "token": None,
        "headers": {"token": {"id": "kept-structure"}},
    }


# --- configure_logging ---------------------------------------------------------------------


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    logging.captureWarnings(False)


def _setup(json_format: bool, level: str = "DEBUG") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level, json_format, stream=stream)
    return stream


def test_json_lines(restore_root: None) -> None:
    stream = _setup(json_format=True)
    log = logging.getLogger("stackling.test.json")
    log.info("hello %s", "world")
    token = request_id_var.set("req-123")
    try:
        log.warning("with id")
    finally:
        request_id_var.reset(token)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["msg"] == "hello world"
    assert lines[0]["level"] == "INFO"
    assert lines[0]["logger"] == "stackling.test.json"
    assert lines[0]["ts"].endswith("+00:00")
    assert "request_id" not in lines[0]
    assert lines[1]["request_id"] == "req-123"
    assert lines[1]["level"] == "WARNING"


def test_json_redacts_message_args_and_extras(restore_root: None) -> None:
    stream = _setup(json_format=True)
    log = logging.getLogger("stackling.test.redact")
    log.info("body: %s", {"password": "pw"})
    log.info("bus %s", "amqp://u:secretpw@rabbit//")
    log.info("headers", extra={"headers": {"X-Auth-Token": "tok"}, "password": "pw2"})
    out = stream.getvalue()
    assert "'pw'" not in out and "secretpw" not in out and "tok" not in out and "pw2" not in out
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["msg"] == "body: {'password': '***'}"
    assert lines[1]["msg"] == "bus amqp://u:***@rabbit//"
    assert lines[2]["headers"] == {"X-Auth-Token": MASK}
    assert lines[2]["password"] == MASK


def test_json_exception_is_redacted(restore_root: None) -> None:
    stream = _setup(json_format=True)
    log = logging.getLogger("stackling.test.exc")
    try:
        raise RuntimeError("cannot connect to amqp://u:hunter2@host//")
    except RuntimeError:
        log.exception("failed")
    doc = json.loads(stream.getvalue())
    assert doc["msg"] == "failed"
    assert "RuntimeError" in doc["exc"]
    assert "hunter2" not in doc["exc"]


def test_text_format(restore_root: None) -> None:
    stream = _setup(json_format=False)
    log = logging.getLogger("stackling.test.text")
    token = request_id_var.set("req-abc")
    try:
        log.info("password=%s", "pw")
    finally:
        request_id_var.reset(token)
    log.info("plain")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("INFO stackling.test.text [req-abc] password=***")
    assert second.endswith("INFO stackling.test.text plain")


def test_text_exception_is_redacted(restore_root: None) -> None:
    stream = _setup(json_format=False)
    try:
        raise ValueError('{"password": "leaked"}')
    except ValueError:
        logging.getLogger("stackling.test").exception("boom")
    assert "leaked" not in stream.getvalue()
    assert "ValueError" in stream.getvalue()


def test_level_and_reconfigure(restore_root: None) -> None:
    first = _setup(json_format=False, level="warning")
    logging.getLogger("stackling.test.level").info("hidden")
    assert first.getvalue() == ""
    second = _setup(json_format=False, level="info")
    logging.getLogger("stackling.test.level").info("shown")
    assert first.getvalue() == ""  # the old handler was replaced, not stacked
    assert "shown" in second.getvalue()
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_stackling", False)]
    assert len(ours) == 1


def test_bad_level(restore_root: None) -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging("LOUD", False)


def test_filter_leaves_bad_format_to_logging() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d", ("nan",), None)
    assert RedactingFilter().filter(record)
    assert record.args == ("nan",)  # untouched; the handler reports the error


def test_filter_is_idempotent() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s", ("abc",), None)
    f = RedactingFilter()
    f.filter(record)
    f.filter(record)
    assert record.getMessage() == "token=***"
