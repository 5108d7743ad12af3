"""The compute API's routers never compete for a request: their order (busiest first) is
then only a matter of speed."""

from __future__ import annotations

import re

from starlette.routing import compile_path

from stackling.compute.api.app import ROUTERS


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_no_two_routers_match_the_same_request() -> None:
    routes = [(i, route.path, frozenset(getattr(route, "methods", None) or ()))
              for i, router in enumerate(ROUTERS) for route in router.routes]
    assert len(routes) > 100
    clashes = []
    for i, path, methods in routes:
        pattern = compile_path(path)[0]
        for j, other, other_methods in routes:
            if j != i and methods & other_methods and pattern.match(_sample(other)):
                clashes.append((path, other))
    assert clashes == []
