"""Hypervisor drivers, selected from an explicit table (``config.virt``)."""

from __future__ import annotations

from stackling.compute.virt.driver import ComputeDriver
from stackling.compute.virt.fake import FakeDriver
from stackling.compute.virt.qemu import QemuDriver

#: ``config.virt`` -> driver class
DRIVERS: dict[str, type[ComputeDriver]] = {"fake": FakeDriver, "qemu": QemuDriver}

__all__ = ["DRIVERS", "ComputeDriver", "FakeDriver", "QemuDriver"]
