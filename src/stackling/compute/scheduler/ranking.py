"""The scheduler's candidates, best first: :func:`filter_hosts`, then :func:`weigh`'s order,
worked out lazily. Nearly every claim succeeds on the best host, so that host is found with
one pass over the weights, and the rest are sorted only if its claim is lost. The common
request on the scheduler's whole host list is ranked from a kept :mod:`standings` entry,
which re-reads only the hosts that changed. The order is :func:`weigh`'s
(``tests/unit/compute/test_scheduler.py`` holds it to it, ties included).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from stackling.compute.rpcapi import RequestSpec
from stackling.compute.scheduler.filters import (
    FilterContext,
    HostState,
    filter_hosts,
    only_resources,
    wanted_of,
)
from stackling.compute.scheduler.standings import NOT_PASSING, Standings
from stackling.compute.scheduler.weighers import FREE_OF, group_members, totals, weighers

_STANDINGS = Standings()


def best_first(hosts: Sequence[HostState], spec: RequestSpec, ctx: FilterContext, mode: str,
               limit: int | None = None) -> Iterator[HostState]:
    """The hosts that pass every filter (the first ``limit`` that do), best first; ties
    keep the order of ``hosts``."""
    # the scheduler hands the same list while it holds no more hosts than ``limit`` (more:
    # a walk from a random place, a new list each time, cut at ``limit`` passing hosts)
    if (isinstance(hosts, list) and (limit is None or len(hosts) <= limit)
            and only_resources(spec, ctx)
            and spec.group_policy not in ("soft-affinity", "soft-anti-affinity")):
        yield from _kept(hosts, spec, mode)
        return
    passing = filter_hosts(hosts, spec, ctx, limit)
    if len(passing) < 2:
        yield from passing
        return
    weights = totals(passing, spec, ctx, mode)
    yield from _in_order(passing, weights)


def _kept(hosts: list[HostState], spec: RequestSpec, mode: str) -> Iterator[HostState]:
    """The common request (service and resources, free-capacity weighers only), from the
    standing kept for this host list: only hosts that changed are read again."""
    wanted, key = wanted_of(spec)
    free = [(FREE_OF[w], multiplier) for w, multiplier in weighers(mode)
            if w is not group_members]
    standing = _STANDINGS.get(hosts, key, wanted, tuple(rc for rc, _ in free))
    if standing.count() < 2:
        yield from (hosts[i] for i in standing.passing())
        return
    weights = list(standing.weights(free))  # this request's: the standing moves on
    best = weights.index(max(weights))  # the first of the best, as weigh's stable sort
    yield hosts[best]
    # the claim on it was lost: the rest, in weigh's order (not passing: -inf)
    found = [i for i, w in enumerate(weights) if w != NOT_PASSING and i != best]
    found.sort(key=weights.__getitem__, reverse=True)
    yield from (hosts[i] for i in found)


def _in_order(passing: list[HostState], weights: list[float]) -> Iterator[HostState]:
    best = weights.index(max(weights))  # the first of the best, as weigh's stable sort
    yield passing[best]
    # the claim on it was lost: the rest, in weigh's order
    order = sorted(range(len(passing)), key=weights.__getitem__, reverse=True)
    yield from (passing[i] for i in order if i != best)
