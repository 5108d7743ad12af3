"""The hypervisor driver interface the compute agent uses (Nova's ``virt/driver.py``, small).

A driver manages the VMs of one host. The agent serializes operations per instance (it never
calls two methods for the same instance at once) and owns all state bookkeeping: a driver
reports facts (power state, resources) and raises on failure; it never talks to the bus, the
database or another service.

Failure semantics common to every method:

- raise :class:`InstanceNotFound` when the hypervisor has no such instance;
- raise :class:`VirtError` (or a subclass) with a message a user may read (no secrets, no
  paths from the host) for anything else. The agent records it as the instance's fault.

Pick a driver from :data:`stackling.compute.virt.DRIVERS` (``{"fake": FakeDriver, ...}``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from stackling.compute.rpcapi import InstanceInfo


class VirtError(Exception):
    """A driver operation failed. ``str(exc)`` is shown to the user as the fault message."""


class InstanceNotFound(VirtError):
    pass


class SpawnError(VirtError):
    """The VM could not be started. ``retryable``: another host might succeed (resources,
    transient trouble), so the build is rescheduled; False: it would fail anywhere (a broken
    image)."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class HostResources:
    """What the hypervisor offers (reported to placement as inventory)."""

    node: str  # the hypervisor hostname
    hypervisor_type: str
    hypervisor_version: int
    vcpus: int
    memory_mb: int
    local_gb: int
    host_ip: str | None = None
    cpu_info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageMeta:
    """The image a VM boots from, as the image service described it."""

    id: str
    name: str = ""
    disk_format: str | None = None
    container_format: str | None = None
    size: int | None = None
    min_ram: int = 0
    min_disk: int = 0
    properties: dict[str, Any] = field(default_factory=dict)
    #: boot from a volume: its QMP blockdev node (see ``attach_volume``) instead of the image
    root_volume: dict[str, Any] | None = None


@dataclass(frozen=True)
class NetworkInfo:
    """The ports to plug (empty when the cloud has no network service)."""

    vifs: tuple[dict[str, Any], ...] = ()


class ComputeDriver(ABC):
    """One host's hypervisor."""

    @abstractmethod
    async def init_host(self, host: str) -> None:
        """Prepare the host (connect to the hypervisor). Raise VirtError if it is unusable:
        the agent then refuses to start rather than accept builds it cannot run."""

    @abstractmethod
    def get_available_resource(self) -> HostResources:
        """The host's capacity (totals, not free amounts: placement counts usage)."""

    @abstractmethod
    async def list_instances(self) -> list[str]:
        """UUIDs of the instances the hypervisor knows, running or not (for reconcile)."""

    @abstractmethod
    async def spawn(self, instance: InstanceInfo, image: ImageMeta, network: NetworkInfo,
                    admin_password: str | None = None) -> None:
        """Create and start the VM; return once the guest is running.

        On failure, raise :class:`SpawnError` *after* removing whatever this call created
        (disks, domain, taps): a failed spawn leaves the host as it was, so the agent can
        reschedule the build elsewhere without a leak. Network ports and placement
        allocations are not the driver's: the agent and conductor clean those up.
        """

    @abstractmethod
    async def destroy(self, instance: InstanceInfo) -> None:
        """Stop the VM if running and remove everything spawn made. Idempotent: destroying
        an instance the hypervisor does not know succeeds (delete must always be able to
        finish)."""

    @abstractmethod
    async def get_power_state(self, instance: InstanceInfo) -> int:
        """The power state (:mod:`stackling.compute.states` integers). InstanceNotFound if
        unknown."""

    @abstractmethod
    async def power_off(self, instance: InstanceInfo, grace: float = 0) -> None:
        """Shut the guest down (gracefully within ``grace`` seconds, then forcibly)."""

    @abstractmethod
    async def power_on(self, instance: InstanceInfo) -> None:
        """Start a stopped guest."""

    @abstractmethod
    async def reboot(self, instance: InstanceInfo, reboot_type: str) -> None:
        """``SOFT``: ask the guest to restart; ``HARD``: reset it. Either way the guest is
        running afterwards, or VirtError is raised and its power state says what it is."""

    @abstractmethod
    async def pause(self, instance: InstanceInfo) -> None:
        """Freeze the guest in memory."""

    @abstractmethod
    async def unpause(self, instance: InstanceInfo) -> None: ...

    @abstractmethod
    async def suspend(self, instance: InstanceInfo) -> None:
        """Save the guest's memory to disk and stop it."""

    @abstractmethod
    async def resume(self, instance: InstanceInfo) -> None: ...

    # -- resize (Nova's migrate_disk_and_power_off / finish_migration / ...) ----------------
    @abstractmethod
    async def migrate_disk_and_power_off(self, instance: InstanceInfo, dest_host: str) -> None:
        """Source host: stop the guest and keep its disks aside for a revert (also when the
        destination is this host). On failure the guest is left as it was."""

    @abstractmethod
    async def finish_migration(self, instance: InstanceInfo, image: ImageMeta,
                               power_on: bool) -> None:
        """Destination host: bring the guest up with ``instance.flavor`` (the new one).
        On failure remove what this call made."""

    @abstractmethod
    async def confirm_migration(self, instance: InstanceInfo) -> None:
        """Source host: delete the disks kept for a revert (idempotent)."""

    @abstractmethod
    async def finish_revert_migration(self, instance: InstanceInfo, power_on: bool) -> None:
        """Source host: restore the guest from the kept disks with its old flavor."""

    @abstractmethod
    async def snapshot(self, instance: InstanceInfo) -> AsyncIterator[bytes]:
        """The instance's root disk as an image (chunks of its bytes, in the format
        :attr:`snapshot_format` names). The guest keeps running; on failure raise VirtError
        and leave no temporary file behind."""

    snapshot_format: str = "raw"

    @abstractmethod
    async def get_console_output(self, instance: InstanceInfo) -> str:
        """The guest's serial console log so far (may be empty)."""

    async def attach_interface(self, instance: InstanceInfo, vif: dict[str, Any]) -> None:
        """Hot-plug one more port (a :class:`NetworkInfo` vif) into the running guest."""
        raise VirtError(f"The {type(self).__name__} hypervisor cannot attach interfaces.")

    async def detach_interface(self, instance: InstanceInfo, port_id: str) -> None:
        """Unplug the port's NIC from the guest."""
        raise VirtError(f"The {type(self).__name__} hypervisor cannot detach interfaces.")

    async def get_diagnostics(self, instance: InstanceInfo) -> dict[str, Any]:
        """Nova's standard diagnostics (2.48 shape): state, driver, cpu/nic/disk details.
        The default says only what every driver knows."""
        state = await self.get_power_state(instance)
        names = {1: "running", 3: "paused", 4: "shutdown", 6: "crashed", 7: "suspended"}
        return {"state": names.get(state, "pending"), "driver": type(self).__name__,
                "hypervisor": None, "hypervisor_os": None, "uptime": None,
                "config_drive": False, "num_cpus": instance.flavor.vcpus, "num_nics": 0,
                "num_disks": 0, "cpu_details": [], "nic_details": [], "disk_details": [],
                "memory_details": {"maximum": instance.flavor.memory_mb, "used": 0}}

    #: the ``driver_volume_type`` values (block storage connection types) it can plug
    volume_protocols: frozenset[str] = frozenset()

    async def attach_volume(self, instance: InstanceInfo, volume_id: str,
                            connection: dict[str, Any]) -> None:
        """Plug a volume into the running guest. ``connection``: a QMP ``blockdev-add``
        protocol node plus ``format`` (``{"driver": "file", "filename": ...}``,
        ``{"driver": "nbd", "server": {...}, "export": ...}``). VirtError on failure, the
        guest left as it was."""
        raise VirtError(f"The {type(self).__name__} hypervisor cannot attach volumes.")

    async def detach_volume(self, instance: InstanceInfo, volume_id: str) -> None:
        """Unplug the volume (the guest must release it). VirtError on failure."""
        raise VirtError(f"The {type(self).__name__} hypervisor cannot detach volumes.")

    async def volume_snapshot_create(self, instance: InstanceInfo, volume_id: str,
                                     create_info: dict[str, Any]) -> None:
        """An assisted snapshot of an attached file-backed volume: the guest goes on
        writing to ``create_info["new_file"]`` on top of the current file. VirtError when
        the hypervisor cannot."""
        raise VirtError(f"The {type(self).__name__} hypervisor cannot take assisted volume "
                        "snapshots.")

    async def volume_snapshot_delete(self, instance: InstanceInfo, volume_id: str,
                                     snapshot_id: str, delete_info: dict[str, Any]) -> None:
        """Merge an assisted snapshot back (``delete_info`` as the volume service sends
        it). VirtError when the hypervisor cannot."""
        raise VirtError(f"The {type(self).__name__} hypervisor cannot delete assisted "
                        "volume snapshots.")
