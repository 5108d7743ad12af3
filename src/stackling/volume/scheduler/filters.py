"""Pool filters (Cinder's AvailabilityZoneFilter, CapacityFilter, CapabilitiesFilter)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackling.volume.scheduler.manager import Pool, Request


def availability_zone(pool: Pool, request: Request) -> bool:
    return request.availability_zone is None or pool.zone == request.availability_zone


def capacity(pool: Pool, request: Request) -> bool:
    """Thin pools may be provisioned up to ``total * max_over_subscription_ratio`` while
    real free space stays above the reserve; thick pools need the size in free space."""
    reserved = pool.total_gb * pool.reserved_percentage / 100.0
    free = pool.free_gb - reserved
    if pool.thin and request.thin_ok:
        provisioned_ratio = (pool.provisioned_gb + request.size_gb) / max(pool.total_gb, 1e-9)
        return (provisioned_ratio <= pool.max_over_subscription_ratio
                and free >= 0 and pool.free_gb > 0)
    return free >= request.size_gb


_OPS: dict[str, Callable[[str, str], bool]] = {
    "==": lambda a, b: _num(a) == _num(b),
    "!=": lambda a, b: _num(a) != _num(b),
    ">=": lambda a, b: _num(a) >= _num(b),
    "<=": lambda a, b: _num(a) <= _num(b),
    "s==": operator.eq, "s!=": operator.ne,
    "<in>": lambda a, b: b in a,
    "<is>": lambda a, b: a.lower() in ("true", "1") if b.lower() == "true"
    else a.lower() not in ("true", "1"),
}


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _matches(have: object, want: str) -> bool:
    value = "" if have is None else (str(have).lower() if isinstance(have, bool) else str(have))
    words = want.split(None, 1)
    if len(words) == 2 and words[0] == "<or>":
        return any(value == w.strip() for w in want.split("<or>") if w.strip())
    if len(words) == 2 and words[0] in _OPS:
        return _OPS[words[0]](value, words[1].strip())
    return value == want.strip() or value.lower() == want.strip().lower()


def capabilities(pool: Pool, request: Request) -> bool:
    """Every extra spec the pool knows about (unscoped or ``capabilities:``) must match."""
    for key, want in request.extra_specs.items():
        scope, _, name = key.rpartition(":")
        if scope not in ("", "capabilities"):
            continue  # other scopes (e.g. "hw:") are for other services
        if name not in pool.capabilities:
            if scope == "capabilities":
                return False
            continue
        if not _matches(pool.capabilities[name], str(want)):
            return False
    return True


FILTERS: list[Callable[[Pool, Request], bool]] = [availability_zone, capacity, capabilities]
