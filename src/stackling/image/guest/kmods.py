"""Kernel modules for the tiny guest: which files, in which load order.

The host's ``depmod`` already worked out every module's dependencies into
``/lib/modules/<version>/modules.dep`` (the same facts ``modinfo -F depends`` reports, but
for all modules at once), plus ``modules.softdep`` (``pre:`` soft dependencies such as ext4's
``crypto-crc32c``) and ``modules.alias`` (to turn such an alias into module names). Reading
those files keeps this pure Python and testable with a fake tree.
"""

from __future__ import annotations

import fnmatch
import gzip
import lzma
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# What the guest loads, in this order (dependencies are inserted before each).
# virtio transport and NIC first (../shared/ENVIRONMENT.md), then disks, the config drive's
# file systems (ISO 9660 on a virtio or IDE CD-ROM; vfat for vfat config drives), ext4,
# the ACPI power button (+ evdev, so busybox acpid sees it) and the virtio RNG.
WANTED_MODULES: tuple[str, ...] = (
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
    "failover", "net_failover", "virtio_net",
    "virtio_blk", "virtio_scsi", "ata_piix", "sd_mod", "sr_mod",
    "isofs", "nls_ascii", "nls_utf8", "nls_cp437", "vfat",
    "crc32c_generic", "ext4",
    "button", "evdev", "virtio-rng",
)
# Missing on some kernels (built in, renamed): leave them out instead of failing.
OPTIONAL_MODULES = frozenset({
    "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "failover", "net_failover",
    "virtio_scsi", "ata_piix", "sd_mod", "sr_mod", "nls_ascii", "nls_utf8", "nls_cp437", "vfat",
    "crc32c_generic", "button", "evdev", "virtio-rng",
})
_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")


class ModuleError(Exception):
    """A module the guest needs is not in the host's module tree."""


@dataclass(frozen=True)
class Module:
    name: str  # canonical, underscores ("virtio_rng")
    path: Path  # file under the module tree (maybe compressed)

    @property
    def relpath(self) -> str:
        return self.path.name


def canonical(name: str) -> str:
    return name.replace("-", "_")


def _module_name(relpath: str) -> str:
    base = relpath.rsplit("/", 1)[-1]
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return canonical(base)


@dataclass
class ModuleTree:
    """The parsed ``modules.dep`` / ``modules.softdep`` / ``modules.alias`` of one kernel."""

    root: Path
    deps: dict[str, list[str]]  # module -> its dependencies (module names)
    paths: dict[str, Path]
    softdeps: dict[str, list[str]]  # module -> "pre:" soft dependencies (names or aliases)
    aliases: list[tuple[str, str]]  # (pattern, module)
    builtin: frozenset[str]

    @classmethod
    def load(cls, root: Path) -> ModuleTree:
        dep_file = root / "modules.dep"
        try:
            text = dep_file.read_text()
        except OSError as exc:
            raise ModuleError(f"cannot read {dep_file} ({exc.strerror}); run `depmod "
                              f"{root.name}` or reinstall linux-image-amd64") from exc
        deps: dict[str, list[str]] = {}
        paths: dict[str, Path] = {}
        for line in text.splitlines():
            if ":" not in line:
                continue
            head, _, tail = line.partition(":")
            name = _module_name(head)
            paths[name] = root / head.strip()
            deps[name] = [_module_name(d) for d in tail.split()]
        softdeps: dict[str, list[str]] = {}
        for line in _lines(root / "modules.softdep"):
            words = line.split()
            if len(words) < 3 or words[0] != "softdep":
                continue
            pre: list[str] = []
            mode = ""
            for word in words[2:]:
                if word.endswith(":"):
                    mode = word[:-1]
                elif mode == "pre":
                    pre.append(word)
            if pre:
                softdeps.setdefault(canonical(words[1]), []).extend(pre)
        aliases = [(w[1], canonical(w[2])) for w in (line.split() for line in
                   _lines(root / "modules.alias")) if len(w) == 3 and w[0] == "alias"]
        builtin = frozenset(_module_name(line.strip()) for line in
                            _lines(root / "modules.builtin") if line.strip())
        return cls(root, deps, paths, softdeps, aliases, builtin)

    def resolve_name(self, name: str) -> list[str]:
        """Module names a name or alias stands for (empty if none, or if built in)."""
        name = canonical(name) if canonical(name) in self.paths else name
        if name in self.paths:
            return [name]
        if canonical(name) in self.builtin:
            return []
        return sorted({module for pattern, module in self.aliases
                       if fnmatch.fnmatchcase(name, pattern) and module in self.paths})

    def load_order(self, wanted: tuple[str, ...] | list[str],
                   optional: frozenset[str] = frozenset()) -> list[Module]:
        """``wanted`` plus their hard and ``pre:`` soft dependencies, each after everything
        it needs, in a stable order. Built-in modules are skipped; a missing module that
        is not ``optional`` raises :class:`ModuleError`."""
        order: list[str] = []
        done: set[str] = set()

        def visit(name: str, trail: tuple[str, ...]) -> None:
            if name in done:
                return
            if name in trail:
                raise ModuleError(f"dependency loop: {' -> '.join((*trail, name))}")
            trail = (*trail, name)
            # modules.dep lists dependencies deepest last: load them deepest first
            for dep in reversed(self.deps.get(name, [])):
                visit(dep, trail)
            for soft in self.softdeps.get(name, []):
                for target in self.resolve_name(soft):
                    visit(target, trail)
            done.add(name)
            order.append(name)

        for want in wanted:
            names = self.resolve_name(want)
            if not names:
                if canonical(want) in self.builtin or want in optional or \
                        canonical(want) in optional:
                    continue
                raise ModuleError(f"kernel module {want} not found under {self.root} "
                                  f"(is linux-image-amd64 installed completely?)")
            for name in names:
                visit(name, ())
        return [Module(name, self.paths[name]) for name in order]


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def module_bytes(path: Path) -> bytes:
    """The module's ELF bytes (decompressed: busybox insmod takes plain ``.ko`` files)."""
    name = path.name
    if name.endswith(".ko"):
        return path.read_bytes()
    if name.endswith(".ko.xz"):
        return lzma.decompress(path.read_bytes())
    if name.endswith(".ko.gz"):
        return gzip.decompress(path.read_bytes())
    if name.endswith(".ko.zst"):
        zstd = shutil.which("zstd")
        if zstd is None:
            raise ModuleError(f"{path} is zstd-compressed: install the zstd package")
        return subprocess.run([zstd, "-dc", str(path)], check=True,
                              capture_output=True).stdout
    raise ModuleError(f"unknown kernel module format: {path}")
