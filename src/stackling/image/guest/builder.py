"""Build the tiny guest from the host's packages, cached under ``<data_dir>/guest-cache/``.

Outputs (in one cache entry): ``tiny-vmlinuz`` (the host's kernel, an ``aki``),
``tiny-initrd.img`` (busybox + modules + /init, gzip'd newc cpio, an ``ari``) and, when the
host has the disk tools, ``tiny.qcow2`` (a bootable disk holding both). ``manifest.json`` is
written last: an entry without it is unfinished and is rebuilt.

An entry's key is the kernel version, :data:`BUILDER_VERSION` and a digest of every input
(kernel, modules, busybox: sizes and times; the generated scripts: content), so changing
any of them gives a new entry and an unchanged host reuses the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackling.common.blocking import run_blocking
from stackling.image.guest import disk as diskmod
from stackling.image.guest import host, kmods, scripts
from stackling.image.guest.cpio import gzip_cpio

log = logging.getLogger(__name__)

BUILDER_VERSION = 1
KERNEL_FILE = "tiny-vmlinuz"
INITRD_FILE = "tiny-initrd.img"
DISK_FILE = "tiny.qcow2"
MANIFEST = "manifest.json"
# console=ttyS0 last: /dev/console (and so the markers) is the serial port; tty0 (VGA/VNC)
# gets the kernel's messages too
CMDLINE = "console=tty0 console=ttyS0,115200"
CACHE_DIR = "guest-cache"

Say = Callable[[str], None]

_DIRS = ("bin", "dev", "etc", "etc/acpi", "etc/acpi/PWRF", "etc/stackling-tiny", "lib",
         "lib/modules", "mnt", "proc", "root", "run", "sbin", "sys", "tmp", "usr", "usr/bin",
         "usr/sbin", "var", "var/log")


@dataclass(frozen=True)
class TinyGuest:
    """A finished build (a cache entry)."""

    directory: Path
    key: str
    kernel_version: str
    cmdline: str
    has_disk: bool

    @property
    def kernel(self) -> Path:
        return self.directory / KERNEL_FILE

    @property
    def initrd(self) -> Path:
        return self.directory / INITRD_FILE

    @property
    def disk(self) -> Path | None:
        return self.directory / DISK_FILE if self.has_disk else None

    def files(self) -> list[Path]:
        return [self.kernel, self.initrd, *([self.directory / DISK_FILE] if self.has_disk
                                           else [])]


@dataclass(frozen=True)
class Inputs:
    """Everything one build reads from the host, and the files it generates."""

    kernel: host.Kernel
    busybox: Path
    modules: list[kmods.Module]
    userland: dict[str, tuple[bytes, int]]
    cmdline: str = CMDLINE

    def key(self) -> str:
        digest = hashlib.sha256()

        def add(*parts: object) -> None:
            digest.update(repr(parts).encode())

        def add_file(path: Path) -> None:
            st = path.stat()
            add(str(path), st.st_size, st.st_mtime_ns)

        add(BUILDER_VERSION, self.kernel.version, self.cmdline)
        add_file(self.kernel.vmlinuz)
        add_file(self.busybox)
        for module in self.modules:
            add(module.name)
            add_file(module.path)
        for name, (data, mode) in sorted(self.userland.items()):
            add(name, mode, hashlib.sha256(data).hexdigest())
        return f"{self.kernel.version}-b{BUILDER_VERSION}-{digest.hexdigest()[:12]}"


def gather_inputs(boot: Path = Path("/boot"), modules_root: Path = Path("/lib/modules"),
                  busybox_candidates: tuple[Path, ...] = host.BUSYBOX_CANDIDATES,
                  kernel_version: str | None = None) -> Inputs:
    """Find the kernel, its modules and busybox; :class:`host.HostMissing` names the
    packages to install when something is absent."""
    missing: dict[str, str] = {}
    kernel: host.Kernel | None = None
    busybox: Path | None = None
    try:
        kernel = host.find_kernel(boot, modules_root, kernel_version)
    except host.HostMissing as exc:
        missing.update(exc.missing)
    try:
        busybox = host.find_busybox(busybox_candidates)
    except host.HostMissing as exc:
        missing.update(exc.missing)
    if missing:
        raise host.HostMissing(missing)
    assert kernel is not None and busybox is not None
    tree = kmods.ModuleTree.load(kernel.modules)
    modules = tree.load_order(kmods.WANTED_MODULES, kmods.OPTIONAL_MODULES)
    userland = scripts.userland_files([m.name for m in modules])
    return Inputs(kernel, busybox, modules, userland)


def write_initramfs(inputs: Inputs, out: Path) -> None:
    """The gzip'd newc initramfs: busybox, the modules (decompressed, named
    ``/lib/modules/<name>.ko``), /init and its helpers, /dev/console."""
    with gzip_cpio(out) as cpio:
        for name in _DIRS:
            cpio.directory(name, 0o700 if name == "root" else 0o755)
        cpio.char_device("dev/console", 5, 1)
        cpio.char_device("dev/null", 1, 3, 0o666)
        cpio.file_from("bin/busybox", inputs.busybox, 0o755)
        cpio.symlink("bin/sh", "busybox")
        for module in inputs.modules:
            cpio.file(f"lib/modules/{module.name}.ko", kmods.module_bytes(module.path))
        cpio.file("etc/hosts", b"127.0.0.1 localhost\n")
        for name, (data, mode) in sorted(inputs.userland.items()):
            cpio.file(name, data, mode)


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _load_entry(directory: Path) -> TinyGuest | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    guest = TinyGuest(directory, manifest["key"], manifest["kernel_version"],
                      manifest["cmdline"], bool(manifest.get("disk")))
    if not all(path.is_file() for path in guest.files()):
        return None
    return guest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _write_manifest(guest: TinyGuest, inputs: Inputs | None, extra: dict[str, Any]) -> None:
    manifest: dict[str, Any] = {
        "key": guest.key,
        "builder_version": BUILDER_VERSION,
        "kernel_version": guest.kernel_version,
        "cmdline": guest.cmdline,
        "disk": guest.has_disk,
        "files": {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
                  for p in guest.files()},
        **extra,
    }
    if inputs is not None:
        manifest["modules"] = [m.name for m in inputs.modules]
        manifest["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tmp = guest.directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, guest.directory / MANIFEST)


def build_tiny_guest_sync(cache: Path, *, disk: bool | None = None, say: Say | None = None,
                          inputs: Inputs | None = None) -> TinyGuest:
    """Build (or reuse) the tiny guest under ``cache``. ``disk``: True requires the
    bootable disk (:class:`host.HostMissing` if its tools are absent), False skips it,
    None builds it when the tools are there. Blocking: call :func:`build_tiny_guest`
    from async code."""
    say = say or log.info
    inputs = inputs or gather_inputs()
    key = inputs.key()
    tools: host.DiskTools | None = None
    if disk is not False:
        try:
            tools = host.find_disk_tools()
        except host.HostMissing as exc:
            if disk:
                raise
            say(f"no bootable disk image: {exc}")
    with _locked(cache):
        entry = cache / key
        guest = _load_entry(entry)
        if guest is None:
            guest = _build_entry(cache, key, inputs, say)
        else:
            say(f"tiny guest {key}: cached in {entry}")
        if tools is not None and not guest.has_disk:
            guest = _add_disk(guest, tools, say)
        _prune(cache, keep=key)
    return guest


def _build_entry(cache: Path, key: str, inputs: Inputs, say: Say) -> TinyGuest:
    started = time.monotonic()
    say(f"tiny guest {key}: building (kernel {inputs.kernel.version}, "
        f"{len(inputs.modules)} modules)")
    work = cache / f".build-{key}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        shutil.copyfile(inputs.kernel.vmlinuz, work / KERNEL_FILE)
        write_initramfs(inputs, work / INITRD_FILE)
        guest = TinyGuest(work, key, inputs.kernel.version, inputs.cmdline, False)
        _write_manifest(guest, inputs, {})
        entry = cache / key
        shutil.rmtree(entry, ignore_errors=True)
        os.rename(work, entry)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    say(f"tiny guest {key}: kernel + initramfs in {time.monotonic() - started:.1f}s")
    return TinyGuest(entry, key, inputs.kernel.version, inputs.cmdline, False)


def _add_disk(guest: TinyGuest, tools: host.DiskTools, say: Say) -> TinyGuest:
    started = time.monotonic()
    part = guest.directory / (DISK_FILE + ".part")
    try:
        diskmod.make_boot_disk(tools, guest.kernel, guest.initrd, guest.cmdline, part,
                               guest.directory)
        os.replace(part, guest.directory / DISK_FILE)
    finally:
        part.unlink(missing_ok=True)
    manifest = json.loads((guest.directory / MANIFEST).read_text())
    with_disk = TinyGuest(guest.directory, guest.key, guest.kernel_version, guest.cmdline,
                          True)
    keep = {k: manifest[k] for k in ("modules", "built_at") if k in manifest}
    _write_manifest(with_disk, None, keep)
    say(f"tiny guest {guest.key}: bootable disk in {time.monotonic() - started:.1f}s")
    return with_disk


def _prune(cache: Path, keep: str) -> None:
    """Drop other entries and abandoned work directories (we hold the lock)."""
    for child in cache.iterdir():
        if child.name in (keep, ".lock") or not child.is_dir():
            continue
        shutil.rmtree(child, ignore_errors=True)


def cache_dir(data_dir: Path) -> Path:
    return data_dir / CACHE_DIR


async def build_tiny_guest(data_dir: Path, *, disk: bool | None = None,
                           say: Say | None = None) -> TinyGuest:
    """Build (or reuse) the tiny guest for ``data_dir``, off the event loop."""
    def work() -> TinyGuest:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return build_tiny_guest_sync(cache_dir(data_dir), disk=disk, say=say,
                                     inputs=gather_inputs())
    return await run_blocking(work)


def copy_outputs(guest: TinyGuest, dest: Path) -> list[Path]:
    """Copy the outputs into ``dest`` (created); returns the copies."""
    dest.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in guest.files():
        target = dest / path.name
        tmp = dest / (path.name + ".part")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
        copies.append(target)
    return copies
