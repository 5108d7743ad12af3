"""Host filters: each says whether one host can take one instance (Nova's filter scheduler,
small). They run on :class:`HostState` snapshots; the claim afterwards is what guarantees
capacity, so a filter may be optimistic but never lets through what the claim would refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice

from stackling.compute.rpcapi import RequestSpec
from stackling.compute.service.placement import ProviderUsage


@dataclass
class HostState:
    host: str
    node: str
    zone: str
    up: bool
    disabled: bool
    provider: ProviderUsage


@dataclass
class FilterContext:
    """Facts about other instances the request refers to (its group, hints)."""

    group_hosts: dict[str, int] = field(default_factory=dict)  # host -> members there
    same_host: set[str] | None = None  # hosts of the instances in the same_host hint
    different_host: set[str] = field(default_factory=set)


Filter = Callable[[HostState, RequestSpec, FilterContext], bool]


def compute_filter(h: HostState, spec: RequestSpec, ctx: FilterContext) -> bool:
    """The host's compute service is up and enabled."""
    return h.up and not h.disabled


def retry_filter(h: HostState, spec: RequestSpec, ctx: FilterContext) -> bool:
    """A rescheduled build does not go back to a host that failed it."""
    return h.host not in spec.ignore_hosts


def requested_destination_filter(h: HostState, spec: RequestSpec, ctx: FilterContext) -> bool:
    """``host``/``hypervisor_hostname`` (2.74) or the ``zone:host:node`` form."""
    if spec.requested_host and h.host != spec.requested_host:
        return False
    return not (spec.requested_node and h.node != spec.requested_node)


def availability_zone_filter(h: HostState, spec: RequestSpec, ctx: FilterContext) -> bool:
    return spec.availability_zone is None or h.zone == spec.availability_zone


def resources_filter(h: HostState, spec: RequestSpec, ctx: FilterContext) -> bool:
    """Enough VCPU, MEMORY_MB and DISK_GB left (placement's allocation candidates)."""
    return h.provider.fits(spec.flavor.resources())


def server_group_filter(h: HostState, spec: RequestSpec, ctx: FilterContext) -> bool:
    """Hard affinity: where the group already is (anywhere for the first member);
    hard anti-affinity: not where the group is (up to ``max_server_per_host``)."""
    placed = ctx.group_hosts
    if spec.group_policy == "affinity":
        return not placed or h.host in placed
    if spec.group_policy == "anti-affinity":
        limit = int(spec.group_rules.get("max_server_per_host", 1) or 1)
        return placed.get(h.host, 0) < limit
    return True


def hint_filters(h: HostState, spec: RequestSpec, ctx: FilterContext) -> bool:
    """``same_host`` / ``different_host`` scheduler hints."""
    if ctx.same_host is not None and h.host not in ctx.same_host:
        return False
    return h.host not in ctx.different_host


#: request shapes (positive resource amounts) seen, each with a key object: providers
#: remember their answers under it (an object hashes faster than the tuple)
_SHAPES: dict[tuple[tuple[str, int], ...], object] = {}


def only_resources(spec: RequestSpec, ctx: FilterContext) -> bool:
    """Whether the service and resource filters are the only ones that can say no."""
    active = filters_for(spec, ctx)
    return len(active) == 2 and active[0] is compute_filter


def wanted_of(spec: RequestSpec) -> tuple[tuple[tuple[str, int], ...], object]:
    """The request's positive resource amounts, and the key providers remember them by."""
    wanted = tuple((rc, amount) for rc, amount in spec.flavor.resources().items()
                   if amount > 0)
    key = _SHAPES.get(wanted)
    if key is None:
        if len(_SHAPES) >= 4096:  # new keys after this: stale answers are never looked up
            _SHAPES.clear()
        key = _SHAPES[wanted] = object()
    return wanted, key


#: run in this order (cheap first); all must pass
FILTERS: list[Filter] = [compute_filter, retry_filter, requested_destination_filter,
                         availability_zone_filter, server_group_filter, hint_filters,
                         resources_filter]


def filters_for(spec: RequestSpec, ctx: FilterContext) -> list[Filter]:
    """The filters that can say no to this request, in :data:`FILTERS` order (the others
    pass every host: no ignored hosts, no requested host, no zone, no hard group policy, no
    hints), with the flavor's resources worked out once rather than per host."""
    out: list[Filter] = [compute_filter]
    if spec.ignore_hosts:
        out.append(retry_filter)
    if spec.requested_host or spec.requested_node:
        out.append(requested_destination_filter)
    if spec.availability_zone is not None:
        out.append(availability_zone_filter)
    if spec.group_policy in ("affinity", "anti-affinity"):
        out.append(server_group_filter)
    if ctx.same_host is not None or ctx.different_host:
        out.append(hint_filters)
    wanted, key = wanted_of(spec)

    def fits(h: HostState, spec: RequestSpec, ctx: FilterContext) -> bool:
        # ProviderUsage.fits, with the request's non-zero amounts listed once per request
        # and the answer remembered by the provider until it changes
        return h.provider.fits_wanted(key, wanted)

    out.append(fits)
    return out


def filter_hosts(hosts: Iterable[HostState], spec: RequestSpec, ctx: FilterContext,
                 limit: int | None = None) -> list[HostState]:
    """The hosts that pass every filter, in order (the first ``limit`` of them)."""
    active = filters_for(spec, ctx)
    if len(active) == 2 and active[0] is compute_filter:  # service up + resources only
        wanted, key = wanted_of(spec)
        found = (h for h in hosts
                 if h.up and not h.disabled and h.provider.fits_wanted(key, wanted))
        return list(found if limit is None else islice(found, limit))
    passing = []
    for h in hosts:
        for f in active:
            if not f(h, spec, ctx):
                break
        else:
            passing.append(h)
            if limit is not None and len(passing) >= limit:
                break
    return passing
