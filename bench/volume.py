"""Block storage data path: sequential write and read through each way a volume is reached,
against the same operations on a plain host file (the physical limit), in one run.

    python3 bench/volume.py [--size-mib 512] [--block-kib 1024] [--rounds 3] [--guest-mib 256]

Legs (each a fresh file in one directory, O_DIRECT via ``qemu-img bench -t none``):

- ``host file``: a raw file written and read directly (the limit);
- ``file backend``: a volume of stackling's ``file`` backend, through the path its
  ``connection_info`` names (what a hypervisor on the same node opens);
- ``nbd backend``: the same kind of volume exported by the ``nbd`` backend (qemu-nbd on
  127.0.0.1), read and written over NBD (what a hypervisor on another node opens).

- ``in guest`` (``--guest-mib``, 0 to skip): a tiny-guest VM (QEMU **TCG**, 128 MiB, one
  vCPU) with a ``file``-backend volume hot-plugged through compute's volume attach; its user
  data runs busybox ``dd`` (1 MiB blocks, ``oflag=direct conv=fsync`` / ``iflag=direct``)
  on /dev/vdb and ``/dev/zero -> /dev/null`` (the guest's memory-copy ceiling), timed with
  /proc/uptime (10 ms resolution) and printed on the console; paired, in the same run, with
  GNU ``dd`` of the same flags on a host file in the same directory, right after
  the VM is deleted. Under TCG every guest
  instruction is emulated: in-guest I/O is CPU-bound, not disk-bound.

Results go to ``bench/results/volume-*.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stackling.volume.backends import FileBackend, NbdBackend

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.integration.qemu_cloud import MARK  # the integration tests' cloud and helpers
from tests.integration.test_qemu_volume_data import (
    attach,
    boot,
    new_volume,
    until_line,
    volume_cloud,
)

RESULTS = Path(__file__).resolve().parent / "results"


def bench(target: str, *, write: bool, size_mib: int, block_kib: int) -> float:
    """MiB/s of one sequential pass (queue depth 1, O_DIRECT)."""
    count = size_mib * 1024 // block_kib
    args = ["qemu-img", "bench", "-f", "raw", "-t", "none", "-d", "1", "-c", str(count),
            "-s", f"{block_kib}K", "-S", f"{block_kib}K"]
    if write:
        args += ["-w", "--pattern=90"]
    if target.startswith("nbd://"):
        args = [a for a in args if a not in ("-t", "none")]  # O_DIRECT is the server's
    started = time.perf_counter()
    done = subprocess.run([*args, target], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"qemu-img bench failed: {done.stderr.strip()}")
    match = re.search(r"Run completed in ([\d.]+) seconds", done.stdout)
    seconds = float(match.group(1)) if match else elapsed
    return size_mib / seconds


async def legs(work: Path, host: Path, size_gib: int) -> list[tuple[str, str, Any]]:
    file_backend = FileBackend("file", work / "file-pool", "raw")
    await file_backend.start()
    await file_backend.create("bench", size_gib)
    info = await file_backend.export("bench", {})
    nbd = NbdBackend("nbd", work / "nbd-pool", "raw", port_min=18530, port_max=18539)
    await nbd.start()
    await nbd.create("bench", size_gib)
    data = (await nbd.export("bench", {}))["data"]
    return [("host file", str(host), None),
            ("file backend", info["data"]["device_path"], None),
            ("nbd backend", f"nbd://{data['host']}:{data['port']}/{data['export_name']}", nbd)]


GUEST = """#!/bin/sh
(
  while [ ! -b /dev/vdb ]; do sleep 0.2; done
  for r in $(seq 1 {rounds}); do
    for leg in write read mem; do
      t0=$(cut -d' ' -f1 /proc/uptime)
      case $leg in
        write) dd if=/dev/zero of=/dev/vdb bs=1M count={mib} oflag=direct conv=fsync ;;
        read) dd if=/dev/vdb of=/dev/null bs=1M count={mib} iflag=direct ;;
        mem) dd if=/dev/zero of=/dev/null bs=1M count={mib} ;;
      esac 2>/dev/null
      rc=$?
      t1=$(cut -d' ' -f1 /proc/uptime)
      echo "{mark} bench $leg $r rc=$rc seconds $(awk "BEGIN {{print $t1 - $t0}}")" >/dev/console
    done
  done
  echo "{mark} bench done" >/dev/console
) &
"""


def host_dd(path: Path, *, write: bool, mib: int) -> float:
    """Seconds of GNU dd with the guest's flags on a host file."""
    args = (["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "oflag=direct",
             "conv=fsync,notrunc"] if write else
            ["dd", f"if={path}", "of=/dev/null", "bs=1M", f"count={mib}", "iflag=direct"])
    started = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - started


async def in_guest(work: Path, mib: int, rounds: int) -> dict[str, Any]:
    """Boot a TCG guest, attach a volume, run GUEST; then host dd, same sizes and flags."""
    script = GUEST.format(rounds=rounds, mib=mib, mark=MARK)
    out: dict[str, list[float]] = {k: [] for k in
                                   ("guest_write", "guest_read", "guest_mem",
                                    "host_write", "host_read")}
    async with volume_cloud(work / "cloud") as cloud:
        image = await cloud.image_id("stackling-tiny")
        flavor = await cloud.flavor("bench.vol", 128, 0)
        sid = await boot(cloud, "bench", script, image, flavor)
        vid = await new_volume(cloud, size=max(1, -(-mib // 1024)))
        await cloud.wait_status(sid, "ACTIVE")
        await until_line(cloud, sid, "ready")
        await attach(cloud, sid, vid)
        for r in range(1, rounds + 1):
            for leg in ("write", "read", "mem"):
                line = await until_line(cloud, sid, f"bench {leg} {r} ",
                                        timeout=60.0 + mib * 5.0)
                rc, _, seconds = line.split()
                if rc != "rc=0":
                    raise RuntimeError(f"in-guest dd {leg} failed: {line}")
                out[f"guest_{leg}"].append(mib / max(float(seconds), 0.01))
        await until_line(cloud, sid, "bench done")
        await cloud.delete(sid)
    # the host leg once the VM is gone (the guest cannot be paused between its rounds: it
    # has no channel in; an idle TCG guest would still take CPU from the host's dd)
    host = work / "guest-host.raw"
    await asyncio.to_thread(subprocess.run, ["qemu-img", "create", "-q", "-f", "raw",
                                             str(host), f"{max(1, -(-mib // 1024))}G"],
                            check=True)
    for _ in range(rounds):
        out["host_write"].append(mib / await asyncio.to_thread(host_dd, host, write=True,
                                                               mib=mib))
        out["host_read"].append(mib / await asyncio.to_thread(host_dd, host, write=False,
                                                              mib=mib))
    return {"mib": mib, "rounds": rounds, "accel": "tcg", "guest_ram_mib": 128,
            "mib_s": out,
            "median_mib_s": {k: sorted(v)[len(v) // 2] for k, v in out.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--block-kib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--guest-mib", type=int, default=256,
                        help="MiB the in-guest leg writes and reads (0: skip that leg)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the files go (default: a temp dir under /tmp)")
    opts = parser.parse_args()
    if shutil.which("qemu-img") is None or shutil.which("qemu-nbd") is None:
        sys.exit("needs qemu-img and qemu-nbd (apt-get install qemu-utils)")
    work = Path(tempfile.mkdtemp(prefix="vol-bench-", dir=opts.dir or "/tmp"))
    size_gib = max(1, -(-opts.size_mib // 1024))
    loop = asyncio.new_event_loop()
    rows: list[dict[str, Any]] = []
    nbd: NbdBackend | None = None
    guest: dict[str, Any] | None = None
    try:
        host = work / "host.raw"
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(host), f"{size_gib}G"],
                       check=True)
        targets = loop.run_until_complete(legs(work, host, size_gib))
        nbd = next(t[2] for t in targets if t[2] is not None)
        for name, target, _ in targets:
            writes = [bench(target, write=True, size_mib=opts.size_mib,
                            block_kib=opts.block_kib) for _ in range(opts.rounds)]
            reads = [bench(target, write=False, size_mib=opts.size_mib,
                           block_kib=opts.block_kib) for _ in range(opts.rounds)]
            rows.append({"leg": name, "write_mib_s": sorted(writes)[len(writes) // 2],
                         "read_mib_s": sorted(reads)[len(reads) // 2],
                         "write_rounds": writes, "read_rounds": reads})
        if opts.guest_mib > 0:
            guest = loop.run_until_complete(in_guest(work, opts.guest_mib, opts.rounds))
    finally:
        if nbd is not None:
            loop.run_until_complete(nbd.close())
        loop.close()
        shutil.rmtree(work, ignore_errors=True)
    limit = rows[0]
    print(f"sequential, {opts.size_mib} MiB in {opts.block_kib} KiB blocks, queue depth 1, "
          f"median of {opts.rounds}")
    print(f"{'leg':<14} {'write MiB/s':>12} {'% of host':>10} {'read MiB/s':>12} "
          f"{'% of host':>10}")
    for row in rows:
        print(f"{row['leg']:<14} {row['write_mib_s']:>12.0f} "
              f"{100 * row['write_mib_s'] / limit['write_mib_s']:>9.0f}% "
              f"{row['read_mib_s']:>12.0f} {100 * row['read_mib_s'] / limit['read_mib_s']:>9.0f}%")
    if guest is not None:
        med = guest["median_mib_s"]
        print(f"in guest (TCG, busybox dd, {guest['mib']} MiB, 1 MiB blocks, O_DIRECT) vs "
              f"host dd, median of {guest['rounds']} rounds each")
        print(f"{'':<14} {'write MiB/s':>12} {'read MiB/s':>12} {'guest mem MiB/s':>16}")
        print(f"{'host dd':<14} {med['host_write']:>12.0f} {med['host_read']:>12.0f}")
        print(f"{'guest dd':<14} {med['guest_write']:>12.0f} {med['guest_read']:>12.0f} "
              f"{med['guest_mem']:>16.0f}")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = {"size_mib": opts.size_mib, "block_kib": opts.block_kib, "rounds": opts.rounds,
           "legs": rows, "in_guest": guest}
    for name in (f"volume-{stamp}.json", "volume-latest.json"):
        (RESULTS / name).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
