"""Block storage data path: sequential write and read through each way a volume is reached,
against the same operations on a plain host file (the physical limit), in one run.

    python3 bench/volume.py [--size-mib 512] [--block-kib 1024] [--rounds 3]

Legs (each a fresh file in one directory, O_DIRECT via ``qemu-img bench -t none``):

- ``host file``: a raw file written and read directly (the limit);
- ``file backend``: a volume of stackling's ``file`` backend, through the path its
  ``connection_info`` names (what a hypervisor on the same node opens);
- ``nbd backend``: the same kind of volume exported by the ``nbd`` backend (qemu-nbd on
  127.0.0.1), read and written over NBD (what a hypervisor on another node opens).

Not measured yet: inside a guest on an attached volume (compute's volume attach is not
there; the QEMU driver's hot-plug hooks are). Results go to ``bench/results/volume-*.json``.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--block-kib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
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
    print("in-guest leg: not measured (compute's volume attach is not implemented yet)")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = {"size_mib": opts.size_mib, "block_kib": opts.block_kib, "rounds": opts.rounds,
           "legs": rows, "in_guest": None}
    for name in (f"volume-{stamp}.json", "volume-latest.json"):
        (RESULTS / name).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
