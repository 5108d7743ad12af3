"""Host weighers: rank the hosts that passed the filters. Each weigher gives a raw score,
normalized to 0..1 across the candidates and multiplied by its multiplier (Nova's scheme).
``spread`` (default) prefers the emptiest hosts, ``pack`` the fullest."""

from __future__ import annotations

from collections.abc import Callable

from stackling.compute.rpcapi import RequestSpec
from stackling.compute.scheduler.filters import FilterContext, HostState

Weigher = Callable[[HostState, RequestSpec, FilterContext], float]


def free_ram(h: HostState, spec: RequestSpec, ctx: FilterContext) -> float:
    return float(h.provider.free("MEMORY_MB"))


def free_vcpus(h: HostState, spec: RequestSpec, ctx: FilterContext) -> float:
    return float(h.provider.free("VCPU"))


def group_members(h: HostState, spec: RequestSpec, ctx: FilterContext) -> float:
    """Soft affinity likes hosts with members; soft anti-affinity dislikes them."""
    members = float(ctx.group_hosts.get(h.host, 0))
    if spec.group_policy == "soft-affinity":
        return members
    if spec.group_policy == "soft-anti-affinity":
        return -members
    return 0.0


def _free_of(resource_class: str) -> Callable[[list[HostState]], list[float]]:
    """A free-capacity weigher over all hosts at once (one ProviderUsage.free call per host
    instead of a weigher call and that: it runs over every candidate of every request)."""
    def scores(hosts: list[HostState]) -> list[float]:
        # ints (each provider remembers its free amounts): they weigh as their floats do
        return [h.provider.free(resource_class) for h in hosts]
    return scores


#: the weighers that score a host by its free amount of one resource class
FREE_OF: dict[Weigher, str] = {free_ram: "MEMORY_MB", free_vcpus: "VCPU"}
_BULK: dict[Weigher, Callable[[list[HostState]], list[float]]] = {
    weigher: _free_of(rc) for weigher, rc in FREE_OF.items()}


def weighers(mode: str) -> list[tuple[Weigher, float]]:
    sign = 1.0 if mode == "spread" else -1.0
    return [(free_ram, sign), (free_vcpus, sign * 0.5), (group_members, 10.0)]


def totals(hosts: list[HostState], spec: RequestSpec, ctx: FilterContext,
           mode: str) -> list[float]:
    """Each host's weight: every weigher's raw scores normalized to 0..1 across ``hosts``
    (all equal: it adds nothing), times its multiplier, added up."""
    out = [0.0] * len(hosts)
    for weigher, multiplier in weighers(mode):
        if weigher is group_members and spec.group_policy not in ("soft-affinity",
                                                                  "soft-anti-affinity"):
            continue  # 0 for every host
        bulk = _BULK.get(weigher)
        raw = bulk(hosts) if bulk is not None else [weigher(h, spec, ctx) for h in hosts]
        low, high = min(raw), max(raw)
        if high == low:
            continue
        scale = multiplier / (high - low)
        out = [t + (v - low) * scale for t, v in zip(out, raw, strict=True)]
    return out


def weigh(hosts: list[HostState], spec: RequestSpec, ctx: FilterContext,
          mode: str) -> list[HostState]:
    """Best first (ties keep the input order), by :func:`totals`."""
    if len(hosts) < 2:
        return list(hosts)
    weights = totals(hosts, spec, ctx, mode)
    order = sorted(range(len(hosts)), key=weights.__getitem__, reverse=True)  # stable
    return [hosts[i] for i in order]
