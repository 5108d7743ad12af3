"""The scheduler's candidates, best first: filter, then weigh.

Most requests name no zone, host, group or hint: only the service check and the resources
filter them, and only free RAM and free VCPUs weigh them. For those, one loop over the hosts
does both (the resource test and the two free amounts inline, no call per host), and the
full order is sorted only if a claim on the best host is lost. Every other request goes
through :func:`filter_hosts` and :func:`weigh`. Both ways give the same hosts in the same
order (``tests/unit/compute/test_scheduler.py`` holds them to it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from stackling.compute.rpcapi import RequestSpec
from stackling.compute.scheduler.filters import (
    FilterContext,
    HostState,
    compute_filter,
    filter_hosts,
    filters_for,
)
from stackling.compute.scheduler.weighers import free_ram, free_vcpus, weigh, weighers

_SOFT = ("soft-affinity", "soft-anti-affinity")


def best_first(hosts: Sequence[HostState], spec: RequestSpec, ctx: FilterContext, mode: str,
               limit: int | None = None) -> Iterator[HostState]:
    """The hosts that pass every filter (the first ``limit`` that do), best first; ties
    keep the order of ``hosts``."""
    active = filters_for(spec, ctx)
    if len(active) == 2 and active[0] is compute_filter and spec.group_policy not in _SOFT:
        return _one_pass(hosts, spec, mode, limit)
    return iter(weigh(filter_hosts(hosts, spec, ctx, limit), spec, ctx, mode))


def _one_pass(hosts: Sequence[HostState], spec: RequestSpec, mode: str,
              limit: int | None) -> Iterator[HostState]:
    wanted = [(rc, amount) for rc, amount in spec.flavor.resources().items() if amount > 0]
    passing: list[HostState] = []
    rams: list[float] = []
    cpus: list[float] = []
    for h in hosts:
        if not h.up or h.disabled:
            continue
        inventories, used = h.provider.inventories, h.provider.used
        for rc, amount in wanted:  # InventorySpec.admits, inline
            inv = inventories.get(rc)
            if (inv is None or amount < inv.min_unit or amount > inv.largest
                    or amount % inv.step_size or used.get(rc, 0) + amount > inv.capacity):
                break
        else:
            passing.append(h)
            # ProviderUsage.free, inline
            ram, cpu = inventories.get("MEMORY_MB"), inventories.get("VCPU")
            rams.append(float(ram.capacity - used.get("MEMORY_MB", 0)) if ram else 0.0)
            cpus.append(float(cpu.capacity - used.get("VCPU", 0)) if cpu else 0.0)
            if limit is not None and len(passing) >= limit:
                break
    if len(passing) < 2:
        yield from passing
        return
    # weigh's normalized sum, with weigh's floats: each weigher's (v - low) * scale, added
    # in weighers() order; one whose scores are all equal adds nothing
    terms: list[tuple[list[float], float, float]] = []
    for weigher, multiplier in weighers(mode):
        raw = rams if weigher is free_ram else cpus if weigher is free_vcpus else None
        if raw is None:  # group members: 0 for every host without a soft policy
            continue
        low, high = min(raw), max(raw)
        if high != low:
            terms.append((raw, low, multiplier / (high - low)))
    if not terms:
        totals = [0.0] * len(passing)
    elif len(terms) == 1:
        (a, la, sa), = terms
        totals = [(x - la) * sa for x in a]
    else:
        (a, la, sa), (b, lb, sb) = terms
        totals = [(x - la) * sa + (y - lb) * sb for x, y in zip(a, b, strict=True)]
    best = totals.index(max(totals))  # the first of the best
    yield passing[best]
    # the claim on it was lost: the rest, in weigh's (stable) order
    order = sorted(range(len(passing)), key=totals.__getitem__, reverse=True)
    yield from (passing[i] for i in order if i != best)
