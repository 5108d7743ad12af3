"""Tests for stackling.web.pagination."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.requests import Request

from stackling.common.errors import BadRequest
from stackling.web.pagination import page_links, page_url, parse_limit


def make_request(
    query: str = "", path: str = "/compute/v2.1/servers", root_path: str = "/compute", **hdrs: str
) -> Request:
    headers = {"host": "cloud:8780", **{k.replace("_", "-"): v for k, v in hdrs.items()}}
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "root_path": root_path,
        "query_string": query.encode(),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "server": ("127.0.0.1", 8780),
    }
    return Request(scope)


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


# --- parse_limit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0),
        ("1", 1),
        ("50", 50),
        ("1000", 1000),
        ("5000", 1000),
        ("+7", 7),
        (" 8 ", 8),
    ],
)
def test_parse_limit(value: str | None, expected: int | None) -> None:
    assert parse_limit(value, 1000) == expected


@pytest.mark.parametrize("value", ["abc", "1.5", "1e3", "0x10", "ten", "1 2", "-", "--1"])
def test_parse_limit_not_integer(value: str) -> None:
    with pytest.raises(BadRequest, match="integer") as info:
        parse_limit(value, 1000)
    assert info.value.code == 400


@pytest.mark.parametrize("value", ["-1", "-100"])
def test_parse_limit_negative(value: str) -> None:
    with pytest.raises(BadRequest, match="positive"):
        parse_limit(value, 1000)


def test_parse_limit_uncapped() -> None:
    assert parse_limit("123456", 0) == 123456


# --- page_url ------------------------------------------------------------------------------


def test_page_url_replaces_marker_and_limit_keeps_others() -> None:
    req = make_request("status=ACTIVE&limit=2&marker=old&status=ERROR&name=a%20b")
    url = page_url(req, "new-id", 2)
    assert url.startswith("http://cloud:8780/compute/v2.1/servers?")
    assert query_of(url) == [
        ("status", "ACTIVE"),
        ("status", "ERROR"),
        ("name", "a b"),
        ("limit", "2"),
        ("marker", "new-id"),
    ]


def test_page_url_without_limit_drops_it() -> None:
    url = page_url(make_request("limit=5"), "m1")
    assert query_of(url) == [("marker", "m1")]


def test_page_url_without_anything() -> None:
    assert (
        page_url(make_request("limit=5&marker=x"), None) == "http://cloud:8780/compute/v2.1/servers"
    )


def test_page_url_extra_params() -> None:
    url = page_url(
        make_request("page_reverse=True&x=1"), "m", 3, page_reverse=None, sort_key="name"
    )
    assert query_of(url) == [("x", "1"), ("limit", "3"), ("marker", "m"), ("sort_key", "name")]


def test_page_url_relative_for_glance() -> None:
    req = make_request("limit=2&visibility=public", path="/image/v2/images", root_path="/image")
    assert page_url(req, "img-2", 2, relative=True) == (
        "/v2/images?visibility=public&limit=2&marker=img-2"
    )


def test_page_url_honours_forwarded_headers() -> None:
    req = make_request(
        "limit=1",
        x_forwarded_proto="https",
        x_forwarded_host="api.example.org",
        x_forwarded_prefix="/cloud",
    )
    assert page_url(req, "m", 1) == (
        "https://api.example.org/cloud/compute/v2.1/servers?limit=1&marker=m"
    )


def test_page_url_encodes_marker() -> None:
    url = page_url(make_request(), "a&b=c d", 1)
    assert query_of(url) == [("limit", "1"), ("marker", "a&b=c d")]


# --- page_links ----------------------------------------------------------------------------

ITEMS = [{"id": "a"}, {"id": "b"}, {"id": "c"}]


def test_next_link_when_page_full() -> None:
    links = page_links(make_request("limit=3"), ITEMS, 3)
    assert links == [
        {"rel": "next", "href": "http://cloud:8780/compute/v2.1/servers?limit=3&marker=c"}
    ]


def test_no_next_link_when_page_short_or_unlimited() -> None:
    assert page_links(make_request("limit=5"), ITEMS, 5) == []
    assert page_links(make_request(), ITEMS, None) == []
    assert page_links(make_request(), [], 3) == []
    assert page_links(make_request("limit=0"), ITEMS, 0) == []


def test_has_more_overrides_guess() -> None:
    assert page_links(make_request(), ITEMS, 3, has_more=False) == []
    links = page_links(make_request(), ITEMS, 5, has_more=True)
    assert [link["rel"] for link in links] == ["next"]


def test_custom_marker_key() -> None:
    items = [{"name": "x"}, {"name": "y"}]
    (link,) = page_links(make_request(), items, 2, marker_key="name")
    assert ("marker", "y") in query_of(link["href"])


def test_previous_link_for_neutron() -> None:
    req = make_request("limit=3&marker=z", path="/network/v2.0/networks", root_path="/network")
    links = page_links(req, ITEMS, 3, previous=True)
    assert links == [
        {"rel": "next", "href": "http://cloud:8780/network/v2.0/networks?limit=3&marker=c"},
        {
            "rel": "previous",
            "href": "http://cloud:8780/network/v2.0/networks?limit=3&marker=a&page_reverse=True",
        },
    ]


def test_no_previous_link_on_first_page() -> None:
    links = page_links(make_request("limit=3"), ITEMS, 3, previous=True)
    assert [link["rel"] for link in links] == ["next"]


def test_previous_not_added_unless_asked() -> None:
    links = page_links(make_request("limit=3&marker=z"), ITEMS, 3)
    assert [link["rel"] for link in links] == ["next"]


def test_reverse_paging_swaps_directions() -> None:
    req = make_request("limit=3&marker=z&page_reverse=True")
    links = page_links(req, ITEMS, 3, previous=True, has_more=False)
    assert [link["rel"] for link in links] == ["next"]
    assert query_of(links[0]["href"]) == [("limit", "3"), ("marker", "c")]
    links = page_links(req, ITEMS, 3, previous=True, has_more=True)
    assert [link["rel"] for link in links] == ["next", "previous"]
    assert ("page_reverse", "True") in query_of(links[1]["href"])
