"""A volume on one storage node, used from another node over NBD.

Two network namespaces stand for two machines (``vol-nbd-a`` the storage node, ``vol-nbd-b``
a compute node), joined by a veth pair on 10.251.7.0/30; nothing is made in the root
namespace. The storage node runs the real ``nbd`` backend (qemu-nbd) in a child process;
the compute node writes through the export with ``qemu-io`` and reads it back (pattern
checked);
after ``unexport`` the port is closed and no qemu-nbd is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("qemu-nbd") is None or shutil.which("ip") is None,
    reason="needs root, iproute2 and qemu-nbd")]

A, B = "vol-nbd-a", "vol-nbd-b"
ADDR_A, ADDR_B = "10.251.7.1", "10.251.7.2"

STORAGE_NODE = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    from stackling.volume.backends import NbdBackend

    async def main() -> None:
        backend = NbdBackend("nbd", Path(sys.argv[1]), "qcow2", host=sys.argv[2],
                             port_min=18520, port_max=18529)
        await backend.start()
        await backend.create("v1", 1)
        info = await backend.export("v1", {"host": "node-b"})
        print(json.dumps(info), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await backend.unexport("v1")
        print(json.dumps({"left": [p for p in backend.procs]}), flush=True)
        await backend.delete_volume("v1")
        print(json.dumps({"files": backend.files()}), flush=True)

    asyncio.run(main())
""")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def nodes() -> Iterator[None]:
    for ns in (A, B):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    try:
        ip("netns", "add", A)
        ip("netns", "add", B)
        ip("link", "add", "vol-nbd0", "netns", A, "type", "veth", "peer", "name", "vol-nbd1",
           "netns", B)
        for ns, dev, addr in ((A, "vol-nbd0", ADDR_A), (B, "vol-nbd1", ADDR_B)):
            ip("-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield
    finally:
        for ns in (A, B):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_volume_exported_to_another_node(nodes: None, tmp_path: Path) -> None:
    storage = subprocess.Popen(
        ["ip", "netns", "exec", A, sys.executable, "-c", STORAGE_NODE, str(tmp_path / "pool"),
         ADDR_A], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        start_new_session=True)  # its qemu-nbd shares the group: one killpg ends both
    try:
        assert storage.stdout is not None and storage.stdin is not None
        info = json.loads(storage.stdout.readline())
        assert info["driver_volume_type"] == "nbd" and info["data"]["host"] == ADDR_A
        data = info["data"]
        url = f"nbd://{data['host']}:{data['port']}/{data['export_name']}"
        write = subprocess.run(["ip", "netns", "exec", B, "qemu-io", "-f", "raw", "-c",
                                "write -P 0x5a 1M 64k", url], capture_output=True, text=True,
                               timeout=60)
        assert write.returncode == 0, write.stderr
        # read back with a pattern check (qemu-io fails on a mismatch), and the bytes
        # around it are still zeros
        read = subprocess.run(["ip", "netns", "exec", B, "qemu-io", "-f", "raw", "-c",
                               "read -P 0x5a 1M 64k", "-c", "read -P 0 960k 64k", url],
                              capture_output=True, text=True, timeout=60)
        assert read.returncode == 0 and "Pattern verification failed" not in read.stdout, \
            read.stdout + read.stderr
        storage.stdin.write("\n")
        storage.stdin.flush()
        assert json.loads(storage.stdout.readline()) == {"left": []}
        assert json.loads(storage.stdout.readline()) == {"files": []}
        gone = subprocess.run(["ip", "netns", "exec", B, "qemu-img", "info", url],
                              capture_output=True, text=True, timeout=60)
        assert gone.returncode != 0  # the export is closed
        assert storage.wait(timeout=30) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(storage.pid, signal.SIGKILL)
        storage.wait()
