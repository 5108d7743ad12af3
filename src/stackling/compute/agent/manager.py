"""The compute agent of one host: flow steps 6-8 (DESIGN.md §1).

It has no database (an import-linter contract forbids it): everything it needs comes from
the conductor over the bus (:class:`~stackling.compute.rpcapi.ConductorAPI`) and every state
change goes back through it as a compare-and-swap. Other services are called over REST with
the service token (step 7: the image). The hypervisor is behind
:class:`~stackling.compute.virt.driver.ComputeDriver`.

Operations on one instance run one at a time (a per-instance lock), so a delete that arrives
mid-build waits, the build notices the server is being deleted when its next state update
fails, cleans up, and the delete then finishes.

On start the agent reconciles: servers the database places here but the hypervisor lacks are
marked SHUTOFF, interrupted builds go to ERROR, interrupted deletes finish, and VMs nobody owns
are destroyed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from stackling.bus import Message, Subscription, Transport
from stackling.clients.image import ImageClient
from stackling.clients.network import NetworkClient
from stackling.common.errors import NotFound, StacklingError
from stackling.compute import states
from stackling.compute.agent import volumes
from stackling.compute.agent.events import EventSpan
from stackling.compute.agent.network import Allocation, PortBinder
from stackling.compute.rpcapi import (
    ActionEvent,
    AttachInterface,
    BuildAndRunInstance,
    ComputeAgentAPI,
    ConductorAPI,
    ConfirmResize,
    ConsoleConnect,
    ConsoleOutput,
    DetachInterface,
    Diagnostics,
    ExternalEvent,
    FinishResize,
    FinishRevertResize,
    FlavorInfo,
    GetConsoleConnect,
    GetConsoleOutput,
    GetDiagnostics,
    HostResources,
    InstanceInfo,
    InterfaceAttached,
    PauseInstance,
    RebootInstance,
    RebuildInstance,
    ResizeInstance,
    ResumeInstance,
    RevertResize,
    SnapshotInstance,
    StartInstance,
    StopInstance,
    SuspendInstance,
    TerminateInstance,
    UnpauseInstance,
    VolumeSnapshotCreate,
    VolumeSnapshotDelete,
    compute_topic,
)
from stackling.compute.virt.driver import (
    ComputeDriver,
    ImageMeta,
    InstanceNotFound,
    NetworkInfo,
    SpawnError,
    VirtError,
)
from stackling.compute.volume_rpcapi import AttachVolume, DetachVolume

log = logging.getLogger("stackling.compute.agent")


class InterfaceAttachFailed(StacklingError):
    """Nova's InterfaceAttachFailed / InterfaceDetachFailed (HTTP 500)."""

BINARY = "nova-compute"
BUILD_EVENT = "compute__do_build_and_run_instance"
Task = states.Task


@dataclass(frozen=True)
class PowerAction:
    """A simple action: the driver call, the task_state it runs under, where it ends."""

    event: str
    tasks: tuple[str, ...]
    call: str  # ComputeDriver method name
    vm_state: str


POWER_ACTIONS: dict[type[Message], PowerAction] = {
    StopInstance: PowerAction("compute_stop_instance", (Task.POWERING_OFF,), "power_off",
                              states.STOPPED),
    StartInstance: PowerAction("compute_start_instance", (Task.POWERING_ON,), "power_on",
                               states.ACTIVE),
    PauseInstance: PowerAction("compute_pause_instance", (Task.PAUSING,), "pause",
                               states.PAUSED),
    UnpauseInstance: PowerAction("compute_unpause_instance", (Task.UNPAUSING,), "unpause",
                                 states.ACTIVE),
    SuspendInstance: PowerAction("compute_suspend_instance", (Task.SUSPENDING,), "suspend",
                                 states.SUSPENDED),
    ResumeInstance: PowerAction("compute_resume_instance", (Task.RESUMING,), "resume",
                                states.ACTIVE),
    RebootInstance: PowerAction("compute_reboot_instance",
                                (Task.REBOOTING, Task.REBOOTING_HARD, Task.REBOOT_PENDING,
                                 Task.REBOOT_STARTED, Task.REBOOT_PENDING_HARD,
                                 Task.REBOOT_STARTED_HARD), "reboot", states.ACTIVE),
}


class ComputeAgent:
    def __init__(self, host: str, bus: Transport, driver: ComputeDriver,
                 images: ImageClient | None, *, heartbeat_interval: float = 10.0,
                 resource_interval: float = 60.0, call_timeout: float | None = None,
                 power_sync_interval: float = 60.0, network: NetworkClient | None = None,
                 vif_plugging_timeout: float = 300.0, vif_plugging_is_fatal: bool = True,
                 default_zone: str = "nova") -> None:
        self.host = host
        self.ports = PortBinder(network, host) if network is not None else None
        self.vif_plugging_timeout = vif_plugging_timeout
        self.vif_plugging_is_fatal = vif_plugging_is_fatal
        self.default_zone = default_zone
        self.bus = bus
        self.driver = driver
        self.images = images
        self.attacher = volumes.volume_attacher(host, driver, images)
        self.conductor = ConductorAPI(bus, host, call_timeout)
        self.peers = ComputeAgentAPI(bus)  # other hosts' agents (resize hands over)
        self.heartbeat_interval = heartbeat_interval
        self.resource_interval = resource_interval
        self.power_sync_interval = power_sync_interval
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._waiters: dict[tuple[str, str, str | None], asyncio.Future[str]] = {}

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Register with the conductor (service record, hypervisor inventory), reconcile,
        then take work from ``compute.<host>`` and heartbeat."""
        await self.driver.init_host(self.host)
        await self.report_resources()
        await self.conductor.service_report(BINARY, compute_topic(self.host))
        await self.reconcile()
        self._subscription = await self.bus.serve(compute_topic(self.host), self._handle)
        self._tasks.append(asyncio.create_task(self._heartbeats()))
        self._tasks.append(asyncio.create_task(self._power_syncs()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._subscription is not None:
            await self._subscription.cancel()
            self._subscription = None

    async def report_resources(self) -> None:
        r = self.driver.get_available_resource()
        await self.conductor.host_resources(HostResources(
            host=self.host, node=r.node, hypervisor_type=r.hypervisor_type,
            hypervisor_version=r.hypervisor_version, vcpus=r.vcpus, memory_mb=r.memory_mb,
            local_gb=r.local_gb, host_ip=r.host_ip, cpu_info=dict(r.cpu_info)))

    async def _heartbeats(self) -> None:
        loop = asyncio.get_running_loop()
        next_resources = loop.time() + self.resource_interval
        # many agents started together (``stackling sim``) must not beat in step: the
        # first beat comes at a random point of the first interval
        delay = random.uniform(0, self.heartbeat_interval)  # noqa: S311
        while True:
            await asyncio.sleep(delay)
            delay = self.heartbeat_interval
            try:
                await self.conductor.service_report(BINARY, compute_topic(self.host))
                if loop.time() >= next_resources:
                    next_resources = loop.time() + self.resource_interval
                    await self.report_resources()
            except StacklingError as exc:
                log.warning("heartbeat of %s failed: %s", self.host, exc)

    @contextlib.asynccontextmanager
    async def _serialized(self, uuid: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(uuid, (asyncio.Lock(), 0))
        self._locks[uuid] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[uuid]
            if users <= 1:
                del self._locks[uuid]
            else:
                self._locks[uuid] = (lock, users - 1)

    async def _handle(self, message: Message, context: dict[str, Any]) -> Message | None:
        if isinstance(message, BuildAndRunInstance):
            async with self._serialized(message.spec.instance_uuid):
                await self.build_and_run_instance(message)
            return None
        if isinstance(message, TerminateInstance):
            async with self._serialized(message.instance_uuid):
                await self.terminate_instance(message)
            return None
        if isinstance(message, RebuildInstance):
            async with self._serialized(message.instance_uuid):
                await self.rebuild_instance(message)
            return None
        if isinstance(message, ResizeInstance | FinishResize | ConfirmResize | RevertResize |
                      FinishRevertResize):
            async with self._serialized(message.instance_uuid):
                await self.migration_step(message)
            return None
        if isinstance(message, SnapshotInstance):
            async with self._serialized(message.instance_uuid):
                await self.snapshot_instance(message)
            return None
        if isinstance(message, AttachVolume | DetachVolume):
            async with self._serialized(message.instance_uuid):
                return await volumes.handle(self.attacher, message, await
                                            self.conductor.instance_get(message.instance_uuid))
        if isinstance(message, GetConsoleOutput):
            return await self.console_output(message)
        if isinstance(message, GetConsoleConnect):
            return await self.console_connect(message)
        if isinstance(message, GetDiagnostics):
            return await self.diagnostics(message)
        if isinstance(message, VolumeSnapshotCreate | VolumeSnapshotDelete):
            async with self._serialized(message.instance_uuid):
                await self.volume_snapshot(message)
            return None
        if isinstance(message, ExternalEvent):
            await self.external_event(message)
            return None
        if isinstance(message, AttachInterface | DetachInterface):
            async with self._serialized(message.instance_uuid):
                if isinstance(message, AttachInterface):
                    return await self.attach_interface(message)
                return await self.detach_interface(message)
        action = POWER_ACTIONS.get(type(message))
        if action is not None:
            assert isinstance(message, (StopInstance, StartInstance, PauseInstance,
                                        UnpauseInstance, SuspendInstance, ResumeInstance,
                                        RebootInstance))
            async with self._serialized(message.instance_uuid):
                await self.power_action(message, action)
            return None
        log.warning("compute agent %s: unexpected message %s", self.host, type(message).NAME)
        return None

    # -- flow steps 6-8: build ----------------------------------------------------------------
    async def build_and_run_instance(self, m: BuildAndRunInstance) -> None:
        # the build event is shown as started if the build takes more than a moment,
        # else recorded whole with the final update (see ``events``)
        span = EventSpan(self.conductor, m.spec.instance_uuid, m.request_id, BUILD_EVENT)
        try:
            await self._build(m, span)
        finally:
            span.abandon()  # an unexpected error: no start shown later

    async def _build(self, m: BuildAndRunInstance, span: EventSpan) -> None:
        spec, uuid = m.spec, m.spec.instance_uuid
        # step 6: everything about the instance comes from the conductor. With ports to
        # prepare the build goes through ``networking`` first, then ``spawning``.
        wants_ports = bool(spec.requested_networks) and self.ports is not None
        instance = await self._advance(
            uuid, Task.NETWORKING if wants_ports else Task.SPAWNING, [Task.SCHEDULING])
        if instance is None:
            await self._abandoned(span)
            return
        alloc: Allocation | None = None
        in_network = False  # a network failure is not retried on another host
        waits: dict[str, asyncio.Future[str]] = {}
        try:
            # step 7: other services over REST, with the service token (the image's
            # description came with the request when compute-api read it)
            image = (_image_meta(spec.image) if spec.image and spec.image.get("id") ==
                     spec.image_ref else await self._image(spec.image_ref))
            network = NetworkInfo()
            if wants_ports:
                assert self.ports is not None
                in_network = True
                alloc = await self.ports.allocate(instance, spec.requested_networks,
                                                  spec.availability_zone or self.default_zone)
                if self.vif_plugging_timeout > 0:  # listen before the agent can report
                    waits = {p.id: self.expect_event(uuid, "network-vif-plugged", p.id)
                             for p in alloc.ports}
                await self.ports.bind(alloc)
                network = await self.ports.network_info(alloc)
                in_network = False
                spawning = await self._advance(uuid, Task.SPAWNING, [Task.NETWORKING])
                if spawning is None:
                    await self.ports.undo(alloc)
                    await self._abandoned(span)
                    return
                instance = spawning
            if spec.block_devices:  # boot from volume: export the volumes to this host
                image = await volumes.connect_boot(self.attacher, instance, image,
                                                   spec.block_devices)
            # step 8: the hypervisor starts the VM, then the ports come up
            await self.driver.spawn(instance, image, network)
            if spec.block_devices:
                await volumes.finish_boot(self.attacher, instance, spec.block_devices)
            if waits:
                await self._wait_plugged(instance, waits)
        except SpawnError as exc:
            await self._undo_ports(alloc)
            await self._build_failed(m, span, str(exc), exc.retryable)
            return
        except (VirtError, StacklingError) as exc:
            text = exc.message if isinstance(exc, StacklingError) else str(exc)
            await self._undo_ports(alloc)
            await self._build_failed(m, span, text,
                                     not isinstance(exc, NotFound) and not in_network)
            return
        finally:
            self._forget(uuid, waits)
        power = await self.driver.get_power_state(instance)
        reply = await self.conductor.instance_update(
            uuid, {"vm_state": states.ACTIVE, "task_state": None, "power_state": power,
                   "launched_at": "now", "progress": 0}, [Task.SPAWNING],
            await span.end("Success"), want_instance=False)
        if not reply.updated:
            # deleted while spawning: undo; the pending delete finishes the rest (its
            # ports go with the delete)
            log.info("%s was deleted while spawning: destroying the new VM", uuid)
            await self.driver.destroy(instance)
            await span.fail("The server was deleted during the build.")
            return
        log.info("built %s on %s", uuid, self.host)

    @staticmethod
    async def _abandoned(span: EventSpan) -> None:
        log.info("build of %s abandoned: it was deleted or changed", span.instance_uuid)
        await span.fail("The server was deleted during the build.")

    async def _wait_plugged(self, instance: InstanceInfo,
                            waits: dict[str, asyncio.Future[str]],
                            destroy: bool = True) -> None:
        """Nova's wait_for_instance_event around the plug: every port's
        ``network-vif-plugged`` within vif_plugging_timeout seconds. A timeout or a failed
        port fails the build when vif_plugging_is_fatal (the VM is destroyed first)."""
        failed: list[str] = []
        try:
            async with asyncio.timeout(self.vif_plugging_timeout):
                for port_id, future in waits.items():
                    if await future == "failed":
                        failed.append(port_id)
        except TimeoutError:
            late = sorted(p for p, f in waits.items() if not f.done())
            reason = (f"Failed to allocate the network(s): no network-vif-plugged event "
                      f"for port(s) {', '.join(late)} within {self.vif_plugging_timeout:g} "
                      "seconds, not rescheduling.")
        else:
            if not failed:
                return
            reason = (f"Failed to allocate the network(s): port(s) {', '.join(failed)} "
                      "could not be wired on this host, not rescheduling.")
        if not self.vif_plugging_is_fatal:
            log.warning("%s: %s (vif_plugging_is_fatal is off: going on)", instance.uuid,
                        reason)
            return
        if destroy:
            await self.driver.destroy(instance)
        raise SpawnError(reason, retryable=False)

    def _forget(self, uuid: str, waits: dict[str, asyncio.Future[str]]) -> None:
        for port_id, future in waits.items():
            key = (uuid, "network-vif-plugged", port_id)
            if self._waiters.get(key) is future:
                del self._waiters[key]

    async def _undo_ports(self, alloc: Allocation | None) -> None:
        if alloc is not None and self.ports is not None:
            await self.ports.undo(alloc)

    async def _bind_here(self, uuid: str) -> None:
        """A resize lands on this host (or a revert comes back): its ports follow it
        (Nova's migrate_instance_finish), so this host's network agent wires them."""
        if self.ports is None:
            return
        try:
            await self.ports.rebind(uuid)
        except StacklingError as exc:
            log.warning("the ports of %s could not follow it to %s: %s", uuid, self.host, exc)

    async def _network_of(self, uuid: str) -> NetworkInfo:
        """The ports an instance has now (a rebuild or a re-created VM plugs them again)."""
        if self.ports is None:
            return NetworkInfo()
        try:
            return await self.ports.current(uuid)
        except StacklingError as exc:
            log.warning("ports of %s unknown (%s): spawning without them", uuid, exc)
            return NetworkInfo()

    async def _advance(self, uuid: str, task: str, expected: list[str | None],
                       events: list[ActionEvent] | None = None) -> InstanceInfo | None:
        reply = await self.conductor.instance_update(uuid, {"task_state": task}, expected,
                                                     events)
        return reply.instance if reply.updated else None

    async def _image(self, image_ref: str) -> ImageMeta:
        if not image_ref:
            return ImageMeta(id="")
        if self.images is None:
            raise SpawnError("This cloud has no image service to fetch the image from.")
        image = await self.images.get(image_ref)
        if image.status != "active":
            raise SpawnError(f"Image {image_ref} is not active.", retryable=False)
        return ImageMeta(id=image.id, name=image.name, disk_format=image.disk_format,
                         container_format=image.container_format, size=image.size,
                         min_ram=image.min_ram, min_disk=image.min_disk,
                         properties=dict(image.properties))

    async def _build_failed(self, m: BuildAndRunInstance, span: EventSpan, reason: str,
                            retryable: bool) -> None:
        """The driver already removed what spawn made; the conductor frees the claim and
        reschedules or sets ERROR."""
        uuid = m.spec.instance_uuid
        log.warning("build of %s on %s failed: %s", uuid, self.host, reason)
        await span.fail(reason)
        await self.conductor.build_failed(m.spec, f"Build of instance {uuid} aborted: "
                                          f"{reason}", retryable, m.request_id)

    # -- os-interface: hot-plug and unplug ports ---------------------------------------------
    async def attach_interface(self, m: AttachInterface) -> InterfaceAttached:
        """Create or take the port, bind it here, hot-plug it, wait for vif-plugged. On any
        failure the port is given back and the guest left as it was."""
        uuid = m.instance_uuid
        instance = await self.conductor.instance_get(uuid)
        if instance is None:
            raise NotFound(f"Instance {uuid} could not be found.")
        if self.ports is None:
            raise InterfaceAttachFailed(f"Failed to attach network adapter device to {uuid}: "
                                        "this host cannot hot-plug interfaces.")
        alloc = await self.ports.allocate(instance, [m.request], self.default_zone)
        waits: dict[str, asyncio.Future[str]] = {}
        plugged = False
        try:
            if self.vif_plugging_timeout > 0:
                waits = {p.id: self.expect_event(uuid, "network-vif-plugged", p.id)
                         for p in alloc.ports}
            await self.ports.bind(alloc)
            info = await self.ports.network_info(alloc)
            await self.driver.attach_interface(instance, info.vifs[0])
            plugged = True
            if waits:
                await self._wait_plugged(instance, waits, destroy=False)
            port = await self.ports.client.get_port(alloc.ports[0].id)
        except (VirtError, StacklingError) as exc:
            text = exc.message if isinstance(exc, StacklingError) else str(exc)
            log.warning("attaching a port to %s failed: %s", uuid, text)
            if plugged:
                with contextlib.suppress(VirtError, StacklingError):
                    await self.driver.detach_interface(instance, alloc.ports[0].id)
            await self.ports.undo(alloc)
            raise InterfaceAttachFailed(
                f"Failed to attach network adapter device to {uuid}: {text}") from exc
        finally:
            self._forget(uuid, waits)
        return InterfaceAttached(port=port.raw)

    async def detach_interface(self, m: DetachInterface) -> InterfaceAttached:
        uuid = m.instance_uuid
        instance = await self.conductor.instance_get(uuid)
        if instance is None:
            raise NotFound(f"Instance {uuid} could not be found.")
        if self.ports is None:
            raise InterfaceAttachFailed(f"Failed to detach network adapter device from "
                                        f"{uuid}: this host cannot unplug interfaces.")
        port = await self.ports.client.get_port(m.port_id)
        try:
            await self.driver.detach_interface(instance, m.port_id)
        except InstanceNotFound:
            pass  # the VM is not running: nothing to unplug
        except VirtError as exc:
            raise InterfaceAttachFailed(f"Failed to detach network adapter device from "
                                        f"{uuid}: {exc}") from exc
        await self.ports.release(port)
        return InterfaceAttached(port=port.raw)

    # -- rebuild ----------------------------------------------------------------------------
    async def rebuild_instance(self, m: RebuildInstance) -> None:
        """Destroy the VM and spawn it again from the new image on the same claim."""
        uuid, rid, event = m.instance_uuid, m.request_id, "compute_rebuild_instance"
        instance = await self.conductor.instance_get(uuid)
        if instance is None or instance.task_state != Task.REBUILDING:
            return
        await self.conductor.action_event(uuid, rid, event, "start")
        try:
            image = await self._image(m.image_ref)
            await self.driver.destroy(instance)
            instance = await self._advance(uuid, Task.REBUILD_SPAWNING, [Task.REBUILDING])
            if instance is None:
                return
            await self.driver.spawn(instance, image, await self._network_of(uuid))
            await volumes.replug(self.attacher, instance, m.volumes)
            if m.was_stopped:
                await self.driver.power_off(instance)
            power = await self.driver.get_power_state(instance)
        except (VirtError, StacklingError) as exc:
            text = exc.message if isinstance(exc, StacklingError) else str(exc)
            log.warning("rebuild of %s failed: %s", uuid, text)
            await self.conductor.instance_fault(uuid, f"Rebuild of instance {uuid} failed: "
                                                      f"{text}")
            await self.conductor.action_event(uuid, rid, event, "finish", "Error", text)
            return
        await self.conductor.instance_update(
            uuid, {"vm_state": states.STOPPED if m.was_stopped else states.ACTIVE,
                   "task_state": None, "power_state": power, "launched_at": "now"},
            [Task.REBUILD_SPAWNING])
        await self.conductor.action_event(uuid, rid, event, "finish", "Success")

    # -- resize ---------------------------------------------------------------------------
    async def migration_step(self, m: ResizeInstance | FinishResize | ConfirmResize |
                             RevertResize | FinishRevertResize) -> None:
        """One host's part of a resize; failures end the migration in ``error`` and put
        the server back where it was (the conductor moves the allocations back)."""
        uuid = m.instance_uuid
        instance = await self.conductor.instance_get(uuid)
        if instance is None:
            return
        event = {ResizeInstance: "compute_resize_instance",
                 FinishResize: "compute_finish_resize",
                 ConfirmResize: "compute_confirm_resize",
                 RevertResize: "compute_revert_resize",
                 FinishRevertResize: "compute_finish_revert_resize"}[type(m)]
        await self.conductor.action_event(uuid, m.request_id, event, "start")
        try:
            await self._migration_step(m, instance)
        except (VirtError, StacklingError) as exc:
            text = exc.message if isinstance(exc, StacklingError) else str(exc)
            log.warning("%s of %s failed: %s", event, uuid, text)
            if isinstance(m, FinishResize) and m.source_host == self.host:
                with contextlib.suppress(VirtError):
                    await self.driver.finish_revert_migration(
                        instance, power_on=not m.was_stopped)
            elif isinstance(m, FinishResize):
                with contextlib.suppress(StacklingError):
                    await self.peers.cast(m.source_host, FinishRevertResize(
                        **m.model_dump(exclude={"flavor"}), flavor=instance.flavor))
            if isinstance(m, ConfirmResize):
                # the server runs on from its new host; only the old disks are left behind
                # (the event says so), and the confirm still ends
                await self.conductor.migration_done(uuid, m.migration_uuid, "confirmed",
                                                    instance.power_state)
            else:
                await self.conductor.migration_done(uuid, m.migration_uuid, "error",
                                                    instance.power_state,
                                                    f"Resize failed: {text}")
            await self.conductor.action_event(uuid, m.request_id, event, "finish", "Error",
                                              text)
            return
        await self.conductor.action_event(uuid, m.request_id, event, "finish", "Success")

    async def _migration_step(self, m: ResizeInstance | FinishResize | ConfirmResize |
                              RevertResize | FinishRevertResize,
                              instance: InstanceInfo) -> None:
        if isinstance(m, ResizeInstance):
            if instance.task_state != Task.RESIZE_MIGRATING:
                return
            await self.driver.migrate_disk_and_power_off(instance, m.dest_host)
            await self._advance(m.instance_uuid, Task.RESIZE_MIGRATED,
                                [Task.RESIZE_MIGRATING])
            finish = FinishResize(**m.model_dump())
            if m.dest_host == self.host:  # the same host: no hop (we hold the lock)
                await self._migration_step(finish, instance)
            else:
                await self.peers.cast(m.dest_host, finish)
        elif isinstance(m, FinishResize):
            resized = instance.model_copy(update={"flavor": m.flavor})
            await self._bind_here(m.instance_uuid)
            await self.driver.finish_migration(resized, await self._image(instance.image_ref),
                                               power_on=not m.was_stopped)
            power = await self.driver.get_power_state(resized)
            await self.conductor.migration_done(m.instance_uuid, m.migration_uuid,
                                                "finished", power)
        elif isinstance(m, ConfirmResize):
            await self.driver.confirm_migration(instance)
            await self.conductor.migration_done(m.instance_uuid, m.migration_uuid,
                                                "confirmed", instance.power_state)
        elif isinstance(m, RevertResize):
            if instance.task_state != Task.RESIZE_REVERTING:
                return
            await self.driver.destroy(instance)
            back = FinishRevertResize(**m.model_dump())
            if m.source_host == self.host:
                await self._migration_step(back, instance)
            else:
                await self.peers.cast(m.source_host, back)
        else:
            restored = instance.model_copy(update={"flavor": m.flavor})
            await self._bind_here(m.instance_uuid)
            await self.driver.finish_revert_migration(restored, power_on=not m.was_stopped)
            power = await self.driver.get_power_state(restored)
            await self.conductor.migration_done(m.instance_uuid, m.migration_uuid,
                                                "reverted", power)

    # -- snapshot (createImage) -----------------------------------------------------------
    async def snapshot_instance(self, m: SnapshotInstance) -> None:
        """Upload the disk into the queued image with the service token."""
        uuid, rid, event = m.instance_uuid, m.request_id, "compute_snapshot_instance"
        instance = await self.conductor.instance_get(uuid)
        if instance is None or instance.task_state != Task.IMAGE_SNAPSHOT:
            return
        await self.conductor.action_event(uuid, rid, event, "start")
        try:
            if self.images is None:
                raise VirtError("This cloud has no image service to upload the snapshot to.")
            data = await self.driver.snapshot(instance)
            await self._advance(uuid, Task.IMAGE_UPLOADING, [Task.IMAGE_SNAPSHOT])
            await self.images.upload(m.image_id, data)
        except (VirtError, StacklingError) as exc:
            text = exc.message if isinstance(exc, StacklingError) else str(exc)
            log.warning("snapshot of %s failed: %s", uuid, text)
            await self.conductor.instance_update(
                uuid, {"task_state": None}, [Task.IMAGE_SNAPSHOT, Task.IMAGE_UPLOADING])
            if self.images is not None:
                with contextlib.suppress(StacklingError):
                    await self.images.delete(m.image_id)
            await self.conductor.action_event(uuid, rid, event, "finish", "Error", text)
            return
        await self.conductor.instance_update(uuid, {"task_state": None},
                                             [Task.IMAGE_UPLOADING])
        if m.backup_type is not None and m.rotation is not None:
            await self._rotate_backups(uuid, m.backup_type, m.rotation, m.image_id)
        await self.conductor.action_event(uuid, rid, event, "finish", "Success")

    async def _rotate_backups(self, uuid: str, backup_type: str, rotation: int,
                              newest: str) -> None:
        """Delete the oldest backups of this type beyond ``rotation`` (Nova's rotation).
        Image times have one-second resolution: the one just made counts as the newest."""
        assert self.images is not None
        try:
            backups = await self.images.list_images(filters={
                "instance_uuid": uuid, "image_type": "backup", "backup_type": backup_type})
            backups.sort(key=lambda i: (i.id == newest, i.created_at or ""), reverse=True)
            for old in backups[rotation:]:
                await self.images.delete(old.id)
        except StacklingError as exc:
            log.warning("rotating the %s backups of %s failed: %s", backup_type, uuid, exc)

    # -- delete ---------------------------------------------------------------------------
    async def terminate_instance(self, m: TerminateInstance) -> None:
        uuid = m.instance_uuid
        instance = m.instance or await self.conductor.instance_get(uuid)
        if instance is None:
            return
        span = EventSpan(self.conductor, uuid, m.request_id, "compute_terminate_instance")
        try:
            await self.driver.destroy(instance)
            if self.attacher is not None:  # attachments (and exports) go, some volumes too
                await self.attacher.release(m.volumes)
            if self.ports is not None:  # ports compute made go, the user's are given back
                await self.ports.deallocate(uuid)
        except Exception as exc:
            await span.fail(str(exc))
            raise
        except BaseException:
            span.abandon()
            raise
        await self.conductor.instance_terminated(uuid, await span.end("Success"))

    # -- stop, start, reboot, pause, unpause, suspend, resume -------------------------------
    async def power_action(self, m: StopInstance | StartInstance | PauseInstance |
                           UnpauseInstance | SuspendInstance | ResumeInstance |
                           RebootInstance, action: PowerAction) -> None:
        uuid = m.instance_uuid
        instance = await self.conductor.instance_get(uuid)
        if instance is None or instance.task_state not in action.tasks:
            return  # deleted, or another action won meanwhile
        await self.conductor.action_event(uuid, m.request_id, action.event, "start")
        call: Callable[..., Awaitable[None]] = getattr(self.driver, action.call)
        try:
            try:
                if isinstance(m, RebootInstance):
                    await call(instance, m.reboot_type)
                else:
                    await call(instance)
            except InstanceNotFound:
                # the hypervisor lost the VM (a host restart): start and hard reboot
                # re-create it from its image, as Nova's hard reboot re-defines the domain
                if not (isinstance(m, StartInstance) or (
                        isinstance(m, RebootInstance) and m.reboot_type == "HARD")):
                    raise
                await self.driver.spawn(instance, await self._image(instance.image_ref),
                                        await self._network_of(uuid))
            power = await self.driver.get_power_state(instance)
        except (VirtError, StacklingError) as exc:
            log.warning("%s of %s failed: %s", action.call, uuid, exc)
            await self.conductor.instance_update(uuid, {"task_state": None},
                                                 list(action.tasks))
            await self.conductor.instance_fault(uuid, str(exc), set_error=False)
            await self.conductor.action_event(uuid, m.request_id, action.event, "finish",
                                              "Error", str(exc))
            return
        await self.conductor.instance_update(
            uuid, {"vm_state": action.vm_state, "task_state": None, "power_state": power},
            list(action.tasks))
        await self.conductor.action_event(uuid, m.request_id, action.event, "finish",
                                          "Success")

    async def console_output(self, m: GetConsoleOutput) -> ConsoleOutput:
        instance = await self.conductor.instance_get(m.instance_uuid)
        if instance is None:
            raise NotFound(f"Instance {m.instance_uuid} could not be found.")
        try:
            output = await self.driver.get_console_output(instance)
        except InstanceNotFound as exc:
            raise NotFound(str(exc)) from exc
        if m.length is not None:  # the last ``length`` lines, as Nova's _tail_log
            output = "\n".join(output.split("\n")[-m.length:]) if m.length > 0 else ""
        return ConsoleOutput(output=output)

    async def console_connect(self, m: GetConsoleConnect) -> ConsoleConnect:
        """The VM's console socket for a console proxy (drivers without one: NotFound)."""
        instance = await self.conductor.instance_get(m.instance_uuid)
        locate = getattr(self.driver, "console_socket", None)
        if instance is None or locate is None:
            raise NotFound(f"Instance {m.instance_uuid} has no {m.kind} console.")
        try:
            return ConsoleConnect(path=str(locate(instance, m.kind)))
        except VirtError as exc:
            raise NotFound(str(exc)) from exc

    async def diagnostics(self, m: GetDiagnostics) -> Diagnostics:
        instance = await self.conductor.instance_get(m.instance_uuid)
        if instance is None:
            raise NotFound(f"Instance {m.instance_uuid} could not be found.")
        try:
            return Diagnostics(data=await self.driver.get_diagnostics(instance))
        except InstanceNotFound as exc:
            raise NotFound(str(exc)) from exc

    async def volume_snapshot(self, m: VolumeSnapshotCreate | VolumeSnapshotDelete) -> None:
        """An assisted volume snapshot (a cast: as in Nova, a driver that cannot take one
        leaves the volume service's snapshot waiting, and says so in the log)."""
        instance = await self.conductor.instance_get(m.instance_uuid)
        if instance is None:
            log.warning("volume snapshot for %s: the instance is gone", m.instance_uuid)
            return
        try:
            if isinstance(m, VolumeSnapshotCreate):
                await self.driver.volume_snapshot_create(instance, m.volume_id, m.create_info)
            else:
                await self.driver.volume_snapshot_delete(instance, m.volume_id, m.snapshot_id,
                                                         m.delete_info)
        except VirtError as exc:
            log.warning("volume snapshot of %s on %s failed: %s", m.volume_id,
                        m.instance_uuid, exc)

    # -- events from other services (network-vif-plugged, ...) ----------------------------
    def expect_event(self, uuid: str, name: str, tag: str | None = None
                     ) -> asyncio.Future[str]:
        """Register interest before triggering what sends the event (e.g. plugging a
        port); await the future (with a timeout) for its status."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters[(uuid, name, tag)] = future
        return future

    async def external_event(self, m: ExternalEvent) -> None:
        future = self._waiters.pop((m.instance_uuid, m.name, m.tag), None)
        if future is not None and not future.done():
            future.set_result(m.status)
            return
        if m.name == "power-update":
            instance = await self.conductor.instance_get(m.instance_uuid)
            if instance is not None:
                power = await self.driver.get_power_state(instance)
                await self.conductor.instance_update(m.instance_uuid, {"power_state": power})
            return
        log.debug("event %s for %s with nobody waiting", m.name, m.instance_uuid)

    # -- power state sync (Nova's _sync_power_states) ---------------------------------------
    async def _power_syncs(self) -> None:
        delay = random.uniform(0, self.power_sync_interval)  # noqa: S311
        while True:
            await asyncio.sleep(delay)
            delay = self.power_sync_interval
            try:
                await self.sync_power_states()
            except StacklingError as exc:
                log.warning("power state sync of %s failed: %s", self.host, exc)

    async def sync_power_states(self) -> None:
        """Record what the hypervisor says about idle instances; a guest found shut down
        or crashed while ACTIVE becomes SHUTOFF, as Nova's sync stops it."""
        for instance in await self.conductor.instances_on_host():
            if instance.task_state is not None or instance.vm_state not in (
                    states.ACTIVE, states.PAUSED, states.SUSPENDED, states.STOPPED):
                continue
            async with self._serialized(instance.uuid):
                gone = False
                try:
                    power = await self.driver.get_power_state(instance)
                except InstanceNotFound:
                    power, gone = states.NOSTATE, True
                except VirtError:
                    continue
                if power == states.NOSTATE and not gone:
                    continue  # the hypervisor could not tell now: no news
                values: dict[str, Any] = {"power_state": power}
                if instance.vm_state == states.ACTIVE and (
                        gone or power in (states.SHUTDOWN, states.CRASHED)):
                    values["vm_state"] = states.STOPPED
                if values != {"power_state": instance.power_state}:
                    log.info("%s: power state %s -> %s", instance.uuid,
                             instance.power_state, power)
                    await self.conductor.instance_update(instance.uuid, values, [None])

    # -- restart: reconcile -----------------------------------------------------------------
    async def reconcile(self) -> None:
        """Bring the database and the hypervisor back in line after a restart."""
        owned = {i.uuid: i for i in await self.conductor.instances_on_host()}
        present = set(await self.driver.list_instances())
        for uuid, instance in owned.items():
            try:
                await self._reconcile_one(instance, uuid in present)
            except StacklingError as exc:
                log.warning("reconcile of %s failed: %s", uuid, exc)
        for uuid in present - set(owned):
            log.warning("destroying VM %s that no server owns", uuid)
            with contextlib.suppress(VirtError):
                await self.driver.destroy(_orphan(uuid, self.host))
        # confirms of resizes from this host that a stop cut short (the cast is taken
        # off the queue when its handler starts)
        try:
            confirms = await self.conductor.confirming_on_host()
        except StacklingError as exc:
            log.warning("cannot ask for pending resize confirms: %s", exc)
            confirms = []
        for confirm in confirms:
            try:
                async with self._serialized(confirm.instance_uuid):
                    await self.migration_step(confirm)
            except StacklingError as exc:
                log.warning("confirming the resize of %s failed: %s", confirm.instance_uuid,
                            exc)

    async def _reconcile_one(self, instance: InstanceInfo, present: bool) -> None:
        uuid, task = instance.uuid, instance.task_state
        if task == Task.DELETING:
            await self.driver.destroy(instance)
            await self.conductor.instance_terminated(uuid)
            return
        if instance.vm_state == states.BUILDING:
            await self.driver.destroy(instance)
            await self.conductor.instance_fault(
                uuid, "The build was interrupted by a restart of the compute agent.")
            return
        power = states.NOSTATE
        if present:
            with contextlib.suppress(InstanceNotFound):
                power = await self.driver.get_power_state(instance)
        values: dict[str, Any] = {"power_state": power}
        if task is not None:
            values["task_state"] = None  # the action was interrupted
        if not present and instance.vm_state in (states.ACTIVE, states.PAUSED,
                                                 states.SUSPENDED, states.RESCUED):
            values["vm_state"] = states.STOPPED  # the VM is gone: show it as SHUTOFF
        if values != {"power_state": instance.power_state}:
            await self.conductor.instance_update(uuid, values, [task])


def _image_meta(image: dict[str, Any]) -> ImageMeta:
    return ImageMeta(id=str(image["id"]), name=str(image.get("name") or ""),
                     disk_format=image.get("disk_format"),
                     container_format=image.get("container_format"), size=image.get("size"),
                     min_ram=int(image.get("min_ram") or 0),
                     min_disk=int(image.get("min_disk") or 0),
                     properties=dict(image.get("properties") or {}))


def _orphan(uuid: str, host: str) -> InstanceInfo:

    return InstanceInfo(uuid=uuid, name=uuid, instance_name=uuid, project_id="", user_id="",
                        host=host, vm_state=states.DELETED,
                        flavor=FlavorInfo(flavorid="", name="", vcpus=0, memory_mb=0))
