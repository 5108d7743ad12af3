"""Hypervisor drivers, selected from an explicit table (``config.virt``)."""

from __future__ import annotations

from stackling.compute.virt.driver import ComputeDriver
from stackling.compute.virt.fake import FakeDriver

#: ``config.virt`` -> driver class. The QEMU driver joins this table in its own issue.
DRIVERS: dict[str, type[ComputeDriver]] = {"fake": FakeDriver}

__all__ = ["DRIVERS", "ComputeDriver", "FakeDriver"]
