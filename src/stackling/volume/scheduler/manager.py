"""Pick a pool for a volume: filter the live pools, then weigh them.

The volume workers report their pools (capacity, capabilities) into the services table; the
service layer reads the live ones into :class:`Pool` values and asks :func:`select_pool`.
Claims are not needed beyond that: the capacity a create takes is visible to the next
decision through ``provisioned_gb`` only after the worker reports again, so the service adds
the sizes of volumes still being created on each pool (``pending_gb``) before filtering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stackling.volume.scheduler.filters import FILTERS
from stackling.volume.scheduler.weighers import virtual_free


@dataclass
class Pool:
    name: str  # host@backend#pool
    zone: str
    total_gb: float
    free_gb: float
    provisioned_gb: float
    thin: bool
    max_over_subscription_ratio: float
    reserved_percentage: int = 0
    capabilities: dict[str, Any] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        """Cinder's ``get_pools`` capabilities for this pool."""
        return {**self.capabilities,
                "total_capacity_gb": self.total_gb, "free_capacity_gb": self.free_gb,
                "provisioned_capacity_gb": self.provisioned_gb,
                "allocated_capacity_gb": self.provisioned_gb,
                "max_over_subscription_ratio": self.max_over_subscription_ratio,
                "reserved_percentage": self.reserved_percentage,
                "thin_provisioning_support": self.thin,
                "thick_provisioning_support": not self.thin}


@dataclass
class Request:
    size_gb: int
    availability_zone: str | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)
    thin_ok: bool = True
    only: str | None = None  # the source's host (snapshot/clone stay on their backend)


def select_pool(pools: list[Pool], request: Request) -> Pool | None:
    candidates = [p for p in pools
                  if (request.only is None or p.name.split("#")[0] == request.only.split("#")[0])
                  and all(f(p, request) for f in FILTERS)]
    if not candidates:
        return None
    return max(candidates, key=virtual_free)
