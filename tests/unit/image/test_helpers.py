"""Small pure helpers of the image service."""

from __future__ import annotations

import pytest

from stackling.common.errors import BadRequest
from stackling.image.service.listing import split_in
from stackling.image.service.patch import media_type_draft, parse
from stackling.image.service.schema import check_value
from stackling.image.service.tasks import uri_allowed


@pytest.mark.parametrize(("value", "expect"), [
    ("a,b", ["a", "b"]), ('"a,b",c', ["a,b", "c"]), ("a", ["a"]), ('"x"', ["x"]),
])
def test_split_in(value: str, expect: list[str]) -> None:
    assert split_in(value) == expect


def test_split_in_unclosed_quote() -> None:
    with pytest.raises(BadRequest, match="quote is not closed"):
        split_in('"a,b')


@pytest.mark.parametrize(("uri", "ok"), [
    ("http://127.0.0.1:8080/x.qcow2", True), ("https://localhost/x", True),
    ("http://[::1]:99/x", True), ("http://127.1.2.3/x", True),
    ("http://10.0.0.1/x", False), ("http://example.com/x", False), ("ftp://127.0.0.1/x", False),
    ("file:///etc/passwd", False), ("http://127.0.0.1:99999/x", False), (None, False),
    ("http://localhost.example.com/x", False), ("http:///x", False),
])
def test_web_download_only_reaches_loopback(uri: object, ok: bool) -> None:
    assert uri_allowed(uri) is ok


def test_patch_media_types_and_pointers() -> None:
    assert media_type_draft("application/openstack-images-v2.1-json-patch; charset=utf-8") \
        == 10
    assert media_type_draft("application/openstack-images-v2.0-json-patch") == 4
    changes = parse([{"op": "add", "path": "/a~1b~0c", "value": "v"}], 10)
    assert changes[0].path == ["a/b~c"]
    for bad in ("/a//b", "/a/", "/a~2", "x"):
        with pytest.raises(BadRequest):
            parse([{"op": "add", "path": bad, "value": "v"}], 10)


@pytest.mark.parametrize(("value", "spec", "problem"), [
    (True, {"type": "integer"}, "is not of type 'integer'"),
    (3, {"type": ["null", "integer"]}, None),
    (None, {"type": ["null", "string"]}, None),
    ("q", {"type": "string", "enum": ["a"]}, "is not one of"),
    (["x", 1], {"type": "array", "items": {"type": "string"}}, "is not of type 'string'"),
])
def test_schema_check(value: object, spec: dict[str, object], problem: str | None) -> None:
    found = check_value("f", value, spec)
    assert (found is None) if problem is None else (problem in (found or ""))
