#!/usr/bin/env python3
"""Image data throughput: a 1 GiB image through the Glance v2 API versus ``dd``.

    bench/run image                 # = python3 bench/image.py; ~1 min
    bench/run image --size-mib 256 --rounds 5

In one run, on the same disk (bench/.work), with the same source file (random bytes, in the
page cache for both sides), each round measures in turn:

- dd write: ``dd if=SRC of=COPY bs=1M conv=fsync`` (the data reaches the disk, as an upload
  must before it answers); for context, the hashing floor: ``md5sum`` and ``sha512sum`` of
  the same bytes in parallel;
- upload: ``curl -T SRC`` to ``PUT /image/v2/images/{id}/file`` of a fresh raw image, timed to
  the 204 (stackling streams it to its file store, inspects it, computes md5 + sha512, fsyncs);
- download: ``curl`` ``GET .../file`` to /dev/null, and the dd read anchor
  ``dd if=STORED of=/dev/null bs=1M``.

Medians over the rounds are compared (the machine may be shared: each round records the CPU
others used). Peak RSS of the stackling process is sampled every 0.1 s during each upload.
Results go to bench/results/image-*.json and between <!-- image:begin --> and
<!-- image:end --> in bench/README.md. Pass marks: upload >= 70 % of dd's write rate, peak
RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchlib import BENCH_DIR, CpuWindow, ProcTree, free_port, http, wait_http
from identity import Failure, host_info, stackling_command

README = BENCH_DIR / "README.md"
RESULTS = BENCH_DIR / "results"
BEGIN, END = "<!-- image:begin -->", "<!-- image:end -->"
UPLOAD_TARGET = 0.70
RSS_LIMIT_MB = 150


def source_file(size_mib: int) -> tuple[Path, str]:
    """Random bytes of the given size (kept between runs) and their md5."""
    work = BENCH_DIR / ".work"
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"image-src-{size_mib}m.bin"
    if not path.exists() or path.stat().st_size != size_mib << 20:
        print(f"writing {size_mib} MiB of random data to {path} ...", flush=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            for _ in range(size_mib):
                fh.write(os.urandom(1 << 20))
        tmp.rename(path)
    md5 = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while block := fh.read(4 << 20):
            md5.update(block)
    return path, md5.hexdigest()


class PeakRss:
    """Peak VmRSS of one process, sampled every ``interval`` s. Lighter than benchlib's
    RssSampler (no /proc scan for children, no PSS): on 2 cores the sampler must not take
    CPU from the upload it measures. ``stackling up`` is a single process."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.path = Path(f"/proc/{pid}/status")
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        for line in self.path.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError):
                self.peak_kb = max(self.peak_kb, self.sample())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise Failure(f"{' '.join(cmd[:3])}... failed: {proc.stderr[-500:]}")
    return elapsed, proc


def rate(size: int, seconds: float) -> float:
    return round(size / seconds / 1e6, 1)


class Cloud:
    def __init__(self, args: argparse.Namespace) -> None:
        found = stackling_command(args.stackling_rev)
        if found is None:
            raise Failure("no `stackling` command")
        cmd, cmd_env, self.commit = found
        self.data = Path(tempfile.mkdtemp(prefix="stackling-image-", dir=BENCH_DIR / ".work"))
        self.port = free_port()
        env = {**os.environ, **cmd_env, "STACKLING_IMAGE__BUILD_TINY_IMAGE": "never",
               "STACKLING_IDENTITY__PASSWORD_HASH_ROUNDS": "4"}
        self.log = open(self.data / "stackling.log", "ab")  # stays open while it runs
        full = [*cmd, "up", "--data-dir", str(self.data), "--host", "127.0.0.1", "--port",
                str(self.port), "--virt", "fake", "--dataplane", "noop"]
        print(f"stackling {self.commit}: {' '.join(full[len(cmd):])}", flush=True)
        self.proc = subprocess.Popen(full, env=env, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while not (self.data / "clouds.yaml").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Failure("stackling up did not start: "
                              f"{(self.data / 'stackling.log').read_text()[-1500:]}")
            time.sleep(0.25)
        wait_http(f"{self.url}/image/", 120, self.proc)
        import yaml

        auth = yaml.safe_load((self.data / "clouds.yaml").read_text())["clouds"]["stackling"]
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"},
            "password": auth["auth"]["password"]}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        r = http("POST", f"{self.url}/identity/v3/auth/tokens", body)
        self.token = r.header("X-Subject-Token") or ""
        self.tree = ProcTree(self.proc.pid)

    def create(self, name: str) -> str:
        r = http("POST", f"{self.url}/image/v2/images",
                 {"name": name, "disk_format": "raw", "container_format": "bare"},
                 {"X-Auth-Token": self.token})
        if r.status != 201:
            raise Failure(f"create image: {r.status} {r.body[:300]!r}")
        return str(r.json()["id"])

    def show(self, image_id: str) -> dict[str, Any]:
        return dict(http("GET", f"{self.url}/image/v2/images/{image_id}",
                         headers={"X-Auth-Token": self.token}).json())

    def delete(self, image_id: str) -> None:
        http("DELETE", f"{self.url}/image/v2/images/{image_id}",
             headers={"X-Auth-Token": self.token})

    def stop(self, keep: bool) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        if not keep:
            shutil.rmtree(self.data, ignore_errors=True)


def one_round(cloud: Cloud, src: Path, md5: str, n: int) -> dict[str, Any]:
    size = src.stat().st_size
    window = CpuWindow()
    copy = cloud.data / "dd-copy.bin"
    dd_write, _ = timed(["dd", f"if={src}", f"of={copy}", "bs=1M", "conv=fsync"])
    copy.unlink()
    # the hashing floor: md5sum and sha512sum of the same (cached) bytes, in parallel
    hash_floor, _ = timed(["sh", "-c", f"md5sum {src} >/dev/null & sha512sum {src} "
                                       ">/dev/null & wait"])
    image_id = cloud.create(f"bench-{n}")
    cpu0 = cloud.tree.cpu_seconds()
    with PeakRss(cloud.proc.pid) as rss:
        upload, proc = timed(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T",
                              str(src), "-H", f"X-Auth-Token: {cloud.token}", "-H",
                              "Content-Type: application/octet-stream",
                              f"{cloud.url}/image/v2/images/{image_id}/file"])
    upload_cpu = cloud.tree.cpu_seconds() - cpu0
    if proc.stdout.strip() != "204":
        raise Failure(f"upload answered {proc.stdout!r}")
    image = cloud.show(image_id)
    if image["status"] != "active" or image["size"] != size or image["checksum"] != md5:
        raise Failure(f"uploaded image is wrong: {json.dumps(image)[:400]}")
    download, proc = timed(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                            "-H", f"X-Auth-Token: {cloud.token}",
                            f"{cloud.url}/image/v2/images/{image_id}/file"])
    if proc.stdout.strip() != "200":
        raise Failure(f"download answered {proc.stdout!r}")
    stored = cloud.data / "images" / image_id
    dd_read, _ = timed(["dd", f"if={stored}", "of=/dev/null", "bs=1M"])
    cloud.delete(image_id)
    load = window.stop()
    result = {
        "dd_write_MBps": rate(size, dd_write), "upload_MBps": rate(size, upload),
        "hash_floor_MBps": rate(size, hash_floor),
        "dd_read_MBps": rate(size, dd_read), "download_MBps": rate(size, download),
        "upload_s": round(upload, 2), "dd_write_s": round(dd_write, 2),
        "upload_server_cpu_s": round(upload_cpu, 2),
        "peak_rss_mb": round(rss.peak_kb / 1024, 1), "busy_cores": load["busy_cores"],
    }
    print(f"round {n}: dd write {result['dd_write_MBps']} MB/s, upload "
          f"{result['upload_MBps']} MB/s, dd read {result['dd_read_MBps']} MB/s, download "
          f"{result['download_MBps']} MB/s, peak RSS {result['peak_rss_mb']} MB", flush=True)
    return result


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in rounds), 1)

    out = {k: med(k) for k in ("dd_write_MBps", "upload_MBps", "dd_read_MBps",
                               "download_MBps", "upload_server_cpu_s", "hash_floor_MBps")}
    out["upload_vs_dd"] = round(out["upload_MBps"] / out["dd_write_MBps"], 2)
    out["upload_vs_hash_floor"] = round(out["upload_MBps"] / out["hash_floor_MBps"], 2)
    out["download_vs_dd"] = round(out["download_MBps"] / out["dd_read_MBps"], 2)
    # the same ratio per round (both sides ran back to back, under the same load)
    out["upload_vs_dd_per_round"] = [round(r["upload_MBps"] / r["dd_write_MBps"], 2)
                                     for r in rounds]
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rounds)
    return out


def markdown(res: dict[str, Any]) -> str:
    s = res["summary"]
    ok_up = "yes" if s["upload_vs_dd"] >= UPLOAD_TARGET else "**no**"
    ok_rss = "yes" if s["peak_rss_mb"] < RSS_LIMIT_MB else "**no**"
    lines = [
        BEGIN,
        f"Latest run: {res['date']}, stackling `{res['stackling_commit']}`, "
        f"{res['size_mib']} MiB image, {len(res['rounds'])} rounds (medians), host: "
        f"{res['host']['nproc']} cores, {res['host']['cpu']}.",
        "",
        "| | stackling (API) | dd | stackling / dd |",
        "|---|---|---|---|",
        f"| write / upload (MB/s) | {s['upload_MBps']} | {s['dd_write_MBps']} | "
        f"{s['upload_vs_dd']:.0%} (target >= {UPLOAD_TARGET:.0%}: {ok_up}) |",
        f"| read / download (MB/s) | {s['download_MBps']} | {s['dd_read_MBps']} | "
        f"{s['download_vs_dd']:.0%} |",
        "",
        f"- Hashing floor: `md5sum` and `sha512sum` of the same cached bytes, in parallel: "
        f"{s['hash_floor_MBps']} MB/s; the upload reached {s['upload_vs_hash_floor']:.0%} "
        "of it. An upload must do both (Glance's `checksum` and `os_hash_value`) plus "
        "receive and write the data, on the same cores: where dd outruns the hashing floor "
        "(a fast disk, a busy CPU), no upload can reach dd's rate.",
        f"- Upload per round, stackling / dd: "
        f"{', '.join(f'{x:.0%}' for x in s['upload_vs_dd_per_round'])}; server CPU per "
        f"upload {s['upload_server_cpu_s']} s (md5 + sha512 + inspection + HTTP).",
        f"- Peak RSS of the stackling process during an upload: {s['peak_rss_mb']} MB "
        f"(idle after start: {res['idle_rss_mb']} MB; limit {RSS_LIMIT_MB} MB: {ok_rss}).",
        f"- Busy cores (whole machine) per round: "
        f"{', '.join(str(r['busy_cores']) for r in res['rounds'])} of "
        f"{res['host']['nproc']}: other work on a shared machine moves both sides.",
        "",
        END,
    ]
    return "\n".join(lines)


def update_readme(block: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        text = pre + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Image data\n\n" + block + "\n"
    README.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See bench/README.md.")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stackling-rev", default="HEAD",
                    help="git revision to run (default HEAD), 'worktree', or a source tree")
    ap.add_argument("--keep", action="store_true", help="keep the data dir")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    for tool in ("dd", "curl"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is required")
    src, md5 = source_file(args.size_mib)
    started = dt.datetime.now()
    cloud = Cloud(args)
    try:
        http("GET", f"{cloud.url}/image/v2/images", headers={"X-Auth-Token": cloud.token})
        idle = round(cloud.tree.rss_kb() / 1024, 1)
        rounds = [one_round(cloud, src, md5, n + 1) for n in range(args.rounds)]
    except Failure as exc:
        print(f"image bench: {exc}", file=sys.stderr)
        return 1
    finally:
        cloud.stop(args.keep)
    res = {"date": started.isoformat(timespec="seconds"), "size_mib": args.size_mib,
           "stackling_commit": cloud.commit, "host": host_info(), "idle_rss_mb": idle,
           "rounds": rounds, "summary": summarize(rounds)}
    RESULTS.mkdir(exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    for name in (f"image-{stamp}.json", "image-latest.json"):
        (RESULTS / name).write_text(json.dumps(res, indent=2) + "\n")
    block = markdown(res)
    if not args.no_readme:
        update_readme(block)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
