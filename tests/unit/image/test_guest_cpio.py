"""The newc writer: byte layout, determinism, and that real cpio tools read it."""

from __future__ import annotations

import gzip
import io
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from stackling.image.guest.cpio import CpioWriter, gzip_cpio


def parse_newc(data: bytes) -> list[dict[str, object]]:
    """A reference reader: every entry's header fields, name and data."""
    entries = []
    pos = 0
    names = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize", "devmajor",
             "devminor", "rdevmajor", "rdevminor", "namesize", "check")
    while True:
        assert data[pos:pos + 6] == b"070701", f"bad magic at {pos}"
        fields = {n: int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16)
                  for i, n in enumerate(names)}
        pos += 110
        name = data[pos: pos + fields["namesize"] - 1].decode()
        assert data[pos + fields["namesize"] - 1] == 0
        pos += fields["namesize"]
        pos += -pos % 4
        body = data[pos: pos + fields["filesize"]]
        pos += fields["filesize"]
        pos += -pos % 4
        entries.append({"name": name, "data": body, **fields})
        if name == "TRAILER!!!":
            assert pos == len(data)
            return entries


def sample(writer: CpioWriter, tmp_path: Path) -> None:
    host_file = tmp_path / "host.bin"
    host_file.write_bytes(b"\x7fELF" + bytes(range(256)) * 3)
    writer.directory("bin")
    writer.directory("dev")
    writer.directory("root", 0o700)
    writer.file_from("bin/busybox", host_file, 0o755)
    writer.symlink("bin/sh", "busybox")
    writer.char_device("dev/console", 5, 1)
    writer.file("init", b"#!/bin/sh\necho hi\n", 0o755)
    writer.file("empty", b"")
    writer.close()


def test_layout(tmp_path: Path) -> None:
    out = io.BytesIO()
    sample(CpioWriter(out), tmp_path)
    entries = {e["name"]: e for e in parse_newc(out.getvalue())}
    assert list(entries) == ["bin", "dev", "root", "bin/busybox", "bin/sh", "dev/console",
                             "init", "empty", "TRAILER!!!"]
    assert entries["bin"]["mode"] == stat.S_IFDIR | 0o755
    assert entries["root"]["mode"] == stat.S_IFDIR | 0o700
    assert entries["bin/busybox"]["mode"] == stat.S_IFREG | 0o755
    assert entries["bin/busybox"]["data"] == (tmp_path / "host.bin").read_bytes()
    assert entries["bin/sh"]["mode"] == stat.S_IFLNK | 0o777
    assert entries["bin/sh"]["data"] == b"busybox"
    assert entries["dev/console"]["mode"] == stat.S_IFCHR | 0o600
    assert (entries["dev/console"]["rdevmajor"], entries["dev/console"]["rdevminor"]) == (5, 1)
    assert entries["init"]["data"] == b"#!/bin/sh\necho hi\n"
    assert all(e["uid"] == 0 and e["gid"] == 0 and e["mtime"] == 0 for e in entries.values())
    inodes = [e["ino"] for n, e in entries.items() if n != "TRAILER!!!"]
    assert len(set(inodes)) == len(inodes)


def test_deterministic_gzip(tmp_path: Path) -> None:
    outputs = []
    for i in range(2):
        path = tmp_path / f"initrd{i}.img"
        with gzip_cpio(path) as writer:
            sample(writer, tmp_path)
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0][4:8] == b"\0\0\0\0"  # gzip header carries no timestamp
    names = [e["name"] for e in parse_newc(gzip.decompress(outputs[0]))]
    assert names[-1] == "TRAILER!!!"


def test_bad_names_and_closed_archive(tmp_path: Path) -> None:
    writer = CpioWriter(io.BytesIO())
    writer.file("a", b"1")
    with pytest.raises(ValueError, match="duplicate"):
        writer.file("a", b"2")
    with pytest.raises(ValueError):
        writer.file("/", b"")
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.file("b", b"")


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "initrd.img"
    with pytest.raises(RuntimeError), gzip_cpio(path) as writer:
        writer.file("a", b"1")
        raise RuntimeError("boom")
    assert not path.exists()


@pytest.mark.parametrize("tool", ["cpio", "busybox"])
def test_real_cpio_extracts_it(tool: str, tmp_path: Path) -> None:
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} is not installed")
    archive = tmp_path / "a.cpio"
    with archive.open("wb") as fh:
        writer = CpioWriter(fh)
        writer.directory("bin")
        writer.file("bin/hello", b"hello\n", 0o755)
        writer.symlink("bin/hi", "hello")
        writer.close()
    dest = tmp_path / "x"
    dest.mkdir()
    argv = [exe, "-i", "-d"] if tool == "cpio" else [exe, "cpio", "-i", "-d"]
    subprocess.run(argv, stdin=archive.open("rb"), cwd=dest, check=True, capture_output=True)
    assert (dest / "bin" / "hello").read_bytes() == b"hello\n"
    assert (dest / "bin" / "hello").stat().st_mode & 0o777 == 0o755
    assert (dest / "bin" / "hi").readlink() == Path("hello")
