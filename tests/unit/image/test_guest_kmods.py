"""Kernel module selection and load order, on a fake module tree (and the host's, if any)."""

from __future__ import annotations

import gzip
import lzma
from pathlib import Path

import pytest

from stackling.image.guest import host, kmods

DEP = """\
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko \
kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko \
kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/crypto/crc32c_generic.ko.xz:
kernel/arch/x86/crypto/crc32c-intel.ko.gz:
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
"""
SOFTDEP = """\
# Soft dependencies extracted from modules themselves.
softdep ext4 pre: crypto-crc32c
softdep jbd2 pre: crypto-crc32c
softdep cifs gcm
"""
ALIAS = """\
alias crypto-crc32c crc32c_intel
alias crypto-crc32c crc32c_generic
alias crc32c crc32c_generic
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
"""
BUILTIN = "kernel/fs/isofs/isofs.ko\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "6.1.0-test"
    root.mkdir()
    # modules.dep lines above are wrapped for reading; depmod writes one line each
    (root / "modules.dep").write_text(DEP.replace("\\\n", ""))
    (root / "modules.softdep").write_text(SOFTDEP)
    (root / "modules.alias").write_text(ALIAS)
    (root / "modules.builtin").write_text(BUILTIN)
    for line in DEP.replace("\\\n", "").splitlines():
        rel = line.split(":")[0]
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = b"\x7fELF module " + rel.encode()
        if rel.endswith(".xz"):
            path.write_bytes(lzma.compress(payload))
        elif rel.endswith(".gz"):
            path.write_bytes(gzip.compress(payload))
        else:
            path.write_bytes(payload)
    return root


def names(modules: list[kmods.Module]) -> list[str]:
    return [m.name for m in modules]


def test_dependencies_come_first(tree: Path) -> None:
    order = names(kmods.ModuleTree.load(tree).load_order(["virtio_net", "virtio_pci"]))
    assert order == ["virtio_ring", "virtio", "failover", "net_failover", "virtio_net",
                     "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci"]


def test_softdeps_resolve_aliases(tree: Path) -> None:
    order = names(kmods.ModuleTree.load(tree).load_order(["ext4"]))
    # jbd2's and ext4's soft dependency crypto-crc32c: both providers, before their user
    assert order == ["crc32c_generic", "crc32c_intel", "jbd2", "mbcache", "crc16", "ext4"]
    assert len(order) == len(set(order))


def test_each_module_after_everything_it_needs(tree: Path) -> None:
    mt = kmods.ModuleTree.load(tree)
    order = names(mt.load_order(["virtio-rng", "ext4", "virtio_net", "virtio_pci"]))
    for index, name in enumerate(order):
        assert set(mt.deps.get(name, [])) <= set(order[:index]), name


def test_hyphen_names_and_builtins(tree: Path) -> None:
    mt = kmods.ModuleTree.load(tree)
    assert names(mt.load_order(["virtio-rng"])) == ["virtio_ring", "virtio", "virtio_rng"]
    assert mt.load_order(["isofs"]) == []  # built in: nothing to load


def test_missing_module(tree: Path) -> None:
    mt = kmods.ModuleTree.load(tree)
    with pytest.raises(kmods.ModuleError, match="nosuch"):
        mt.load_order(["virtio", "nosuch"])
    assert names(mt.load_order(["virtio", "nosuch"], frozenset({"nosuch"}))) == ["virtio"]


def test_missing_modules_dep(tmp_path: Path) -> None:
    with pytest.raises(kmods.ModuleError, match="depmod"):
        kmods.ModuleTree.load(tmp_path)


def test_dependency_loop(tree: Path) -> None:
    (tree / "modules.dep").write_text("a.ko: b.ko\nb.ko: a.ko\n")
    with pytest.raises(kmods.ModuleError, match="loop"):
        kmods.ModuleTree.load(tree).load_order(["a"])


def test_compressed_modules_are_unpacked(tree: Path) -> None:
    mt = kmods.ModuleTree.load(tree)
    for name in ("crc32c_generic", "crc32c_intel", "virtio"):
        data = kmods.module_bytes(mt.paths[name])
        assert data.startswith(b"\x7fELF module kernel/")


def test_host_kernel_has_the_environment_order() -> None:
    """On a host with linux-image-amd64: everything the guest wants resolves, in the
    order ../shared/ENVIRONMENT.md gives for the virtio stack."""
    try:
        kernel = host.find_kernel()
    except host.HostMissing:
        pytest.skip("no kernel with modules on this host (apt-get install linux-image-amd64)")
    order = names(kmods.ModuleTree.load(kernel.modules).load_order(
        kmods.WANTED_MODULES, kmods.OPTIONAL_MODULES))
    chain = ["virtio_ring", "virtio", "virtio_pci", "failover", "net_failover", "virtio_net"]
    positions = [order.index(n) for n in chain]
    assert positions == sorted(positions)
    for needed in ("virtio_blk", "ext4", "isofs", "jbd2", "cdrom", "vfat"):
        assert needed in order
