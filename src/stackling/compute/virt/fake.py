"""The in-memory hypervisor: VMs are dict entries, host sizes are configurable.

Used by the fast tests, ``stackling up --virt fake`` and ``stackling sim``. It keeps the
driver contract (state checks, idempotent destroy, cleanup on failed spawn) so the agent's
logic is exercised for real. Tests inject failures with :attr:`FakeDriver.fail_spawn`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from stackling.compute import states
from stackling.compute.rpcapi import InstanceInfo
from stackling.compute.virt.driver import (
    ComputeDriver,
    HostResources,
    ImageMeta,
    InstanceNotFound,
    NetworkInfo,
    SpawnError,
    VirtError,
)


@dataclass
class FakeVM:
    uuid: str
    name: str
    power_state: int
    console: list[str] = field(default_factory=list)
    network: NetworkInfo = field(default_factory=NetworkInfo)  # the NICs it was given
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> connection
    root_volume: dict[str, Any] | None = None  # the boot volume's connection
    #: assisted volume snapshots taken: (volume id, snapshot id) -> create_info
    volume_snapshots: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


class FakeDriver(ComputeDriver):
    def __init__(self, node: str, *, vcpus: int = 16, memory_mb: int = 65536,
                 local_gb: int = 1024, spawn_delay: float = 0.0) -> None:
        self.node = node
        self.vcpus = vcpus
        self.memory_mb = memory_mb
        self.local_gb = local_gb
        self.spawn_delay = spawn_delay
        self.vms: dict[str, FakeVM] = {}
        self.kept: dict[str, FakeVM] = {}  # guests stopped by a resize, kept for a revert
        #: tests: return a SpawnError (or None) for an instance to make its spawn fail
        self.fail_spawn: Callable[[InstanceInfo], SpawnError | None] | None = None
        #: tests: return a VirtError (or None) for a volume id to make its attach fail
        self.fail_attach: Callable[[str], VirtError | None] | None = None

    async def init_host(self, host: str) -> None:
        return None

    def get_available_resource(self) -> HostResources:
        return HostResources(node=self.node, hypervisor_type="fake", hypervisor_version=1000,
                             vcpus=self.vcpus, memory_mb=self.memory_mb,
                             local_gb=self.local_gb, host_ip="127.0.0.1",
                             cpu_info={"arch": "x86_64", "model": "fake", "vendor": "stackling",
                                       "topology": {"sockets": 1, "cores": self.vcpus,
                                                    "threads": 1},
                                       "features": []})

    async def list_instances(self) -> list[str]:
        return list(self.vms)

    def _vm(self, instance: InstanceInfo) -> FakeVM:
        vm = self.vms.get(instance.uuid)
        if vm is None:
            raise InstanceNotFound(f"Instance {instance.uuid} could not be found.")
        return vm

    async def spawn(self, instance: InstanceInfo, image: ImageMeta, network: NetworkInfo,
                    admin_password: str | None = None) -> None:
        if instance.uuid in self.vms:
            raise SpawnError(f"Instance {instance.uuid} already exists on this host.",
                             retryable=False)
        self.vms[instance.uuid] = FakeVM(instance.uuid, instance.instance_name, states.NOSTATE,
                                         network=network)
        if image.root_volume is not None:  # boot from volume: vda is the volume
            self.vms[instance.uuid].root_volume = dict(image.root_volume)
        try:
            if self.spawn_delay:
                await asyncio.sleep(self.spawn_delay)
            failure = self.fail_spawn(instance) if self.fail_spawn else None
            if failure is not None:
                raise failure
        except BaseException:
            self.vms.pop(instance.uuid, None)  # a failed spawn leaves nothing behind
            raise
        vm = self.vms[instance.uuid]
        vm.power_state = states.RUNNING
        name = instance.hostname or instance.name
        vm.console.extend([
            "[    0.000000] Linux version 6.1.0 (stackling fake hypervisor)",
            f"[    0.000000] Command line: root=/dev/vda console=ttyS0 uuid={instance.uuid}",
            f"[    0.120000] Memory: {instance.flavor.memory_mb}MB, "
            f"CPUs: {instance.flavor.vcpus}",
            "[    0.310000] virtio_blk virtio1: [vda] attached",
            f"[    0.420000] stackling fake guest {name} booted from "
            + (f"image {image.id}" if image.root_volume is None else "volume"),
            f"{name} login: "])

    async def attach_interface(self, instance: InstanceInfo, vif: dict[str, Any]) -> None:
        vm = self._vm(instance)
        if any(v["id"] == vif["id"] for v in vm.network.vifs):
            raise VirtError(f"Port {vif['id']} is already plugged into {instance.uuid}.")
        vm.network = NetworkInfo(vifs=(*vm.network.vifs, dict(vif)))

    async def detach_interface(self, instance: InstanceInfo, port_id: str) -> None:
        vm = self._vm(instance)
        if not any(v["id"] == port_id for v in vm.network.vifs):
            raise VirtError(f"Port {port_id} is not plugged into {instance.uuid}.")
        vm.network = NetworkInfo(vifs=tuple(v for v in vm.network.vifs if v["id"] != port_id))

    async def destroy(self, instance: InstanceInfo) -> None:
        self.vms.pop(instance.uuid, None)
        if instance.vm_state == states.DELETED or instance.task_state == "deleting":
            self.kept.pop(instance.uuid, None)

    async def get_power_state(self, instance: InstanceInfo) -> int:
        return self._vm(instance).power_state

    def _transition(self, instance: InstanceInfo, allowed: set[int], new: int,
                    what: str) -> None:
        vm = self._vm(instance)
        if vm.power_state not in allowed:
            raise VirtError(f"Cannot {what} instance {instance.uuid} in power state "
                            f"{vm.power_state}.")
        vm.power_state = new
        vm.console.append(f"{what}")

    async def power_off(self, instance: InstanceInfo, grace: float = 0) -> None:
        self._transition(instance, {states.RUNNING, states.POWER_PAUSED, states.SHUTDOWN,
                                    states.CRASHED, states.POWER_SUSPENDED},
                         states.SHUTDOWN, "power off")

    async def power_on(self, instance: InstanceInfo) -> None:
        self._transition(instance, {states.SHUTDOWN, states.RUNNING, states.CRASHED},
                         states.RUNNING, "power on")

    async def reboot(self, instance: InstanceInfo, reboot_type: str) -> None:
        allowed = {states.RUNNING}
        if reboot_type == "HARD":
            allowed |= {states.SHUTDOWN, states.CRASHED, states.POWER_PAUSED,
                        states.POWER_SUSPENDED}
        self._transition(instance, allowed, states.RUNNING, f"reboot ({reboot_type.lower()})")

    async def pause(self, instance: InstanceInfo) -> None:
        self._transition(instance, {states.RUNNING}, states.POWER_PAUSED, "pause")

    async def unpause(self, instance: InstanceInfo) -> None:
        self._transition(instance, {states.POWER_PAUSED}, states.RUNNING, "unpause")

    async def suspend(self, instance: InstanceInfo) -> None:
        self._transition(instance, {states.RUNNING}, states.POWER_SUSPENDED, "suspend")

    async def resume(self, instance: InstanceInfo) -> None:
        self._transition(instance, {states.POWER_SUSPENDED}, states.RUNNING, "resume")

    async def get_diagnostics(self, instance: InstanceInfo) -> dict[str, Any]:
        data = await super().get_diagnostics(instance)
        # Tempest's 2.48 schema knows real drivers only; Nova's own fake says libvirt too
        data.update({"driver": "libvirt", "hypervisor": "kvm", "hypervisor_os": "fake-os",
                     "uptime": 46664, "num_nics": 1, "num_disks": 1,
                     "cpu_details": [{"id": i, "time": 17300000000, "utilisation": 15}
                                     for i in range(instance.flavor.vcpus)],
                     "nic_details": [{"mac_address": "00:00:00:00:00:00", "rx_octets": 2070139,
                                      "rx_errors": 0, "rx_drop": 0, "rx_packets": 26701,
                                      "rx_rate": None, "tx_octets": 140208, "tx_errors": 0,
                                      "tx_drop": 0, "tx_packets": 662, "tx_rate": None}],
                     "disk_details": [{"read_bytes": 262144, "read_requests": 112,
                                       "write_bytes": 5778432, "write_requests": 488,
                                       "errors_count": 1}],
                     "memory_details": {"maximum": instance.flavor.memory_mb, "used": 0}})
        return data

    async def migrate_disk_and_power_off(self, instance: InstanceInfo, dest_host: str) -> None:
        vm = self.vms.pop(instance.uuid, None)
        if vm is None:
            raise InstanceNotFound(f"Instance {instance.uuid} could not be found.")
        vm.power_state = states.SHUTDOWN
        vm.console.append(f"migrating to {dest_host}")
        self.kept[instance.uuid] = vm

    async def finish_migration(self, instance: InstanceInfo, image: ImageMeta,
                               power_on: bool) -> None:
        kept = self.kept.get(instance.uuid)
        console = list(kept.console) if kept else []
        self.vms[instance.uuid] = FakeVM(
            instance.uuid, instance.instance_name,
            states.RUNNING if power_on else states.SHUTDOWN,
            [*console, f"resized to {instance.flavor.name}"])

    async def confirm_migration(self, instance: InstanceInfo) -> None:
        self.kept.pop(instance.uuid, None)

    async def finish_revert_migration(self, instance: InstanceInfo, power_on: bool) -> None:
        vm = self.kept.pop(instance.uuid, None)
        if vm is None:
            raise InstanceNotFound(f"Instance {instance.uuid} has no disks kept to revert to.")
        vm.power_state = states.RUNNING if power_on else states.SHUTDOWN
        vm.console.append("resize reverted")
        self.vms[instance.uuid] = vm

    async def snapshot(self, instance: InstanceInfo) -> AsyncIterator[bytes]:
        self._vm(instance)  # InstanceNotFound if it is gone

        async def chunks() -> AsyncIterator[bytes]:
            header = f"stackling fake disk of {instance.uuid}\n".encode()
            yield header + b"\0" * (65536 - len(header))
        return chunks()

    async def get_console_output(self, instance: InstanceInfo) -> str:
        return "\n".join(self._vm(instance).console)

    # -- volumes: kept on the VM in memory ---------------------------------------------------
    volume_protocols = frozenset({"file", "nbd", "memory"})

    async def attach_volume(self, instance: InstanceInfo, volume_id: str,
                            connection: dict[str, Any]) -> None:
        vm = self._vm(instance)
        if volume_id in vm.volumes:
            raise VirtError(f"Volume {volume_id} is already attached to {instance.uuid}.")
        failure = self.fail_attach(volume_id) if self.fail_attach else None
        if failure is not None:
            raise failure
        vm.volumes[volume_id] = dict(connection)
        vm.console.append(f"[    9.000000] virtio_blk: new disk, serial {volume_id[:20]}")

    async def detach_volume(self, instance: InstanceInfo, volume_id: str) -> None:
        vm = self._vm(instance)
        if vm.volumes.pop(volume_id, None) is None:
            raise VirtError(f"Volume {volume_id} is not attached to {instance.uuid}.")

    async def volume_snapshot_create(self, instance: InstanceInfo, volume_id: str,
                                     create_info: dict[str, Any]) -> None:
        vm = self._vm(instance)
        if volume_id not in vm.volumes:
            raise VirtError(f"Volume {volume_id} is not attached to {instance.uuid}.")
        vm.volume_snapshots[(volume_id, str(create_info["snapshot_id"]))] = dict(create_info)

    async def volume_snapshot_delete(self, instance: InstanceInfo, volume_id: str,
                                     snapshot_id: str, delete_info: dict[str, Any]) -> None:
        vm = self._vm(instance)
        if volume_id not in vm.volumes:
            raise VirtError(f"Volume {volume_id} is not attached to {instance.uuid}.")
        vm.volume_snapshots.pop((volume_id, snapshot_id), None)
