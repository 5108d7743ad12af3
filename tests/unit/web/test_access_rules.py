"""Access-rule path patterns and the permit decision (stackling.web.access_rules)."""

from __future__ import annotations

import pytest

from stackling.web.access_rules import path_matches, permits


@pytest.mark.parametrize(("path", "pattern", "expected"), [
    ("/v2.1/servers", "/v2.1/servers", True),
    ("/v2.1/servers/abc", "/v2.1/servers/*", True),
    ("/v2.1/servers/abc", "/v2.1/servers/{server_id}", True),
    ("/v2.1/servers/abc/action", "/v2.1/servers/{server_id}/action", True),
    ("/v2.1/servers/abc/action", "/v2.1/servers/*", False),   # * is one segment
    ("/v2.1/servers/abc/action", "/v2.1/servers/**", True),   # ** is any number
    ("/v2.1/servers", "/v2.1/servers/**", False),
    ("/v2.1/serversX", "/v2.1/servers", False),               # whole path only
    ("/v2x1/servers", "/v2.1/servers", False),                # "." is a dot, not a regex
    ("/v2.1/servers/", "/v2.1/servers/*", False),              # * needs a segment
    ("/v2/images/a/file", "/v2/images/*/file", True),
])
def test_path_patterns(path: str, pattern: str, expected: bool) -> None:
    assert path_matches(path, pattern) is expected


RULES = [{"service": "compute", "method": "GET", "path": "/v2.1/servers"},
         {"service": "block-storage", "method": "POST", "path": "/v3/*/volumes"}]


def test_permits_needs_service_method_and_path() -> None:
    assert permits(RULES, ("compute",), "GET", "/v2.1/servers")
    assert not permits(RULES, ("compute",), "POST", "/v2.1/servers")   # method
    assert not permits(RULES, ("image",), "GET", "/v2.1/servers")      # service
    assert not permits(RULES, ("compute",), "GET", "/v2.1/flavors")    # path
    # a service answers to each of its catalog types
    assert permits(RULES, ("volumev3", "block-storage"), "POST", "/v3/p1/volumes")
    assert not permits([], ("compute",), "GET", "/v2.1/servers")


def test_a_token_may_always_be_validated() -> None:
    assert permits([], ("identity",), "GET", "/v3/auth/tokens")
    assert not permits([], ("identity",), "HEAD", "/v3/auth/tokens")
    assert not permits([], ("compute",), "GET", "/v3/auth/tokens")
