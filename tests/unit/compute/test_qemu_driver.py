"""QEMU driver pieces that need no VM: the command line, launch specs, the image cache's
checksum and format checks, config drive contents, host facts, process identity."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stackling.common.config import QemuConfig
from stackling.compute import states
from stackling.compute.rpcapi import FlavorInfo, InstanceInfo
from stackling.compute.virt.driver import (
    ImageMeta,
    InstanceNotFound,
    NetworkInfo,
    SpawnError,
    VirtError,
)
from stackling.compute.virt.qemu import cmdline, configdrive, host, process
from stackling.compute.virt.qemu.driver import QemuDriver
from stackling.compute.virt.qemu.imagecache import ImageCache, ImageError
from stackling.compute.virt.qemu.layout import InstanceFiles, LaunchSpec, tap_name

UUID = "0b5d2a61-6b1c-4c55-9d4e-2f0c3c0e0001"
needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-utils")


def instance(**extra: Any) -> InstanceInfo:
    return InstanceInfo.model_validate({
        "uuid": UUID, "name": "vm1", "instance_name": "instance-00000001", "project_id": "p",
        "user_id": "u", "vm_state": "building",
        "flavor": FlavorInfo(flavorid="1", name="t", vcpus=2, memory_mb=192), **extra})


def test_command_line(tmp_path: Path) -> None:
    files = InstanceFiles(tmp_path, UUID)
    spec = LaunchSpec(uuid=UUID, name="instance-00000001", vcpus=2, memory_mb=192,
                      disk=str(files.disk), kernel="/k", initrd="/r", cmdline="console=ttyS0",
                      config_drive=str(files.config_drive), accel="tcg",
                      nics=[{"tap": tap_name("4f6c2d1e-aaaa-bbbb"), "mac": "fa:16:3e:00:00:01"}])
    argv = cmdline.build("qemu-system-x86_64", spec, files)
    text = " ".join(argv)
    for part in ("-uuid " + UUID, "-machine pc,accel=tcg", "-m 192", "-smp 2", "-daemonize",
                 f"-pidfile {files.pidfile}", "-no-shutdown", f"unix:{files.qmp},server=on",
                 f"logfile={files.console_log}", "-kernel /k", "-initrd /r",
                 "-append console=ttyS0", "media=cdrom", f"-vnc unix:{files.vnc}",
                 "tap,id=net0,ifname=tap4f6c2d1e-aa,script=no",
                 "virtio-net-pci,netdev=net0,mac=fa:16:3e:00:00:01"):
        assert part in text, part
    assert "-incoming" not in argv and "-cpu" not in argv
    resumed = cmdline.build("qemu-system-x86_64", spec, files, incoming="exec:cat x")
    assert resumed[-2:] == ["-incoming", "exec:cat x"]
    spec.accel, spec.vnc = "kvm", False
    kvm = cmdline.build("qemu-system-x86_64", spec, files)
    assert "-cpu" in kvm and "-vnc" not in kvm
    assert LaunchSpec.from_json(spec.to_json()) == spec
    spec.vnc, spec.video = True, "virtio"
    assert "-vga virtio" in " ".join(cmdline.build("qemu-system-x86_64", spec, files))


class Source:
    def __init__(self, data: bytes, record: dict[str, Any]) -> None:
        self.data, self.record, self.calls = data, record, 0

    async def download(self, image_id: str, sink: Any) -> dict[str, Any]:
        self.calls += 1
        for i in range(0, len(self.data), 7):
            sink(self.data[i:i + 7])
        return self.record


async def test_image_cache_verifies_and_downloads_once(tmp_path: Path) -> None:
    data = b"kernel bytes" * 100
    good = Source(data, {"os_hash_algo": "sha512",
                         "os_hash_value": hashlib.sha512(data).hexdigest()})
    cache = ImageCache(tmp_path, good)
    first = await cache.fetch("k1", "aki")
    again = await cache.fetch("k1", "aki")
    assert first.path.read_bytes() == data and again.path == first.path and good.calls == 1
    assert first.fmt == "raw"

    bad = Source(data, {"checksum": "0" * 32})
    with pytest.raises(ImageError, match="checksum"):
        await ImageCache(tmp_path, bad).fetch("k2", "raw")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1"]  # nothing half-made
    with pytest.raises(ImageError, match="disk format 'vhd'"):
        await cache.fetch("k3", "vhd")


@needs_qemu_img
async def test_image_cache_refuses_qcow2_with_a_backing_file(tmp_path: Path) -> None:
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * 65536)
    evil = tmp_path / "evil.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
                    str(evil)], check=True)
    source = Source(evil.read_bytes(), {})
    cache = ImageCache(tmp_path / "cache", source)
    with pytest.raises(ImageError, match="external files"):
        await cache.fetch("evil", "qcow2")
    assert not (tmp_path / "cache" / "evil").exists()


def test_config_drive_tree(tmp_path: Path) -> None:
    inst = instance(user_data="IyEvYmluL3NoCmV4aXQgMAo=", key_data="ssh-ed25519 AAAA a@b",
                    metadata={"key_name": "mykey"})
    configdrive.write_tree(tmp_path, inst, [])
    md = json.loads((tmp_path / "openstack/latest/meta_data.json").read_text())
    assert md["uuid"] == UUID and md["public_keys"] == {"mykey": "ssh-ed25519 AAAA a@b"}
    assert (tmp_path / "openstack/2012-08-10/user_data").read_bytes() == b"#!/bin/sh\nexit 0\n"
    ec2 = json.loads((tmp_path / "ec2/latest/meta-data.json").read_text())
    assert ec2["instance-id"] == "i-00000001"
    if configdrive.tool() is not None:
        iso = tmp_path / "cd.iso"
        configdrive.build(iso, inst, [])
        assert b"config-2" in iso.read_bytes()[32768:34816]  # the volume descriptor


def test_host_facts(tmp_path: Path) -> None:
    assert host.vcpus() >= 1 and host.memory_mb() > 0 and host.local_gb(tmp_path) >= 0
    assert host.cpu_info()["topology"]["cores"] == host.vcpus()


def test_a_pidfile_naming_another_process_is_not_trusted(tmp_path: Path) -> None:
    files = InstanceFiles(tmp_path, UUID)
    files.dir.mkdir()
    files.pidfile.write_text(str(os.getpid()))  # this python, not a QEMU of that uuid
    assert process.find(files) is None
    files.pidfile.write_text("not a number")
    assert process.find(files) is None


async def test_driver_states_without_a_process(tmp_path: Path) -> None:
    driver = QemuDriver("n1", QemuConfig(accel="tcg"), tmp_path, None)
    inst = instance()
    with pytest.raises(InstanceNotFound):
        await driver.get_power_state(inst)
    with pytest.raises(SpawnError, match="no image service"):
        await driver.spawn(inst, ImageMeta(id="img", disk_format="qcow2"), NetworkInfo())
    assert not (tmp_path / "instances" / UUID).exists()  # a failed spawn left nothing
    files = InstanceFiles(tmp_path / "instances", UUID)
    files.dir.mkdir(parents=True)
    files.write_spec(LaunchSpec(uuid=UUID, name="x", vcpus=1, memory_mb=128,
                                disk=str(files.disk)))
    assert await driver.list_instances() == [UUID]
    assert await driver.get_power_state(inst) == states.CRASHED  # vanished unasked
    files.set_intent("stopped")
    assert await driver.get_power_state(inst) == states.SHUTDOWN
    files.state.write_bytes(b"saved")
    assert await driver.get_power_state(inst) == states.POWER_SUSPENDED
    await driver.destroy(inst)
    assert await driver.list_instances() == []


async def test_a_qemu_dying_as_it_is_asked_reports_the_death(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Just after a SIGKILL the pid is still there but the monitor resets the connection:
    the state is what the exit leaves, not "cannot tell"."""
    driver = QemuDriver("n1", QemuConfig(accel="tcg"), tmp_path, None)
    files = InstanceFiles(tmp_path / "instances", UUID)
    files.dir.mkdir(parents=True)
    files.write_spec(LaunchSpec(uuid=UUID, name="x", vcpus=1, memory_mb=128,
                                disk=str(files.disk)))
    alive = {"checks": 2}  # alive for the first look and the look after the failed connect

    def owns(pid: int, uuid: str) -> bool:
        alive["checks"] -= 1
        return alive["checks"] >= 0

    monkeypatch.setattr(process, "find", lambda f: 4242 if alive["checks"] > 0 else None)
    monkeypatch.setattr(process, "owns", owns)
    assert await driver.get_power_state(instance()) == states.CRASHED  # no socket: reset
    alive["checks"] = 10**9  # a QEMU that lives on with a monitor nobody can reach
    assert await driver.get_power_state(instance()) == states.NOSTATE


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86")
@needs_qemu_img
async def test_qemu_refusing_to_start_is_a_readable_spawn_error(tmp_path: Path) -> None:
    source = Source(b"\0" * 65536, {})
    driver = QemuDriver("n1", QemuConfig(accel="tcg", machine="no-such-machine",
                                         force_config_drive=False), tmp_path, source)
    await driver.init_host("n1")
    with pytest.raises(SpawnError) as caught:
        await driver.spawn(instance(), ImageMeta(id="img", disk_format="raw"), NetworkInfo())
    assert "QEMU failed to start" in str(caught.value)
    assert "unsupported machine type" in str(caught.value)  # QEMU's own words
    assert await driver.list_instances() == []
    assert not (tmp_path / "instances" / UUID).exists()


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86")
async def test_auto_accelerator_proves_kvm_or_falls_back_without_hanging(
        tmp_path: Path) -> None:
    from stackling.compute.virt.qemu import accel

    cache = tmp_path / "kvm-probe.json"
    # returns (the probe is killed at its limit when nested KVM hangs)
    chosen = await accel.choose("auto", "qemu-system-x86_64", 3.0, cache)
    assert chosen in ("kvm", "tcg")
    saved = json.loads(cache.read_text())
    assert saved["accel"] == chosen and saved["why"]
    assert await accel.choose("auto", "qemu-system-x86_64", 3.0, cache) == chosen  # cached
    assert await accel.choose("tcg", "qemu-system-x86_64", 3.0, cache) == "tcg"


async def test_resize_keeps_the_old_disks_until_confirm_or_revert(tmp_path: Path) -> None:
    """A stopped guest (no QEMU needed): the kept directory, the new flavor, revert."""
    driver = QemuDriver("n1", QemuConfig(accel="tcg"), tmp_path, None)
    files = InstanceFiles(tmp_path / "instances", UUID)
    files.dir.mkdir(parents=True)
    files.disk.write_bytes(b"old disk")
    files.write_spec(LaunchSpec(uuid=UUID, name="x", vcpus=1, memory_mb=128,
                                disk=str(files.disk)))
    files.set_intent("stopped")
    old = instance(flavor=FlavorInfo(flavorid="1", name="small", vcpus=1, memory_mb=128))
    new = instance(flavor=FlavorInfo(flavorid="2", name="big", vcpus=2, memory_mb=256))
    with pytest.raises(VirtError, match="same host"):
        await driver.migrate_disk_and_power_off(old, "other-host")
    await driver.migrate_disk_and_power_off(old, "n1")
    kept = InstanceFiles(tmp_path / "instances", UUID, "_resize")
    assert kept.exists() and not files.dir.exists()
    await driver.finish_migration(new, ImageMeta(id="img"), power_on=False)
    spec = files.read_spec()
    assert (spec.vcpus, spec.memory_mb, spec.disk) == (2, 256, str(files.disk))
    assert files.disk.read_bytes() == b"old disk" and kept.exists()
    assert await driver.get_power_state(new) == states.SHUTDOWN
    assert await driver.list_instances() == [UUID]  # the kept copy is not an instance

    await driver.destroy(new)  # revert: the agent destroys the resized guest first
    await driver.finish_revert_migration(old, power_on=False)
    assert files.read_spec().memory_mb == 128 and not kept.exists()

    await driver.migrate_disk_and_power_off(old, "n1")
    await driver.finish_migration(new, ImageMeta(id="img"), power_on=False)
    await driver.confirm_migration(new)
    assert not kept.dir.exists() and files.read_spec().memory_mb == 256


def test_console_log_is_trimmed_before_a_start(tmp_path: Path) -> None:
    files = InstanceFiles(tmp_path, UUID)
    files.dir.mkdir()
    files.console_log.write_bytes(b"x" * 100 + b"end")
    files.trim_console(keep=10, above=1000)
    assert files.console_log.read_bytes() == b"x" * 100 + b"end"  # small: untouched
    files.trim_console(keep=10, above=50)
    assert files.console_log.read_bytes() == b"xxxxxxxend"
    assert files.console_tail() == "xxxxxxxend"


async def test_unused_cached_images_are_pruned_at_start(tmp_path: Path) -> None:
    base = tmp_path / "_base"
    base.mkdir()
    for name in ("used-image", "used-kernel", "unused", "recent"):
        (base / name).write_bytes(b"x")
    old = 1_000_000_000
    for name in ("used-image", "used-kernel", "unused"):
        os.utime(base / name, (old, old))
    files = InstanceFiles(tmp_path / "instances", UUID, "_resize")  # a resize copy counts
    files.dir.mkdir(parents=True)
    files.write_spec(LaunchSpec(uuid=UUID, name="x", vcpus=1, memory_mb=128, disk="d",
                                image_id="used-image", kernel=str(base / "used-kernel")))
    driver = QemuDriver("n1", QemuConfig(accel="tcg"), tmp_path, None)
    if shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None:
        pytest.skip("qemu-system-x86 / qemu-utils")
    await driver.init_host("n1")
    assert sorted(p.name for p in base.iterdir()) == ["recent", "used-image", "used-kernel"]
