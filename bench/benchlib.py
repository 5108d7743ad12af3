"""Small helpers shared by the side-by-side benchmarks (stdlib only).

- ``free_port`` / ``wait_http``: start-up plumbing for servers under test.
- ``http``: one JSON request with urllib (set-up only; the load itself comes from wrk).
- ``ProcTree``: RSS / PSS / CPU time of a process and all its descendants, read from /proc.
- ``RssSampler``: a thread that samples a ``ProcTree`` and keeps the peak.
- ``run_wrk``: drive wrk with a Lua script and parse its JSON summary.
- ``CpuWindow``: system-wide busy CPU over a time window (to see foreign load).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
WRK_DIR = BENCH_DIR / "wrk"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 60.0) -> Response:
    data = None
    hdrs = {"Accept": "application/json"}
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, dict(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers.items()), e.read())


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``url`` answers any HTTP status; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} while starting")
        try:
            http("GET", url, timeout=5)
            return
        except (OSError, urllib.error.URLError) as e:
            last = e
            time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s ({last})")


# ---------------------------------------------------------------- /proc readers

def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[11], [12] = utime, stime; [13], [14] = cutime, cstime (waited-for children)
    return sum(int(x) for x in fields[11:15])


def _sched_ns(pid: int) -> tuple[int, int]:
    """(ns on CPU, ns runnable but waiting for a CPU) summed over the process's threads."""
    run = wait = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for tid in tasks:
        try:
            a, b, _ = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
        except (OSError, ValueError):
            continue
        run += int(a)
        wait += int(b)
    return run, wait


@dataclass
class ProcTree:
    """A process and all its live descendants."""

    root: int

    def pids(self) -> list[int]:
        kids = _children_map()
        out, todo = [], [self.root]
        while todo:
            p = todo.pop()
            if Path(f"/proc/{p}").exists():
                out.append(p)
            todo.extend(kids.get(p, []))
        return out

    def rss_kb(self) -> int:
        return sum(_status_kb(p, "VmRSS") for p in self.pids())

    def pss_kb(self) -> int:
        return sum(_pss_kb(p) for p in self.pids())

    def cpu_seconds(self) -> float:
        return sum(_cpu_ticks(p) for p in self.pids()) / CLK_TCK

    def sched_seconds(self) -> tuple[float, float]:
        """(seconds on CPU, seconds waiting in the run queue) of the live tree's threads.
        A large wait means the server was starved by other load, not slow itself."""
        run = wait = 0
        for p in self.pids():
            r, w = _sched_ns(p)
            run += r
            wait += w
        return run / 1e9, wait / 1e9

    def describe(self) -> list[dict[str, Any]]:
        out = []
        for p in self.pids():
            try:
                cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            out.append({"pid": p, "rss_kb": _status_kb(p, "VmRSS"), "cmd": cmd.strip()[:160]})
        return out


@dataclass
class RssSampler:
    """Samples a process tree's RSS and PSS every ``interval`` seconds; keeps the peaks."""

    tree: ProcTree
    interval: float = 0.25
    peak_rss_kb: int = 0
    peak_pss_kb: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_rss_kb = max(self.peak_rss_kb, self.tree.rss_kb())
            self.peak_pss_kb = max(self.peak_pss_kb, self.tree.pss_kb())


class CpuWindow:
    """System-wide CPU seconds spent busy between construction and ``stop()``."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()
        self._busy0 = self._busy()

    @staticmethod
    def _busy() -> float:
        parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        v = [int(x) for x in parts]
        idle = v[3] + v[4]  # idle + iowait
        return (sum(v[:8]) - idle) / CLK_TCK

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._t0
        busy = self._busy() - self._busy0
        return {"wall_s": round(wall, 2), "busy_cpu_s": round(busy, 2),
                "busy_cores": round(busy / wall, 2) if wall else 0.0}


# ---------------------------------------------------------------- wrk

def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: installing the Debian package 'wrk' ...", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False,
                       stdout=subprocess.DEVNULL)
        path = shutil.which("wrk")
        if not path:
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                           stdout=subprocess.DEVNULL)
            path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk is required: apt-get install wrk")
    return path


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    non_2xx: int
    errors: dict[str, int]
    latency_ms: dict[str, float]
    wrk_cpu_s: float
    raw: str

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("raw")
        return d


def run_wrk(url: str, *, script: str, env: dict[str, str], duration: float,
            connections: int, threads: int = 1, timeout_s: int = 30) -> WrkResult:
    """Run wrk against ``url`` with ``bench/wrk/<script>``; env carries method/body/headers."""
    wrk = ensure_wrk()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
           f"--timeout={timeout_s}s", "-s", str(WRK_DIR / script), url]
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True,
                          check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    m = re.search(r"^WRK_JSON (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}")
    j = json.loads(m.group(1))
    dur = j["duration_us"] / 1e6
    return WrkResult(
        requests=j["requests"], duration_s=round(dur, 2),
        rps=round(j["requests"] / dur, 1) if dur else 0.0,
        non_2xx=j["status"], errors={k: j[k] for k in ("connect", "read", "write", "timeout")},
        latency_ms={k: round(j[k] / 1000, 2) for k in ("p50", "p90", "p99", "mean", "max")},
        wrk_cpu_s=round(cpu, 2), raw=proc.stdout)


# ---------------------------------------------------------------- machine reference

def python_speed_ms(rounds: int = 5) -> float:
    """CPU milliseconds of a fixed pure-Python workload (dicts, ints, strings, a sort; the
    best of ``rounds``): how fast this machine runs Python at the moment. On the shared
    VMs these benchmarks run on, one commit's figures move by a third between hours; this
    reference moves with them, so runs from different hours can be compared."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        table: dict[int, int] = {}
        for i in range(300_000):
            key = i % 1024
            table[key] = table.get(key, 0) + i
        sorted(str(v) for v in table.values())
        best = min(best, time.process_time() - t0)
    return round(best * 1000, 1)

