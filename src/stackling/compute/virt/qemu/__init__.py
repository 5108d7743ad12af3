"""The QEMU hypervisor driver (``virt = "qemu"``): see :mod:`.driver`."""

from stackling.compute.virt.qemu.driver import QemuDriver

__all__ = ["QemuDriver"]
