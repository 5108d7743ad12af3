"""Image safety inspection: crafted headers (pure Python) and files made by ``qemu-img``."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from stackling.image.inspect import HEAD_BYTES, FormatInspector, ImageFormatError, Inspection


def inspect(data: bytes, declared: str | None, container: str | None = "bare",
            chunk: int = 65536) -> Inspection:
    insp = FormatInspector(declared, container)
    for i in range(0, len(data), chunk):
        insp.feed(data[i:i + chunk])
    return insp.finish()


def rejects(data: bytes, declared: str | None, match: str, **kw: object) -> None:
    with pytest.raises(ImageFormatError, match=match):
        inspect(data, declared, **kw)  # type: ignore[arg-type]


# -- crafted images ----------------------------------------------------------------------

def qcow2(version: int = 3, size: int = 1 << 30, backing: int = 0, incompatible: int = 0,
          extensions: Iterable[tuple[int, bytes]] = (), pad: int = 65536) -> bytes:
    header_len = 104 if version == 3 else 72
    h = bytearray(header_len)
    struct.pack_into(">4sIQIIQ", h, 0, b"QFI\xfb", version, backing, 16 if backing else 0,
                     16, size)
    if version == 3:
        struct.pack_into(">Q", h, 72, incompatible)
        struct.pack_into(">II", h, 96, 4, header_len)
    for kind, payload in extensions:
        h += struct.pack(">II", kind, len(payload)) + payload + b"\0" * (-len(payload) % 8)
    h += b"\0" * 8  # end of extensions
    return bytes(h) + b"\0" * (pad - len(h))


def iso(blocks: int = 100) -> bytes:
    pvd = bytearray(2048)
    pvd[0] = 1
    pvd[1:6] = b"CD001"
    struct.pack_into("<I", pvd, 80, blocks)
    struct.pack_into("<H", pvd, 128, 2048)
    return b"\0" * 0x8000 + bytes(pvd) + b"\0" * (blocks * 2048 - 0x8800)


VMDK_DESC = (b'# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n'
             b'createType="streamOptimized"\n\nRW 2048 SPARSE "disk.vmdk"\n\n'
             b'ddb.adapterType = "ide"\n')


def vmdk(desc: bytes = VMDK_DESC, gd_at_end: bool = False, footer: bytes | None = None
         ) -> bytes:
    header = bytearray(512)
    gd = 0xFFFFFFFFFFFFFFFF if gd_at_end else 21
    struct.pack_into("<4sIIQQQQIQQ", header, 0, b"KDMV", 3, 3, 2048, 128, 1, 20, 512, 21, gd)
    body = bytes(header) + desc + b"\0" * (20 * 512 - len(desc)) + b"\0" * 4096
    if gd_at_end:
        if footer is None:
            marker = struct.pack("<QII", 0, 0, 3) + b"\0" * 496
            foot = bytearray(header)
            struct.pack_into("<Q", foot, 56, 21)
            eos = b"\0" * 512
            footer = marker + bytes(foot) + eos
        body += footer
    return body


# -- qcow2 ---------------------------------------------------------------------------------

def test_plain_qcow2_is_accepted_with_its_virtual_size() -> None:
    for version in (2, 3):
        result = inspect(qcow2(version=version, size=5 << 30), "qcow2")
        assert (result.format, result.virtual_size) == ("qcow2", 5 << 30)


def test_qcow2_with_a_backing_file_is_refused_whatever_it_claims() -> None:
    data = qcow2(backing=512)
    for declared in ("qcow2", "raw", "ami", None):
        rejects(data, declared, "backing file")
    rejects(data, "qcow2", "backing file", container="ovf")


def test_qcow2_with_an_external_data_file_is_refused() -> None:
    rejects(qcow2(incompatible=0b100), "qcow2", "external data file")
    # the header extension alone (without the feature bit) is refused as well
    rejects(qcow2(extensions=[(0x44415441, b"/etc/shadow")]), "qcow2", "external data file")


def test_qcow2_unknown_features_and_versions_are_refused() -> None:
    rejects(qcow2(incompatible=1 << 7), "qcow2", "unknown incompatible features")
    rejects(qcow2(version=1), "qcow2", "version 1")


def test_raw_data_claiming_qcow2_is_refused() -> None:
    rejects(os.urandom(4096), "qcow2", "does not match the uploaded data, which is raw")


def test_qcow2_claiming_raw_is_refused() -> None:
    rejects(qcow2(), "raw", "disk_format raw does not match the uploaded data, which is qcow2")


def test_truncated_headers_are_refused() -> None:
    rejects(b"QFI\xfb\0\0\0\3" + b"\0" * 12, "qcow2", "truncated qcow2 header")
    rejects(qcow2()[:90], "qcow2", "truncated qcow2 header")  # v3 needs 104 bytes
    rejects(b"KDMV" + b"\0" * 30, "vmdk", "truncated vmdk header")
    rejects(b"vhdxfile" + b"\0" * 1000, "vhdx", "truncated vhdx header")
    rejects(b"\0" * 0x40 + struct.pack("<I", 0xBEDA107F) + b"\0" * 20, "vdi",
            "truncated vdi header")


def test_unsupported_formats_are_refused() -> None:
    rejects(b"QED\x00" + b"\0" * 1020, "raw", "qed format")
    rejects(b"LUKS\xba\xbe" + b"\0" * 1018, "raw", "luks format")


# -- other formats ---------------------------------------------------------------------------

def test_iso_is_detected_and_fine_as_raw() -> None:
    data = iso(blocks=100)
    assert inspect(data, "iso").virtual_size == 100 * 2048
    assert inspect(data, "raw").format == "iso"
    rejects(os.urandom(70000), "iso", "which is raw")


def test_vmdk_stream_optimized_with_footer() -> None:
    assert inspect(vmdk(), "vmdk").virtual_size == 2048 * 512
    assert inspect(vmdk(gd_at_end=True), "vmdk").format == "vmdk"
    bad_eos = vmdk(gd_at_end=True)[:-512] + struct.pack("<QII", 1, 0, 0) + b"\0" * 496
    rejects(bad_eos, "vmdk", "end-of-stream marker")


def test_vmdk_descriptor_checks() -> None:
    rejects(vmdk(VMDK_DESC.replace(b"streamOptimized", b"monolithicFlat")), "vmdk",
            "not allowed")
    rejects(vmdk(VMDK_DESC.replace(b'"disk.vmdk"', b'"/etc/passwd"')), "vmdk", "path")
    rejects(vmdk(VMDK_DESC + b'parentFileNameHint="base.vmdk"\n'), "vmdk", "parent")
    rejects(vmdk(VMDK_DESC.replace(b"parentCID=ffffffff", b"parentCID=1234abcd")), "vmdk",
            "parent")
    rejects(vmdk(VMDK_DESC + b"some junk here\n"), "vmdk", "not understood")
    # a bare descriptor file (extents elsewhere) is never allowed
    rejects(VMDK_DESC, "vmdk", "descriptor files")


def test_vmdk_claiming_raw_is_refused() -> None:
    rejects(vmdk(), "raw", "disk_format raw does not match the uploaded data, which is vmdk")


def test_uninspectable_formats_accept_unrecognized_data_only() -> None:
    data = os.urandom(5000)
    for declared in ("ami", "ari", "aki"):
        result = inspect(data, declared, container=declared)
        assert result.format == "raw"
        assert inspect(data, declared).virtual_size is None
    rejects(qcow2(), "aki", "which is qcow2")


def test_other_containers_skip_the_match_but_not_the_safety_checks() -> None:
    tarball = os.urandom(10000)
    assert inspect(tarball, "qcow2", container="ova").format == "raw"
    rejects(qcow2(backing=512), "raw", "backing file", container="docker")


def test_raw_gets_its_size_as_virtual_size() -> None:
    data = os.urandom(3000)
    assert inspect(data, "raw") == Inspection("raw", 3000, 3000)
    assert inspect(b"", "raw") == Inspection("raw", 0, 0)


def test_chunking_does_not_change_the_result() -> None:
    data = qcow2(pad=HEAD_BYTES + 12345)
    expect = inspect(data, "qcow2")
    for chunk in (1, 7, 511, 4096, HEAD_BYTES - 1, HEAD_BYTES + 1, len(data)):
        if chunk == 1:
            data_small = qcow2(pad=2048)
            assert inspect(data_small, "qcow2", chunk=1).format == "qcow2"
            continue
        assert inspect(data, "qcow2", chunk=chunk) == expect


def test_a_mismatch_stops_the_stream_after_the_first_mib() -> None:
    insp = FormatInspector("qcow2", "bare")
    block = os.urandom(256 * 1024)
    with pytest.raises(ImageFormatError, match="which is raw"):
        for _ in range(40):  # 10 MiB offered; refused at 1 MiB
            insp.feed(block)
    assert insp.pos <= HEAD_BYTES


# -- files made by qemu-img -------------------------------------------------------------------

QEMU_IMG = shutil.which("qemu-img")
needs_qemu_img = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img not installed")


def qemu_img(tmp: Path, name: str, fmt: str, *opts: str, size: str = "1M") -> bytes:
    path = tmp / name
    args = [str(QEMU_IMG), "create", "-q", "-f", fmt]
    for opt in opts:
        args += ["-o", opt]
    subprocess.run([*args, str(path), size], check=True, cwd=tmp)
    return path.read_bytes()


@needs_qemu_img
@pytest.mark.parametrize(("fmt", "name", "opts", "virtual"), [
    ("qcow2", "a.qcow2", (), 1 << 20),
    ("qcow2", "v2.qcow2", ("compat=0.10",), 1 << 20),
    ("vmdk", "s.vmdk", ("subformat=monolithicSparse",), 1 << 20),
    ("vmdk", "so.vmdk", ("subformat=streamOptimized",), 1 << 20),
    ("vhdx", "a.vhdx", (), 1 << 20),
    ("vdi", "a.vdi", (), 1 << 20),
    ("vpc", "a.vhd", (), None),
])
def test_qemu_img_images_are_recognized(tmp_path: Path, fmt: str, name: str,
                                        opts: tuple[str, ...], virtual: int | None) -> None:
    data = qemu_img(tmp_path, name, fmt, *opts)
    declared = "vhd" if fmt == "vpc" else fmt
    for chunk in (4096, 1 << 20, len(data)):
        result = inspect(data, declared, chunk=chunk)
        assert result.format == declared
        if virtual is not None:
            assert result.virtual_size == virtual
    rejects(data, "raw", f"which is {declared}")


@needs_qemu_img
def test_qemu_img_qcow2_with_backing_file_and_data_file(tmp_path: Path) -> None:
    qemu_img(tmp_path, "base.qcow2", "qcow2")
    backed = qemu_img(tmp_path, "b.qcow2", "qcow2", "backing_file=base.qcow2",
                      "backing_fmt=qcow2")
    rejects(backed, "qcow2", "backing file")
    external = qemu_img(tmp_path, "e.qcow2", "qcow2", "data_file=e.raw")
    rejects(external, "qcow2", "external data file")


@needs_qemu_img
def test_qemu_img_flat_vmdk_descriptor_is_refused(tmp_path: Path) -> None:
    desc = qemu_img(tmp_path, "f.vmdk", "vmdk", "subformat=monolithicFlat")
    rejects(desc, "vmdk", "descriptor files")
    rejects(desc, "raw", "descriptor files")
