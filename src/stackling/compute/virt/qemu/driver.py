"""The QEMU hypervisor driver: one daemonized QEMU per VM, controlled over QMP.

Files (see :mod:`.layout`) live in ``<data_dir>/instances/<uuid>/``; base images in
``<data_dir>/_base/`` (:mod:`.imagecache`). Nothing is kept only in memory: after an agent
restart :meth:`list_instances` and :meth:`get_power_state` find running VMs again through
their pidfiles and QMP sockets (adoption), and a VM whose process vanished without the
driver ending it reports ``CRASHED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from stackling.common.blocking import run_blocking
from stackling.common.config import QemuConfig
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
from stackling.compute.virt.qemu import (
    accel,
    cmdline,
    configdrive,
    host,
    hotplug,
    imagecache,
    process,
)
from stackling.compute.virt.qemu.layout import InstanceFiles, LaunchSpec, tap_name
from stackling.compute.virt.qemu.monitor import Monitor, MonitorError, connect

log = logging.getLogger(__name__)

RESIZE_SUFFIX = "_resize"
#: the image property hw_video_model -> QEMU's -vga ("none": no display, no VNC console;
#: under TCG a VGA text console that the kernel also logs to costs boot time)
VIDEO_MODELS = {"std": "std", "vga": "std", "cirrus": "cirrus", "vmvga": "vmware",
                "virtio": "virtio", "qxl": "qxl", "none": "none"}
#: QMP run states -> power states
POWER = {"running": states.RUNNING, "paused": states.POWER_PAUSED,
         "shutdown": states.SHUTDOWN, "postmigrate": states.POWER_SUSPENDED,
         "guest-panicked": states.CRASHED, "internal-error": states.CRASHED,
         "io-error": states.CRASHED, "suspended": states.POWER_SUSPENDED}


class QemuDriver(ComputeDriver):
    snapshot_format = "raw"

    def __init__(self, node: str, config: QemuConfig, data_dir: Path,
                 images: imagecache.ImageSource | None) -> None:
        self.node = node
        self.config = config
        self.data_dir = data_dir
        self.root = data_dir / "instances"
        self.cache = imagecache.ImageCache(data_dir / "_base", images)
        self.accel = "tcg"
        self.version = 0
        self._locks: dict[str, asyncio.Lock] = {}

    # -- host ------------------------------------------------------------------------------
    async def init_host(self, host_name: str) -> None:
        binary = shutil.which(self.config.binary)
        if binary is None:
            raise VirtError(f"{self.config.binary} is not installed "
                            "(apt-get install qemu-system-x86 qemu-utils).")
        if shutil.which("qemu-img") is None:
            raise VirtError("qemu-img is not installed (apt-get install qemu-utils).")
        self.root.mkdir(parents=True, exist_ok=True)
        self.version = await run_blocking(host.qemu_version, binary)
        self.accel = await accel.choose(self.config.accel, binary,
                                        self.config.kvm_probe_timeout,
                                        self.data_dir / "kvm-probe.json")
        log.info("QEMU %s on %s, accelerator %s", self.version, host_name, self.accel)
        removed = await run_blocking(self.cache.prune, self._images_in_use())
        if removed:
            log.info("removed %d unused cached image(s): %s", len(removed), removed)

    def _images_in_use(self) -> set[str]:
        """Cached images some instance directory (resize copies too) still refers to."""
        used: set[str] = set()
        for launch in self.root.glob("*/launch.json"):
            try:
                spec = LaunchSpec.from_json(launch.read_text())
            except (OSError, ValueError, TypeError):
                continue
            used.add(spec.image_id)
            used.update(Path(p).name for p in (spec.kernel, spec.initrd) if p)
        return used

    def get_available_resource(self) -> HostResources:
        c = self.config
        return HostResources(
            node=self.node, hypervisor_type="QEMU", hypervisor_version=self.version,
            vcpus=c.vcpus or host.vcpus(), memory_mb=c.memory_mb or host.memory_mb(),
            local_gb=c.local_gb or host.local_gb(self.root), host_ip=host.host_ip(),
            cpu_info=host.cpu_info())

    def _files(self, uuid: str, suffix: str = "") -> InstanceFiles:
        return InstanceFiles(self.root, uuid, suffix)

    def _known(self, instance: InstanceInfo) -> InstanceFiles:
        files = self._files(instance.uuid)
        if not files.exists():
            raise InstanceNotFound(f"Instance {instance.uuid} could not be found.")
        return files

    def _lock(self, uuid: str) -> asyncio.Lock:
        return self._locks.setdefault(uuid, asyncio.Lock())

    async def list_instances(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if not p.name.endswith(RESIZE_SUFFIX) and (p / "launch.json").exists())

    # -- spawn -----------------------------------------------------------------------------
    async def spawn(self, instance: InstanceInfo, image: ImageMeta, network: NetworkInfo,
                    admin_password: str | None = None) -> None:
        files = self._files(instance.uuid)
        if files.dir.exists():
            raise SpawnError(f"Instance {instance.uuid} already exists on this host.",
                             retryable=False)
        if not image.id and image.root_volume is None:
            raise SpawnError("Nothing to boot from: no image and no root volume.",
                             retryable=False)
        files.dir.mkdir(parents=True)
        try:
            async with self._lock(instance.uuid):
                spec = await self._prepare(instance, image, network, files)
                await self._start(files, spec)
        except BaseException as exc:
            await self._remove(files)
            if isinstance(exc, SpawnError):
                raise
            if isinstance(exc, imagecache.ImageError):
                raise SpawnError(str(exc), exc.retryable) from exc
            if isinstance(exc, (VirtError, configdrive.ConfigDriveError, OSError)):
                raise SpawnError(str(exc)) from exc
            raise

    async def _prepare(self, instance: InstanceInfo, image: ImageMeta, network: NetworkInfo,
                       files: InstanceFiles) -> LaunchSpec:
        kernel = initrd = cmd = None
        props = image.properties
        if props.get("kernel_id"):
            kernel = str((await self.cache.fetch(str(props["kernel_id"]), "aki")).path)
            if props.get("ramdisk_id"):
                initrd = str((await self.cache.fetch(str(props["ramdisk_id"]), "ari")).path)
            cmd = str(props.get("os_command_line") or "console=tty0 console=ttyS0,115200")
        if image.root_volume is None:
            base = await self.cache.fetch(image.id, image.disk_format)
            await run_blocking(imagecache.create_overlay, base, files.disk,
                               instance.flavor.root_gb)
        vifs = [dict(v) for v in network.vifs]
        drive = None
        if self.config.force_config_drive:
            await run_blocking(configdrive.build, files.config_drive, instance, vifs)
            drive = str(files.config_drive)
        nics = [{"tap": tap_name(str(v["id"])),
                 "mac": str(v.get("mac_address") or v.get("address"))} for v in vifs]
        video = str(props.get("hw_video_model") or "std")
        if video not in VIDEO_MODELS:
            raise SpawnError(f"Image {image.id}: hw_video_model {video!r} is not one of "
                             f"{', '.join(sorted(VIDEO_MODELS))}.", retryable=False)
        spec = LaunchSpec(uuid=instance.uuid, name=instance.instance_name,
                          vcpus=instance.flavor.vcpus, memory_mb=instance.flavor.memory_mb,
                          disk=str(files.disk), kernel=kernel, initrd=initrd, cmdline=cmd,
                          config_drive=drive, machine=self.config.machine, accel=self.accel,
                          vnc=self.config.vnc and video != "none",
                          video=VIDEO_MODELS[video], nics=nics, image_id=image.id,
                          root_volume=image.root_volume)
        files.write_spec(spec)
        return spec

    async def _start(self, files: InstanceFiles, spec: LaunchSpec,
                     incoming: str | None = None) -> None:
        """Launch QEMU; return once the guest wrote to its console (or, ``incoming``, once
        its saved state is loaded). Raises VirtError with QEMU's words or the timeout."""
        for sock in (files.qmp, files.serial, files.vnc):
            sock.unlink(missing_ok=True)
        files.trim_console()
        offset = files.console_log.stat().st_size if files.console_log.exists() else 0
        files.set_intent(None)
        argv = cmdline.build(self.config.binary, spec, files, incoming)
        try:
            await process.launch(argv, files)
        except process.LaunchFailed as exc:
            raise VirtError(f"QEMU failed to start: {self._scrub(str(exc))}") from exc
        if incoming is None:
            await self._wait_for_guest(files, offset)

    async def _wait_for_guest(self, files: InstanceFiles, offset: int) -> None:
        deadline = time.monotonic() + self.config.boot_timeout
        while True:
            size = files.console_log.stat().st_size if files.console_log.exists() else 0
            if size > offset:
                return
            if process.find(files) is None:
                tail = self._scrub(files.stderr_tail()) or "no message"
                raise VirtError(f"QEMU exited while booting the guest: {tail}")
            if time.monotonic() >= deadline:
                await process.kill(files)
                raise VirtError(f"The guest wrote nothing to its console within "
                                f"{self.config.boot_timeout:.0f} s (accelerator "
                                f"{self.accel}): the boot never reached the guest.")
            await asyncio.sleep(0.05)

    def _scrub(self, text: str) -> str:
        """QEMU's words without the host's paths (faults are shown to users)."""
        return text.replace(str(self.data_dir), "<data dir>")

    async def _remove(self, files: InstanceFiles) -> None:
        spec = None
        with contextlib.suppress(OSError, ValueError, TypeError):
            spec = files.read_spec()
        await process.kill(files)
        for nic in spec.nics if spec else []:
            remove_tap(nic["tap"])
        await run_blocking(shutil.rmtree, files.dir, True)

    async def destroy(self, instance: InstanceInfo) -> None:
        async with self._lock(instance.uuid):
            await self._remove(self._files(instance.uuid))
            if instance.vm_state == states.DELETED or instance.task_state == "deleting":
                await self._remove(self._files(instance.uuid, RESIZE_SUFFIX))
        self._locks.pop(instance.uuid, None)

    # -- state -----------------------------------------------------------------------------
    async def get_power_state(self, instance: InstanceInfo) -> int:
        files = self._known(instance)
        return await self._power(files)

    async def _power(self, files: InstanceFiles) -> int:
        if process.find(files) is None:
            return self._not_running(files)
        try:
            async with connect(files) as mon:
                return POWER.get(await mon.status(), states.NOSTATE)
        except MonitorError:
            # A QEMU that is exiting (killed, crashed) still has its pid for a moment but
            # resets the monitor's connection: give it a second to be gone before saying
            # "cannot tell".
            pid = process.find(files)
            if pid is not None and not await process.wait_gone(pid, files.uuid, 1.0):
                return states.NOSTATE
            return self._not_running(files)

    @staticmethod
    def _not_running(files: InstanceFiles) -> int:
        if files.state.exists():
            return states.POWER_SUSPENDED
        return states.SHUTDOWN if files.get_intent() == "stopped" else states.CRASHED

    @contextlib.asynccontextmanager
    async def _monitor(self, instance: InstanceInfo) -> AsyncIterator[Monitor]:
        files = self._known(instance)
        if process.find(files) is None:
            raise VirtError(f"Instance {instance.uuid} is not running.")
        try:
            async with connect(files) as mon:
                yield mon
        except MonitorError as exc:
            raise VirtError(str(exc)) from exc

    # -- power -----------------------------------------------------------------------------
    async def power_off(self, instance: InstanceInfo, grace: float = 0) -> None:
        """ACPI power button, up to ``grace`` s (0: ``powerdown_timeout``), then quit."""
        files = self._known(instance)
        async with self._lock(instance.uuid):
            files.set_intent("stopped")
            if process.find(files) is None:
                return
            grace = grace or self.config.powerdown_timeout
            with contextlib.suppress(MonitorError):
                async with connect(files) as mon:
                    if await mon.status() == "running" and grace > 0:
                        await mon.execute("system_powerdown")
                        await mon.wait_status(lambda s: s != "running", grace)
                    with contextlib.suppress(MonitorError):
                        await mon.execute("quit", limit=5)
            await process.kill(files)

    async def power_on(self, instance: InstanceInfo) -> None:
        files = self._known(instance)
        async with self._lock(instance.uuid):
            if process.find(files) is not None:  # never start twice
                async with self._monitor(instance) as mon:
                    status = await mon.status()
                    if status == "shutdown":
                        await mon.execute("system_reset")
                    if status != "running":
                        await mon.execute("cont")
                files.set_intent(None)
                return
            files.state.unlink(missing_ok=True)
            await self._start(files, files.read_spec())

    async def reboot(self, instance: InstanceInfo, reboot_type: str) -> None:
        files = self._known(instance)
        async with self._lock(instance.uuid):
            if process.find(files) is None:
                if reboot_type != "HARD":
                    raise VirtError(f"Instance {instance.uuid} is not running: "
                                    "use a hard reboot.")
                files.state.unlink(missing_ok=True)
                await self._start(files, files.read_spec())
                return
            async with self._monitor(instance) as mon:
                status = await mon.status()
                if reboot_type == "SOFT":
                    if status != "running":
                        raise VirtError(f"Cannot soft reboot instance {instance.uuid} "
                                        f"while it is {status}.")
                    await mon.execute("system_powerdown")
                    if await mon.wait_status(lambda s: s != "running",
                                             self.config.powerdown_timeout) is None:
                        log.info("%s ignored the power button: hard reboot", instance.uuid)
                await mon.execute("system_reset")
                if await mon.status() != "running":
                    await mon.execute("cont")
            files.set_intent(None)

    async def pause(self, instance: InstanceInfo) -> None:
        async with self._lock(instance.uuid), self._monitor(instance) as mon:
            if await mon.status() != "running":
                raise VirtError(f"Cannot pause instance {instance.uuid}: it is not running.")
            await mon.execute("stop")

    async def unpause(self, instance: InstanceInfo) -> None:
        async with self._lock(instance.uuid), self._monitor(instance) as mon:
            if await mon.status() != "paused":
                raise VirtError(f"Cannot unpause instance {instance.uuid}: it is not paused.")
            await mon.execute("cont")

    async def suspend(self, instance: InstanceInfo) -> None:
        """Save the guest's memory to ``state.bin`` and end the process."""
        files = self._known(instance)
        part = files.state.with_suffix(".part")
        async with self._lock(instance.uuid):
            async with self._monitor(instance) as mon:
                status = await mon.status()
                if status not in ("running", "paused"):
                    raise VirtError(f"Cannot suspend instance {instance.uuid} while it is "
                                    f"{status}.")
                await mon.execute("stop")
                try:
                    await mon.migrate_to_file(str(part))
                except MonitorError as exc:
                    part.unlink(missing_ok=True)
                    if status == "running":
                        await mon.execute("cont")
                    raise VirtError(str(exc)) from exc
                os.replace(part, files.state)
                files.set_intent("suspended")
                with contextlib.suppress(MonitorError):
                    await mon.execute("quit", limit=5)
            await process.kill(files)

    async def resume(self, instance: InstanceInfo) -> None:
        files = self._known(instance)
        async with self._lock(instance.uuid):
            if process.find(files) is not None or not files.state.exists():
                raise VirtError(f"Instance {instance.uuid} is not suspended.")
            await self._start(files, files.read_spec(), incoming=f"exec:cat '{files.state}'")
            async with self._monitor(instance) as mon:
                loaded = await mon.wait_status(lambda s: s not in ("inmigrate", "prelaunch"),
                                               self.config.boot_timeout)
                if loaded not in ("paused", "running", "postmigrate"):
                    await process.kill(files)
                    raise VirtError(f"Restoring the saved state failed (QEMU is {loaded}).")
                if loaded != "running":
                    await mon.execute("cont")
            files.state.unlink(missing_ok=True)
            files.set_intent(None)

    # -- resize ----------------------------------------------------------------------------
    async def migrate_disk_and_power_off(self, instance: InstanceInfo, dest_host: str) -> None:
        if dest_host != self.node:
            raise VirtError("The QEMU driver resizes on the same host only (moving disks "
                            "between hosts needs shared instance storage).")
        files = self._known(instance)
        self._not_volume_backed(files, "resized")
        kept = self._files(instance.uuid, RESIZE_SUFFIX)
        if process.find(files) is not None:
            await self.power_off(instance)
        async with self._lock(instance.uuid):
            await self._remove(kept)
            os.replace(files.dir, kept.dir)

    async def finish_migration(self, instance: InstanceInfo, image: ImageMeta,
                               power_on: bool) -> None:
        kept = self._files(instance.uuid, RESIZE_SUFFIX)
        files = self._files(instance.uuid)
        if not kept.exists():
            raise VirtError(f"Instance {instance.uuid} has no disks on this host to resize.")
        async with self._lock(instance.uuid):
            files.dir.mkdir(parents=True, exist_ok=False)
            try:
                old = kept.read_spec()
                await run_blocking(shutil.copyfile, kept.disk, files.disk)
                await run_blocking(imagecache.grow, files.disk, instance.flavor.root_gb)
                drive = None
                if old.config_drive:
                    await run_blocking(shutil.copyfile, kept.config_drive, files.config_drive)
                    drive = str(files.config_drive)
                spec = LaunchSpec(**{**old.__dict__, "vcpus": instance.flavor.vcpus,
                                     "memory_mb": instance.flavor.memory_mb,
                                     "disk": str(files.disk), "config_drive": drive})
                files.write_spec(spec)
                if power_on:
                    await self._start(files, spec)
                else:
                    files.set_intent("stopped")
            except BaseException:
                await self._remove(files)
                raise

    async def confirm_migration(self, instance: InstanceInfo) -> None:
        async with self._lock(instance.uuid):
            await self._remove(self._files(instance.uuid, RESIZE_SUFFIX))

    async def finish_revert_migration(self, instance: InstanceInfo, power_on: bool) -> None:
        kept = self._files(instance.uuid, RESIZE_SUFFIX)
        files = self._files(instance.uuid)
        if not kept.exists():
            raise InstanceNotFound(f"Instance {instance.uuid} has no disks kept to revert to.")
        async with self._lock(instance.uuid):
            await self._remove(files)
            os.replace(kept.dir, files.dir)
            spec = files.read_spec()
            spec.vcpus, spec.memory_mb = instance.flavor.vcpus, instance.flavor.memory_mb
            files.write_spec(spec)
            if power_on:
                await self._start(files, spec)
            else:
                files.set_intent("stopped")

    # -- snapshot, console -------------------------------------------------------------------
    async def snapshot(self, instance: InstanceInfo) -> AsyncIterator[bytes]:
        """The root disk as raw bytes. A running guest is paused while the disk is copied
        (QEMU flushes its writes when it stops), so the copy is consistent."""
        files = self._known(instance)
        self._not_volume_backed(files, "snapshotted")
        tmp = files.dir / "snapshot.raw"
        async with self._lock(instance.uuid):
            resume = False
            if process.find(files) is not None:
                async with self._monitor(instance) as mon:
                    if await mon.status() == "running":
                        await mon.execute("stop")
                        resume = True
            try:
                await run_blocking(imagecache.export_raw, files.disk, tmp)
            except imagecache.ImageError as exc:
                tmp.unlink(missing_ok=True)
                raise VirtError(f"Snapshot failed: {exc}") from exc
            finally:
                if resume:
                    async with self._monitor(instance) as mon:
                        await mon.execute("cont")

        async def chunks() -> AsyncIterator[bytes]:
            try:
                with tmp.open("rb") as fh:
                    while chunk := await run_blocking(fh.read, 1 << 20):
                        yield chunk
            finally:
                tmp.unlink(missing_ok=True)
        return chunks()

    async def get_console_output(self, instance: InstanceInfo) -> str:
        return self._known(instance).console_tail()

    def console_socket(self, instance: InstanceInfo, kind: str) -> Path:
        """The VM's ``vnc`` or ``serial`` unix socket (for the console proxy)."""
        files = self._known(instance)
        path = files.vnc if kind == "vnc" else files.serial
        if process.find(files) is None or not path.exists():
            raise VirtError(f"Instance {instance.uuid} has no {kind} console now.")
        return path

    async def get_diagnostics(self, instance: InstanceInfo) -> dict[str, Any]:
        data = await super().get_diagnostics(instance)
        spec = self._known(instance).read_spec()
        data.update({"driver": "libvirt", "hypervisor": "qemu" if self.accel == "tcg"
                     else "kvm", "hypervisor_os": "linux", "num_disks": 1,
                     "num_nics": len(spec.nics),
                     "config_drive": spec.config_drive is not None})
        return data

    # -- hot-plug hooks (block storage, interfaces) -----------------------------------------
    volume_protocols = frozenset({"file", "nbd"})

    async def attach_volume(self, instance: InstanceInfo, volume_id: str,
                            connection: dict[str, Any]) -> None:
        async with self._lock(instance.uuid), self._monitor(instance) as mon:
            try:
                await hotplug.attach_volume(mon, volume_id, connection)
            except MonitorError as exc:
                raise VirtError(f"Attaching volume {volume_id} failed: {exc}") from exc
            self._keep_volume(instance, volume_id, connection)

    async def detach_volume(self, instance: InstanceInfo, volume_id: str) -> None:
        async with self._lock(instance.uuid), self._monitor(instance) as mon:
            try:
                await hotplug.detach_volume(mon, volume_id)
            except MonitorError as exc:
                raise VirtError(f"Detaching volume {volume_id} failed: {exc}") from exc
            self._keep_volume(instance, volume_id, None)

    def _not_volume_backed(self, files: InstanceFiles, what: str) -> None:
        if files.read_spec().root_volume is not None:
            raise VirtError(f"A server booted from a volume cannot be {what} by the QEMU "
                            "driver yet.")

    def _keep_volume(self, instance: InstanceInfo, volume_id: str,
                     connection: dict[str, Any] | None) -> None:
        """Record a plugged (or unplugged) volume in launch.json: a stop/start, hard
        reboot or resume starts QEMU with it."""
        files = self._known(instance)
        spec = files.read_spec()
        spec.volumes = [v for v in spec.volumes if v.get("volume_id") != volume_id]
        if connection is not None:
            spec.volumes.append({"volume_id": volume_id, "connection": dict(connection)})
        files.write_spec(spec)

    async def attach_interface(self, instance: InstanceInfo, vif: dict[str, Any]) -> None:
        port = str(vif["id"])
        mac = str(vif.get("mac_address") or vif.get("address"))
        async with self._lock(instance.uuid), self._monitor(instance) as mon:
            try:
                await hotplug.attach_interface(mon, port, tap_name(port), mac)
            except MonitorError as exc:
                raise VirtError(f"Attaching port {port} failed: {exc}") from exc

    async def detach_interface(self, instance: InstanceInfo, port_id: str) -> None:
        async with self._lock(instance.uuid), self._monitor(instance) as mon:
            try:
                await hotplug.detach_interface(mon, port_id)
            except MonitorError as exc:
                raise VirtError(f"Detaching port {port_id} failed: {exc}") from exc


def remove_tap(name: str) -> None:
    """QEMU's taps vanish with it; one left over (a killed QEMU with a persistent tap) is
    deleted. Only this VM's own ``tap...`` device is ever touched."""
    if name.startswith("tap") and Path(f"/sys/class/net/{name}").exists():
        subprocess.run(["ip", "link", "del", "dev", name], capture_output=True, check=False)
