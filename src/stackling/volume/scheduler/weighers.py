"""Pool weighers: Cinder's CapacityWeigher (most virtual free space first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stackling.volume.scheduler.manager import Pool


def virtual_free(pool: Pool) -> float:
    if pool.thin:
        return pool.total_gb * pool.max_over_subscription_ratio - pool.provisioned_gb
    return pool.free_gb - pool.total_gb * pool.reserved_percentage / 100.0
