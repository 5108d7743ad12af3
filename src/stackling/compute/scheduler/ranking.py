"""The scheduler's candidates, best first: :func:`filter_hosts`, then :func:`weigh`'s order,
worked out lazily. Nearly every claim succeeds on the best host, so that host is found with
one pass over the weights, and the rest are sorted only if its claim is lost. The order is
:func:`weigh`'s (``tests/unit/compute/test_scheduler.py`` holds it to it, ties included).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from stackling.compute.rpcapi import RequestSpec
from stackling.compute.scheduler.filters import FilterContext, HostState, filter_hosts
from stackling.compute.scheduler.weighers import totals


def best_first(hosts: Sequence[HostState], spec: RequestSpec, ctx: FilterContext, mode: str,
               limit: int | None = None) -> Iterator[HostState]:
    """The hosts that pass every filter (the first ``limit`` that do), best first; ties
    keep the order of ``hosts``."""
    passing = filter_hosts(hosts, spec, ctx, limit)
    if len(passing) < 2:
        yield from passing
        return
    weights = totals(passing, spec, ctx, mode)
    best = weights.index(max(weights))  # the first of the best, as weigh's stable sort
    yield passing[best]
    # the claim on it was lost: the rest, in weigh's order
    order = sorted(range(len(passing)), key=weights.__getitem__, reverse=True)
    yield from (passing[i] for i in order if i != best)
